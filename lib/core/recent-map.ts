/**
 * A map that forgets its oldest keys past a size, in the order they were
 * first added. Setting a key it holds changes the value, not the order.
 *
 * The order is kept in a ring of keys beside the map. Evicting through
 * `map.keys().next()` instead cost a scan over every deleted slot at the
 * front of the map's table: a tenth of a worker's CPU at 10,000 task ids.
 * A key deleted and added again may be forgotten at the turn of its first
 * slot, sooner than its own; the map never holds more keys than the
 * capacity.
 */
export class RecentMap<V> {
  private readonly entries = new Map<string, V>();
  private readonly order: Array<string | undefined>;
  private next = 0;

  constructor(private readonly capacity: number) {
    this.order = new Array<string | undefined>(capacity);
  }

  get size(): number {
    return this.entries.size;
  }

  has(key: string): boolean {
    return this.entries.has(key);
  }

  get(key: string): V | undefined {
    return this.entries.get(key);
  }

  set(key: string, value: V): void {
    if (this.entries.has(key)) {
      this.entries.set(key, value);
      return;
    }

    const oldest = this.order[this.next];
    if (oldest !== undefined) {
      this.entries.delete(oldest);
    }

    this.order[this.next] = key;
    this.next = (this.next + 1) % this.capacity;
    this.entries.set(key, value);
  }

  delete(key: string): void {
    this.entries.delete(key);
  }
}
