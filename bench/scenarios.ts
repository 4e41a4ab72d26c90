import type {
  BrokerSettings,
  ChildConfig,
  LatencyResult,
  MemoryResult,
  WorkerUsage,
  TaskName,
  ThroughputResult,
  TransportName,
} from './ipc.js';
import type { BenchPlan, ScenarioName } from './plan.js';
import { BenchProcess, stopAll } from './process-pool.js';

export interface FourCallerResult {
  tasksPerSecond: number;
  perCaller: number[];
  errors: number;
  unfinished: number;
  /** Above 1 when workers sent statuses (receipts) besides completions. */
  eventsPerTask: number;
  /** The worker's CPU time over wall time, 0 to 1: is it the bottleneck? */
  workerBusy: number;
}

export interface ScalingStep {
  workers: number;
  tasksPerSecond: number;
  errors: number;
  /** Each worker's part of the tasks done in this step, 0 to 1. */
  shares: number[];
  /** The largest distance of a share from the mean, over the mean. */
  maxShareDeviation: number;
}

/** Everything measured for one transport on one broker. */
export interface TransportResult {
  transport: TransportName;
  latency?: LatencyResult;
  oneCaller?: ThroughputResult;
  fourCallers?: FourCallerResult;
  progress?: ThroughputResult;
  scaling?: ScalingStep[];
  /** Why latency was not measured (Nest's transport on aedes). */
  latencySkipped?: string;
  /** Why scaling was not measured (no `$share` on aedes). */
  scalingSkipped?: string;
  memory?: MemoryResult;
  /**
   * CPU time one task costs each side in the one-caller run, in µs. The
   * broker is Mosquitto's process, or for the in-process aedes the
   * bench's own process (which otherwise only waits on its children).
   */
  cpuPerTask?: { callerUs: number; workerUs: number; brokerUs: number };
  /** What failed, scenario by scenario; the rest still ran. */
  failures: string[];
}

const MAX_WORKERS = 4;
const USAGE = { kind: 'usage' } as const;
const USAGE_LIMIT_MS = 5_000;

const NEST_ON_AEDES =
  "Nest's ClientMqtt unsubscribes its reply topic after each call and " +
  'subscribes again on the next without waiting; aedes 1.2 handles the ' +
  'UNSUBSCRIBE last, so from the second call on, one at a time, no reply ' +
  'arrives';

/**
 * Workers serve tasks by index: worker 0 everything, worker 1 the 2- and
 * 4-worker slow tasks, workers 2 and 3 only the 4-worker one. So one set
 * of processes serves every scenario, and only the workers of a step share
 * its tasks.
 */
function getWorkerTasks(index: number, canScale: boolean): TaskName[] {
  const slow: TaskName[] = [];
  if (canScale && index < 1) slow.push('slow1');
  if (canScale && index < 2) slow.push('slow2');
  if (canScale) slow.push('slow4');
  return index === 0 ? ['echo', 'progress', ...slow] : slow;
}

/** Raw and Nest workers can share tasks only through `$share`. */
function canScale(transport: TransportName, broker: BrokerSettings): boolean {
  return transport === 'aether' || broker.hasSharedSubscriptions;
}

/** CPU time the broker has used so far, in ms. */
export type BrokerCpuReader = () => number;

export async function runTransport(
  plan: BenchPlan,
  broker: BrokerSettings,
  transport: TransportName,
  readBrokerCpu: BrokerCpuReader,
): Promise<TransportResult> {
  const scales = canScale(transport, broker);
  const run = new TransportRun(plan, broker, transport, readBrokerCpu);

  try {
    await run.startProcesses(scales ? MAX_WORKERS : 1);
  } catch (error) {
    await run.stop();
    return run.fail(error);
  }

  try {
    return await run.measureAll(scales);
  } finally {
    await run.stop();
  }
}

class TransportRun {
  private workers: BenchProcess[] = [];
  private callers: BenchProcess[] = [];
  private readonly started: BenchProcess[] = [];
  private readonly result: TransportResult;

  constructor(
    private readonly plan: BenchPlan,
    private readonly broker: BrokerSettings,
    private readonly transport: TransportName,
    private readonly readBrokerCpu: BrokerCpuReader,
  ) {
    this.result = { transport, failures: [] };
  }

