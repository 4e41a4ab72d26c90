import {
  TRANSPORTS,
  type BrokerKind,
  type LatencyCommand,
  type MemoryCommand,
  type ThroughputCommand,
  type TransportName,
} from './ipc.js';

type Settings<T> = Omit<T, 'kind' | 'task'>;

export const SCENARIOS = [
  'latency',
  'one-caller',
  'four-callers',
  'progress',
  'scaling',
] as const;

export type ScenarioName = (typeof SCENARIOS)[number];

/** What one bench run measures, and for how long. */
export interface BenchPlan {
  mode: 'short' | 'full';
  brokers: BrokerKind[];
  transports: TransportName[];
  scenarios: ScenarioName[];
  latency: Settings<LatencyCommand>;
  throughput: Settings<ThroughputCommand>;
  /** Caller processes of the four-caller scenario. */
  callerCount: number;
  progress: Settings<ThroughputCommand>;
  scaling: Settings<ThroughputCommand> & { workerCounts: number[] };
  memory: Settings<MemoryCommand>;
  /**
   * Where the 100,000-task memory run is made. There, it also gives the
   * one-caller throughput (64 in flight over all its tasks); elsewhere a
   * timed window does.
   */
  memoryBrokers: BrokerKind[];
  /** And for which transports; the short run keeps to this one. */
  memoryTransports: TransportName[];
  /**
   * Mosquitto's max_inflight_messages, which it announces as the MQTT 5
   * receive maximum; unset keeps Mosquitto's default (20).
   */
  maxInflight?: number;
  /** Write CPU profiles of each transport's first caller and worker. */
  profileDir?: string;
  /** Each child exits by itself after this long. */
  childLifeMs: number;
}

const SHORT: BenchPlan = {
  mode: 'short',
  brokers: ['mosquitto', 'aedes'],
  transports: [...TRANSPORTS],
  scenarios: [...SCENARIOS],
  latency: { warmupCalls: 1_000, durationMs: 1_000 },
  throughput: { inFlight: 64, warmupMs: 500, durationMs: 1_500 },
  callerCount: 4,
  progress: { inFlight: 64, warmupMs: 300, durationMs: 1_200 },
  scaling: {
    inFlight: 16,
    warmupMs: 200,
    durationMs: 1_200,
    workerCounts: [1, 2, 4],
  },
  memory: { inFlight: 64, warmupTasks: 2_000, tasks: 100_000 },
  memoryBrokers: ['mosquitto'],
  memoryTransports: ['aether'],
  childLifeMs: 240_000,
};

const FULL: BenchPlan = {
  ...SHORT,
  mode: 'full',
  latency: { warmupCalls: 1_000, durationMs: 5_000 },
  throughput: { inFlight: 64, warmupMs: 2_000, durationMs: 8_000 },
  progress: { inFlight: 64, warmupMs: 1_000, durationMs: 5_000 },
  scaling: { ...SHORT.scaling, warmupMs: 1_000, durationMs: 5_000 },
  memoryBrokers: ['mosquitto', 'aedes'],
  memoryTransports: [...TRANSPORTS],
  childLifeMs: 1_200_000,
};

const USAGE = `Usage: npm run bench -- [options]

  --full                 longer windows; the 100,000-task memory run for
                         every transport on both brokers (short: this
                         transport on Mosquitto only)
  --broker=NAME          only mosquitto or aedes
  --transport=NAME       only aether, raw or nest
  --scenario=A,B         only these of latency, one-caller (with the
                         memory run), four-callers, progress, scaling
  --max-inflight=N       Mosquitto's max_inflight_messages (default 20),
                         announced to MQTT 5 clients as receive maximum
  --profile=DIR          CPU profiles of the first caller and worker of
                         each transport (Mosquitto only), summarised at
                         the end; combine with --transport=aether
  --help                 this text`;

/** Reads the command line; throws with the usage on anything unknown. */
export function readPlan(args: string[]): BenchPlan {
  let plan: BenchPlan = args.includes('--full') ? FULL : SHORT;
  for (const arg of args) {
    plan = applyArgument(plan, arg);
  }

  return plan;
}

function applyArgument(plan: BenchPlan, arg: string): BenchPlan {
  const [name, value = ''] = arg.split('=', 2);
  switch (name) {
    case '--full':
      return plan;
    case '--broker':
      return { ...plan, brokers: [pick(value, ['mosquitto', 'aedes'])] };
    case '--transport':
      return { ...plan, transports: [pick(value, TRANSPORTS)] };
    case '--scenario':
      return {
        ...plan,
        scenarios: value.split(',').map((name) => pick(name, SCENARIOS)),
      };
    case '--max-inflight':
      return { ...plan, maxInflight: readCount(value, arg) };
    case '--profile':
      return readProfilePlan(plan, value);
    case '--help':
      console.log(USAGE);
      process.exit(0);
    default:
      throw new Error(`Unknown argument "${arg}".\n\n${USAGE}`);
  }
}

function readProfilePlan(plan: BenchPlan, dir: string): BenchPlan {
  if (!dir) {
    throw new Error(
      `--profile needs a folder: --profile=/tmp/prof\n\n${USAGE}`,
    );
  }

  return { ...plan, brokers: ['mosquitto'], profileDir: dir };
}

function readCount(value: string, arg: string): number {
  const count = Number(value);
  if (!Number.isInteger(count) || count < 0) {
    throw new Error(`"${arg}" needs a whole number.\n\n${USAGE}`);
  }

  return count;
}

function pick<T extends string>(value: string, allowed: readonly T[]): T {
  const found = allowed.find((candidate) => candidate === value);
  if (!found) {
    throw new Error(
      `"${value}" is not one of ${allowed.join(', ')}.\n\n${USAGE}`,
    );
  }

  return found;
}
