import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';

import { FixedDelayQueue } from '../../lib/core/fixed-delay-queue.js';

// The worker's receipts wait on this queue: a receipt sent too early costs
// a message, one never sent leaves a caller to its receipt timeout.

describe('FixedDelayQueue', () => {
  it('runs each item once, in order, no sooner than its delay', async () => {
    const ran: Array<{ item: number; waited: number }> = [];
    const addedAt = new Map<number, number>();
    const queue = new FixedDelayQueue<number>(30, (item) => {
      ran.push({ item, waited: Date.now() - addedAt.get(item)! });
    });

    for (let item = 0; item < 5; item += 1) {
      addedAt.set(item, Date.now());
      queue.add(item);
      await delay(10);
    }
    await delay(80);

    assert.deepEqual(
      ran.map((entry) => entry.item),
      [0, 1, 2, 3, 4],
    );
    for (const entry of ran) {
      assert.ok(entry.waited >= 29, `item ${entry.item}: ${entry.waited} ms`);
    }
  });

  it('keeps working across many rounds of adds', async () => {
    const ran: number[] = [];
    const queue = new FixedDelayQueue<number>(5, (item) => ran.push(item));

    for (let round = 0; round < 4; round += 1) {
      for (let item = 0; item < 100; item += 1) {
        queue.add(round * 100 + item);
      }
      await delay(20);
    }

    assert.equal(ran.length, 400);
    assert.deepEqual(
      ran,
      Array.from({ length: 400 }, (_, index) => index),
    );
  });

  it('runs nothing after clear()', async () => {
    const ran: number[] = [];
    const queue = new FixedDelayQueue<number>(10, (item) => ran.push(item));
    queue.add(1);
    queue.clear();
    await delay(40);

    assert.deepEqual(ran, []);
  });
});