  async startProcesses(workerCount: number): Promise<void> {
    const scales = workerCount > 1;
    this.workers = await this.startEach(workerCount, (index) => [
      this.createConfig('worker', index, getWorkerTasks(index, scales)),
      this.getProfileArgs('worker', index),
    ]);

    // Caller 0 runs the one-caller scenarios; callers 1 to N the N-caller
    // one, so that each starts that scenario fresh (see measureFourCallers).
    this.callers = await this.startEach(this.plan.callerCount + 1, (index) => [
      this.createConfig('caller', index, []),
      ['--expose-gc', ...this.getProfileArgs('caller', index)],
    ]);
  }

  /**
   * Starts `count` processes at once. Those that started are kept (and so
   * stopped later) even when another one failed.
   */
  private async startEach(
    count: number,
    describe: (index: number) => [ChildConfig, string[]],
  ): Promise<BenchProcess[]> {
    const starts = await Promise.allSettled(
      Array.from({ length: count }, (_, index) =>
        BenchProcess.start(...describe(index)),
      ),
    );

    const started: BenchProcess[] = [];
    for (const start of starts) {
      if (start.status === 'fulfilled') started.push(start.value);
    }

    this.started.push(...started);
    const failed = starts.find((start) => start.status === 'rejected');
    if (failed) {
      throw (failed as PromiseRejectedResult).reason;
    }

    return started;
  }

  private createConfig(
    role: ChildConfig['role'],
    index: number,
    tasks: TaskName[],
  ): ChildConfig {
    const { broker, transport } = this;
    const maxLifeMs = this.plan.childLifeMs;
    return { role, transport, broker, index, tasks, maxLifeMs };
  }

  /** Only the first caller and the first worker are profiled. */
  private getProfileArgs(role: ChildConfig['role'], index: number) {
    const dir = this.plan.profileDir;
    if (!dir || index !== 0) return [];
    return ['--cpu-prof', `--cpu-prof-dir=${dir}/${this.transport}/${role}`];
  }

  get firstCaller(): BenchProcess {
    return this.callers[0];
  }

  async measureAll(scales: boolean): Promise<TransportResult> {
    await this.attempt('latency', () => this.measureLatency());
    await this.attempt('one-caller', () => this.measureOneCaller());
    await this.attempt('four-callers', () => this.measureFourCallers());
    await this.attempt('progress', () => this.measureProgress());
    if (scales) {
      await this.attempt('scaling', () => this.measureScaling());
    } else {
      this.result.scalingSkipped =
        'aedes has no $share: one worker on a plain subscription';
    }

    return this.result;
  }

  /** A failed scenario is recorded and the next one still runs. */
  private async attempt(name: ScenarioName, measure: () => Promise<void>) {
    if (!this.plan.scenarios.includes(name)) {
      return;
    }

    try {
      await measure();
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      this.result.failures.push(`${name}: ${message}`);
      console.error(`  ${this.transport} ${name} failed: ${message}`);
    }
  }

  private async measureLatency(): Promise<void> {
    if (this.transport === 'nest' && this.broker.kind === 'aedes') {
      this.result.latencySkipped = NEST_ON_AEDES;
      return;
    }

    const { latency } = this.plan;
    this.result.latency = await this.firstCaller.request<LatencyResult>(
      { kind: 'latency', task: 'echo', ...latency },
      getLimitMs(latency.durationMs),
    );
  }

  /** Also measures what one task costs each side in CPU time. */
  private async measureOneCaller(): Promise<void> {
    const worker = this.workers[0];
    const before = await worker.request<WorkerUsage>(USAGE, USAGE_LIMIT_MS);
    const brokerBefore = this.readBrokerCpu();
    const result = await this.measureOneCallerTasks();
    const brokerMs = this.readBrokerCpu() - brokerBefore;
    const after = await worker.request<WorkerUsage>(USAGE, USAGE_LIMIT_MS);

    // The worker and the broker also ran the warm-up and the drain: count
    // what the worker did over the same time.
    const workerTasks = (after.counts.echo ?? 0) - (before.counts.echo ?? 0);
    const perTask = (ms: number, tasks: number) =>
      tasks > 0 ? (ms * 1000) / tasks : Number.NaN;
    this.result.cpuPerTask = {
      callerUs: perTask(result.cpuMs, result.tasks),
      workerUs: perTask(after.cpuMs - before.cpuMs, workerTasks),
      brokerUs: perTask(brokerMs, workerTasks),
    };
  }

