import type { TransportName } from './ipc.js';
import type { BrokerTable } from './report.js';
import type { TransportResult } from './scenarios.js';

/** One of issue 5's targets, checked against one broker's results. */
export interface TargetCheck {
  broker: string;
  target: string;
  actual: string;
  /** Undefined when a result it needs is missing. */
  isMet?: boolean;
}

interface TargetSpec {
  target: string;
  check(get: Getter): { actual: string; isMet: boolean } | undefined;
}

type Getter = (transport: TransportName) => TransportResult | undefined;

function ratio(
  get: Getter,
  read: (result: TransportResult) => number | undefined,
  peer: TransportName,
): number | undefined {
  const own = mapResult(get('aether'), read);
  const theirs = mapResult(get(peer), read);
  return own !== undefined && theirs ? own / theirs : undefined;
}

function mapResult<T>(
  result: TransportResult | undefined,
  read: (result: TransportResult) => T | undefined,
): T | undefined {
  return result ? read(result) : undefined;
}

function checkRatio(value: number | undefined, isMet: (v: number) => boolean) {
  return value === undefined
    ? undefined
    : { actual: `${value.toFixed(2)}x`, isMet: isMet(value) };
}

const oneCaller = (r: TransportResult) => r.oneCaller?.tasksPerSecond;
const fourCallers = (r: TransportResult) => r.fourCallers?.tasksPerSecond;

const TARGETS: TargetSpec[] = [
  {
    target: '1 caller, 64 in flight >= 0.9x raw MQTT.js',
    check: (get) => checkRatio(ratio(get, oneCaller, 'raw'), (v) => v >= 0.9),
  },
  {
    target: '1 caller, 64 in flight ahead of Nest MQTT (> 1x)',
    check: (get) => checkRatio(ratio(get, oneCaller, 'nest'), (v) => v > 1),
  },
  {
    target: '4 callers >= 2x Nest MQTT',
    check: (get) => checkRatio(ratio(get, fourCallers, 'nest'), (v) => v >= 2),
  },
  {
    target: 'latency p50 within 0.15 ms of raw MQTT.js',
    check: (get) => {
      const own = get('aether')?.latency?.p50Ms;
      const raw = get('raw')?.latency?.p50Ms;
      if (own === undefined || raw === undefined) return undefined;
      const gap = own - raw;
      return { actual: `+${gap.toFixed(3)} ms`, isMet: gap <= 0.15 };
    },
  },
  {
    target: '4 workers on 20 ms tasks >= 3.5x 1 worker',
    check: (get) => {
      const steps = get('aether')?.scaling;
      const one = steps?.find((step) => step.workers === 1)?.tasksPerSecond;
      const four = steps?.find((step) => step.workers === 4)?.tasksPerSecond;
      return checkRatio(one && four ? four / one : undefined, (v) => v >= 3.5);
    },
  },
  {
    target: "each of 4 workers' share within 25% of the mean",
    check: (get) => {
      const step = get('aether')?.scaling?.find((s) => s.workers === 4);
      if (!step) return undefined;
      const worst = step.maxShareDeviation * 100;
      return { actual: `worst ${worst.toFixed(1)}%`, isMet: worst <= 25 };
    },
  },
  {
    target: 'caller heap growth < 10 MB after 100,000 tasks',
    check: (get) => {
      const memory = get('aether')?.memory;
      if (!memory) return undefined;
      const growth = memory.after.heapUsedMb - memory.before.heapUsedMb;
      return { actual: `${growth.toFixed(2)} MB`, isMet: growth < 10 };
    },
  },
];

export function checkTargets(table: BrokerTable): TargetCheck[] {
  const get: Getter = (transport) =>
    table.results.find((result) => result.transport === transport);

  return TARGETS.map((spec) => {
    const outcome = spec.check(get);
    return {
      broker: table.broker,
      target: spec.target,
      actual: outcome?.actual ?? 'not measured',
      isMet: outcome?.isMet,
    };
  });
}

export function formatTargets(checks: TargetCheck[]): string {
  const width = Math.max(...checks.map((check) => check.target.length));
  const lines = checks.map((check) => {
    const verdict =
      check.isMet === undefined ? '   ' : check.isMet ? 'met' : 'MISSED';
    const target = check.target.padEnd(width + 2);
    return `  ${verdict.padEnd(7)}${target}${check.actual}`;
  });

  return [`Targets (${checks[0]?.broker ?? ''}):`, ...lines].join('\n');
}
