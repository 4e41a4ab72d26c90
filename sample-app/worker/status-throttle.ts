/**
 * Lets a call through at most once per interval. Progress comes once per
 * chunk read, thousands of times a second on small files: the caller needs
 * a few updates a second, and each one is an MQTT message.
 */
export class StatusThrottle {
  private lastPassedAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly intervalMs: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** True when the interval has passed since the last call let through. */
  tryPass(): boolean {
    const now = this.now();
    if (now - this.lastPassedAt < this.intervalMs) {
      return false;
    }

    this.lastPassedAt = now;
    return true;
  }
}