  private async measureOneCallerTasks(): Promise<ThroughputResult> {
    const { memoryBrokers, memoryTransports } = this.plan;
    const hasMemoryRun =
      memoryBrokers.includes(this.broker.kind) &&
      memoryTransports.includes(this.transport);
    if (hasMemoryRun) {
      const memory = await this.firstCaller.request<MemoryResult>(
        { kind: 'memory', task: 'echo', ...this.plan.memory },
        getLimitMs(300_000),
      );
      this.result.memory = memory;
      this.result.oneCaller = memory;
      return memory;
    }

    const result = await this.measureWindow('echo', this.plan.throughput);
    this.result.oneCaller = result;
    return result;
  }

  private measureWindow(
    task: TaskName,
    settings: BenchPlan['throughput'],
    caller = this.firstCaller,
  ): Promise<ThroughputResult> {
    return caller.request<ThroughputResult>(
      { kind: 'throughput', task, ...settings },
      getLimitMs(settings.warmupMs + settings.durationMs),
    );
  }

  /**
   * Nest's ClientMqtt unsubscribes a pattern's reply topic when its last
   * call ends and subscribes again on the next call, without waiting for
   * the UNSUBACK. aedes 1.2 handles that UNSUBSCRIBE after the SUBSCRIBE,
   * so the caller loses its replies for good. Fresh callers keep the
   * N-caller scenario clear of it; the one-caller latency cannot be.
   */
  private async measureFourCallers(): Promise<void> {
    const worker = this.workers[0];
    const before = await worker.request<WorkerUsage>(USAGE, USAGE_LIMIT_MS);
    const startedAt = Date.now();
    const results = await Promise.all(
      this.callers
        .slice(1)
        .map((caller) =>
          this.measureWindow('echo', this.plan.throughput, caller),
        ),
    );
    const wallMs = Date.now() - startedAt;
    const after = await worker.request<WorkerUsage>(USAGE, USAGE_LIMIT_MS);
    const sum = (pick: (result: ThroughputResult) => number) =>
      results.reduce((total, result) => total + pick(result), 0);

    this.result.fourCallers = {
      tasksPerSecond: sum((result) => result.tasksPerSecond),
      perCaller: results.map((result) => result.tasksPerSecond),
      errors: sum((result) => result.errors),
      unfinished: sum((result) => result.unfinished),
      eventsPerTask: sum((result) => result.events) / sum((r) => r.tasks),
      workerBusy: (after.cpuMs - before.cpuMs) / wallMs,
    };
  }

  private async measureProgress(): Promise<void> {
    this.result.progress = await this.measureWindow(
      'progress',
      this.plan.progress,
    );
  }

  private async measureScaling(): Promise<void> {
    const steps: ScalingStep[] = [];
    for (const workers of this.plan.scaling.workerCounts) {
      steps.push(await this.measureScalingStep(workers));
    }

    this.result.scaling = steps;
  }

  private async measureScalingStep(workers: number): Promise<ScalingStep> {
    const task = `slow${workers}` as TaskName;
    const before = await this.getCounts(task);
    const result = await this.measureWindow(task, this.plan.scaling);
    const after = await this.getCounts(task);

    const done = after.map((count, index) => count - before[index]);
    const total = done.reduce((sum, count) => sum + count, 0);
    const shares = done.slice(0, workers).map((count) => count / total);
    return {
      workers,
      tasksPerSecond: result.tasksPerSecond,
      errors: result.errors,
      shares,
      maxShareDeviation: getMaxDeviation(shares),
    };
  }

  private async getCounts(task: TaskName): Promise<number[]> {
    const usages = await Promise.all(
      this.workers.map((worker) =>
        worker.request<WorkerUsage>(USAGE, USAGE_LIMIT_MS),
      ),
    );
    return usages.map((usage) => usage.counts[task] ?? 0);
  }

  async stop(): Promise<void> {
    await stopAll(this.started);
  }

  /** The run so far, with why it could not go on. */
  fail(error: unknown): TransportResult {
    const message = error instanceof Error ? error.message : String(error);
    this.result.failures.push(`start: ${message}`);
    console.error(`  ${this.transport} could not start: ${message}`);
    return this.result;
  }
}

function getMaxDeviation(shares: number[]): number {
  const mean = 1 / shares.length;
  const deviations = shares.map((share) => Math.abs(share - mean) / mean);
  return Math.max(...deviations);
}

// A child that does not answer within its own work time and a margin is
// stuck; the bench moves on.
function getLimitMs(workMs: number): number {
  return workMs + 30_000;
}
