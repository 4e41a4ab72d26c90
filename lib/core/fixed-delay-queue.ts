/**
 * Calls `due(item)` for each item a fixed delay after it was added, on one
 * timer for the whole queue.
 *
 * Every task at a worker waits the same receipt delay, and most end
 * before it: a Node timer per task was allocated, scheduled and cleared
 * for nothing. Items added later are due later, so the queue is kept in
 * order of arrival and only its head needs a timer. Nothing is removed
 * early: `due` must check whether the item still needs it.
 */
export class FixedDelayQueue<T> {
  private items: T[] = [];
  private dueTimes: number[] = [];
  private head = 0;
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly delayMs: number,
    private readonly due: (item: T) => void,
  ) {}

  add(item: T): void {
    this.items.push(item);
    this.dueTimes.push(Date.now() + this.delayMs);
    this.timer ??= setTimeout(() => this.runDue(), this.delayMs);
  }

  /** Drops every item without calling `due`. */
  clear(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.items = [];
    this.dueTimes = [];
    this.head = 0;
  }

  private runDue(): void {
    this.timer = undefined;
    const now = Date.now();
    while (this.head < this.items.length && this.dueTimes[this.head] <= now) {
      const item = this.items[this.head];
      this.head += 1;
      this.due(item);
    }

    this.compact();
    if (this.head < this.items.length) {
      const wait = Math.max(0, this.dueTimes[this.head] - now);
      this.timer = setTimeout(() => this.runDue(), wait);
    }
  }

  // Drops the items already run, once they are half the arrays, so that
  // the arrays stay as long as the items waiting, not as all items ever.
  private compact(): void {
    if (this.head * 2 < this.items.length) {
      return;
    }

    this.items = this.items.slice(this.head);
    this.dueTimes = this.dueTimes.slice(this.head);
    this.head = 0;
  }
}
