import { performance } from 'node:perf_hooks';

import type {
  LatencyCommand,
  LatencyResult,
  MemoryCommand,
  MemoryResult,
  MemorySample,
  ThroughputCommand,
  ThroughputResult,
} from './ipc.js';
import { sleep } from './workload.js';

/** One task, resolving with the events it produced. */
export type CallTask = () => Promise<number>;

// Calls still open this long after a run are reported, not awaited.
const DRAIN_LIMIT_MS = 10_000;
// Raw MQTT.js and Nest's transport have no call timeout: a lost task would
// hold its lane for ever. Past this, a call counts as failed.
const CALL_LIMIT_MS = 10_000;
const SWEEP_EVERY_MS = 500;
// One call at a time: past this many failures the rest would fail too.
const LATENCY_ERROR_LIMIT = 3;
// The longest the 100,000 tasks of the memory run may take.
const MEMORY_RUN_LIMIT_MS = 300_000;
const MB = 1024 * 1024;

interface OpenCall {
  startedAt: number;
  reject(error: Error): void;
}

/**
 * Fails calls that have not completed within CALL_LIMIT_MS, the same way
 * for every transport: one extra promise per call and one timer for all.
 */
export class CallGuard {
  private readonly open = new Set<OpenCall>();
  private readonly sweeper: NodeJS.Timeout;

  constructor() {
    this.sweeper = setInterval(() => this.sweep(), SWEEP_EVERY_MS);
    this.sweeper.unref();
  }

  wrap(call: CallTask): CallTask {
    return () =>
      new Promise((resolve, reject) => {
        const entry: OpenCall = { startedAt: Date.now(), reject };
        this.open.add(entry);
        call().then(
          (events) => (this.open.delete(entry), resolve(events)),
          (error: unknown) => (this.open.delete(entry), reject(error)),
        );
      });
  }

  // A Set iterates in insertion order, so the oldest calls come first.
  private sweep(): void {
    const deadline = Date.now() - CALL_LIMIT_MS;
    for (const entry of this.open) {
      if (entry.startedAt > deadline) {
        return;
      }

      this.open.delete(entry);
      entry.reject(
        new Error(`The task did not complete within ${CALL_LIMIT_MS} ms.`),
      );
    }
  }

  stop(): void {
    clearInterval(this.sweeper);
  }
}

/**
 * A closed loop: `inFlight` lanes, each sending its next task as soon as
 * the last one completed, until `hasMore` says stop. A failed call counts
 * as an error and the lane goes on.
 */
class LaneRunner {
  completed = 0;
  errors = 0;
  events = 0;
  private open = 0;

  constructor(private readonly call: CallTask) {}

  start(inFlight: number, hasMore: () => boolean): Promise<void> {
    const lanes = Array.from({ length: inFlight }, () => this.runLane(hasMore));
    return Promise.all(lanes).then(() => undefined);
  }

  private async runLane(hasMore: () => boolean): Promise<void> {
    while (hasMore()) {
      this.open += 1;
      try {
        // Not `events += await`: that reads the sum before the wait.
        const events = await this.call();
        this.events += events;
        this.completed += 1;
      } catch {
        this.errors += 1;
      } finally {
        this.open -= 1;
      }
    }
  }

  /** Waits for the lanes to end, at most `limitMs`; returns calls left. */
  async drain(lanes: Promise<void>, limitMs = DRAIN_LIMIT_MS) {
    await Promise.race([lanes, sleep(limitMs)]);
    return this.open;
  }
}

export async function measureLatency(
  call: CallTask,
  command: LatencyCommand,
): Promise<LatencyResult> {
  let errors = 0;
  const warmups = command.warmupCalls;
  for (
    let warmup = 0;
    warmup < warmups && errors < LATENCY_ERROR_LIMIT;
    warmup += 1
  ) {
    await call().catch(() => (errors += 1));
  }

  const durations: number[] = [];
  const endAt = performance.now() + command.durationMs;
  while (performance.now() < endAt && errors < LATENCY_ERROR_LIMIT) {
    const startedAt = performance.now();
    try {
      await call();
      durations.push(performance.now() - startedAt);
    } catch {
      errors += 1;
    }
  }

  return summariseLatency(durations, errors);
}

function summariseLatency(durations: number[], errors: number) {
  const sorted = Float64Array.from(durations).sort();
  const at = (share: number) =>
    sorted.length === 0 ? NaN : sorted[Math.floor(share * (sorted.length - 1))];
  const total = sorted.reduce((sum, value) => sum + value, 0);

  return {
    calls: sorted.length,
    errors,
    p50Ms: at(0.5),
    p99Ms: at(0.99),
    maxMs: at(1),
    meanMs: total / sorted.length,
  };
}

/**
 * Tasks per second in a window after a warm-up, counting only tasks that
 * complete inside the window.
 */
export async function measureThroughput(
  call: CallTask,
  command: ThroughputCommand,
): Promise<ThroughputResult> {
  let isRunning = true;
  const runner = new LaneRunner(call);
  const lanes = runner.start(command.inFlight, () => isRunning);

  await sleep(command.warmupMs);
  const before = snapshot(runner);
  await sleep(command.durationMs);
  const after = snapshot(runner);
  isRunning = false;

  const unfinished = await runner.drain(lanes);
  return toThroughput(before, after, unfinished);
}

interface RunnerSnapshot {
  at: number;
  cpuMs: number;
  completed: number;
  errors: number;
  events: number;
}

function snapshot(runner: LaneRunner): RunnerSnapshot {
  const { completed, errors, events } = runner;
  const at = performance.now();
  return { at, cpuMs: readCpuMs(), completed, errors, events };
}

function toThroughput(
  before: RunnerSnapshot,
  after: RunnerSnapshot,
  unfinished: number,
): ThroughputResult {
  const tasks = after.completed - before.completed;
  const elapsedMs = after.at - before.at;
  return {
    tasks,
    errors: after.errors - before.errors,
    events: after.events - before.events,
    elapsedMs,
    tasksPerSecond: (tasks * 1000) / elapsedMs,
    cpuMs: after.cpuMs - before.cpuMs,
    unfinished,
  };
}

/**
 * Heap and RSS after a warm-up and after `tasks` more tasks, each taken
 * after two full collections, so that only what the transport keeps
 * counts. The same run gives the tasks per second over all of them.
 */
export async function measureMemory(
  call: CallTask,
  command: MemoryCommand,
): Promise<MemoryResult> {
  const warmup = new LaneRunner(call);
  let warmupLeft = command.warmupTasks;
  await warmup.drain(warmup.start(command.inFlight, () => warmupLeft-- > 0));

  const before = await sampleMemory();
  const runner = new LaneRunner(call);
  let tasksLeft = command.tasks;
  const start = snapshot(runner);
  const lanes = runner.start(command.inFlight, () => tasksLeft-- > 0);
  const unfinished = await runner.drain(lanes, MEMORY_RUN_LIMIT_MS);
  const end = snapshot(runner);
  const after = await sampleMemory();

  return {
    ...toThroughput(start, end, unfinished),
    before,
    after,
    hasGc: typeof globalThis.gc === 'function',
  };
}

/** User and system CPU time of this process so far, in ms. */
export function readCpuMs(): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1000;
}

async function sampleMemory(): Promise<MemorySample> {
  for (let round = 0; round < 2; round += 1) {
    globalThis.gc?.();
    // Lets finalizers and timers of finished calls run between rounds.
    await sleep(50);
  }

  const usage = process.memoryUsage();
  return { heapUsedMb: usage.heapUsed / MB, rssMb: usage.rss / MB };
}
