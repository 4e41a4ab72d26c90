/**
 * The logging the core needs. Nest's Logger fits it as it is, so the Nest
 * adapters pass one tagged with their class; the core never imports Nest.
 */
export interface AetherLogger {
  log(message: string): void;
  warn(message: string): void;
  error(message: string, error?: unknown): void;
  debug?(message: string): void;
}

/**
 * Logs the first occurrence of a kind of problem at once, then only a count
 * every `intervalMs`, so that a flood of malformed messages cannot flood
 * the log (or slow the worker that logs them).
 */
export class ThrottledWarning {
  private suppressed = 0;
  private lastLoggedAt = 0;

  constructor(
    private readonly logger: AetherLogger,
    private readonly intervalMs = 10_000,
  ) {}

  warn(message: string): void {
    const now = Date.now();
    if (now - this.lastLoggedAt < this.intervalMs) {
      this.suppressed += 1;
      return;
    }

    const more = this.suppressed
      ? ` (${this.suppressed} more like it since the last report)`
      : '';
    this.logger.warn(message + more);
    this.suppressed = 0;
    this.lastLoggedAt = now;
  }
}
