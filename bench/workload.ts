import type { TaskCounts, TaskName } from './ipc.js';

/**
 * The work every transport's handler does, so that only the transport
 * differs: echo the 1 KiB input, or send ten statuses and then echo it, or
 * hold the worker's one slot for 20 ms.
 */

export const PAYLOAD_BYTES = 1024;
export const STATUS_COUNT = 10;
export const SLOW_TASK_MS = 20;

export interface BenchInput {
  text: string;
}

/** An input whose JSON is exactly PAYLOAD_BYTES long. */
export function createPayload(): BenchInput {
  const emptyJsonBytes = JSON.stringify({ text: '' }).length;
  return { text: 'x'.repeat(PAYLOAD_BYTES - emptyJsonBytes) };
}

/** The progress values of the ten statuses: 10, 20, ... 100. */
export function getStatusSteps(): number[] {
  return Array.from(
    { length: STATUS_COUNT },
    (_, step) => ((step + 1) * 100) / STATUS_COUNT,
  );
}

export function isSlowTask(task: TaskName): boolean {
  return task.startsWith('slow');
}

const counts: TaskCounts = {};

/** Every handler calls it once per task, for the workers' shares. */
export function countTask(task: TaskName): void {
  counts[task] = (counts[task] ?? 0) + 1;
}

export function getTaskCounts(): TaskCounts {
  return { ...counts };
}

/**
 * One task at a time, in arrival order: a worker process with one machine
 * to lend (a GPU, a licence). It bounds every transport the same way,
 * including Nest's MQTT transport, which has no concurrency limit of its
 * own, so that 1, 2 and 4 workers show how well tasks are spread.
 */
class ExclusiveSlot {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(work: () => Promise<T>): Promise<T> {
    const result = this.tail.then(work);
    this.tail = result.catch(() => undefined);
    return result;
  }
}

const slot = new ExclusiveSlot();

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The scaling scenario's task: 20 ms in the worker's only slot. */
export function runSlowTask<T>(input: T): Promise<T> {
  return slot.run(async () => {
    await sleep(SLOW_TASK_MS);
    return input;
  });
}
