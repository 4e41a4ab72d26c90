/**
 * What the bench's parent process and its forked callers and workers say to
 * each other over the Node IPC channel. Every request carries an id; every
 * answer names the id it answers.
 */

/** The transport under test and the two peers it is compared with. */
export type TransportName = 'aether' | 'raw' | 'nest';

export const TRANSPORTS: readonly TransportName[] = ['aether', 'raw', 'nest'];

export const TRANSPORT_TITLES: Record<TransportName, string> = {
  aether: 'AetherMagic',
  raw: 'raw MQTT.js',
  nest: 'Nest MQTT',
};

export type BrokerKind = 'mosquitto' | 'aedes';

/**
 * The bench's tasks. `slow1`, `slow2` and `slow4` are the same 20 ms task
 * under three names, so that one set of worker processes serves every
 * scaling step: worker i serves `slowN` only when i < N.
 */
export type TaskName = 'echo' | 'progress' | 'slow1' | 'slow2' | 'slow4';

export interface BrokerSettings {
  kind: BrokerKind;
  url: string;
  /** False on aedes: no `$share`, so raw and Nest get a plain subscription. */
  hasSharedSubscriptions: boolean;
  /** 5 on Mosquitto; 4 on aedes, which refuses MQTT 5. */
  protocolVersion: 4 | 5;
}

export interface ChildConfig {
  role: 'caller' | 'worker';
  transport: TransportName;
  broker: BrokerSettings;
  index: number;
  /** Worker only: the tasks this worker serves. */
  tasks: TaskName[];
  /** The child exits by itself after this long, whatever happens. */
  maxLifeMs: number;
}

export interface LatencyCommand {
  kind: 'latency';
  task: TaskName;
  warmupCalls: number;
  durationMs: number;
}

export interface ThroughputCommand {
  kind: 'throughput';
  task: TaskName;
  inFlight: number;
  warmupMs: number;
  durationMs: number;
}

/** A fixed number of tasks, with the heap measured around them. */
export interface MemoryCommand {
  kind: 'memory';
  task: TaskName;
  inFlight: number;
  warmupTasks: number;
  tasks: number;
}

export type CallerCommand = LatencyCommand | ThroughputCommand | MemoryCommand;

/** Tasks run so far and CPU time used so far, from a worker. */
export type WorkerCommand = { kind: 'usage' };

export type StopCommand = { kind: 'stop' };

export type ChildCommand = CallerCommand | WorkerCommand | StopCommand;

export interface LatencyResult {
  calls: number;
  errors: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  meanMs: number;
}

export interface ThroughputResult {
  tasks: number;
  errors: number;
  /** Events the caller saw (statuses and completions), all tasks. */
  events: number;
  elapsedMs: number;
  tasksPerSecond: number;
  /** The caller's CPU time over the same window, in ms. */
  cpuMs: number;
  /** Calls still open when the run's drain time ran out. */
  unfinished: number;
}

export interface MemorySample {
  heapUsedMb: number;
  rssMb: number;
}

export interface MemoryResult extends ThroughputResult {
  before: MemorySample;
  after: MemorySample;
  /** False when the child runs without --expose-gc. */
  hasGc: boolean;
}

/** Tasks each worker has run, by task name, since it started. */
export type TaskCounts = Partial<Record<TaskName, number>>;

export interface WorkerUsage {
  counts: TaskCounts;
  /** User and system CPU time of the process so far, in ms. */
  cpuMs: number;
}

export interface RequestMessage {
  id: number;
  command: ChildCommand;
}

export type ChildMessage =
  | { type: 'ready' }
  | { type: 'failed'; message: string }
  | { type: 'answer'; id: number; result: unknown }
  | { type: 'refusal'; id: number; message: string };
