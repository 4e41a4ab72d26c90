import {
  TRANSPORT_TITLES,
  type BrokerKind,
  type TransportName,
} from './ipc.js';
import type { TransportResult } from './scenarios.js';

/** One broker's results, as printed and as written to results.json. */
export interface BrokerTable {
  broker: BrokerKind;
  title: string;
  notes: string[];
  results: TransportResult[];
}

interface RowSpec {
  label: string;
  digits: number;
  read(result: TransportResult): number | undefined;
  /** Text shown instead of the number; no ratio is made of it. */
  show?(result: TransportResult): string | undefined;
  /** False where this/peer means nothing (a growth near zero). */
  hasRatio?: boolean;
  /** The scenario whose skip reason explains a missing value. */
  scenario?: 'latency' | 'scaling';
}

export interface TableRow {
  label: string;
  values: Partial<Record<TransportName, number | string>>;
  /** this/peer, by peer. */
  ratios: Partial<Record<'raw' | 'nest', number>>;
}

const PEERS = ['raw', 'nest'] as const;

function getStep(result: TransportResult, workers: number) {
  return result.scaling?.find((step) => step.workers === workers);
}

function getSpeedUp(result: TransportResult): number | undefined {
  const one = getStep(result, 1)?.tasksPerSecond;
  const four = getStep(result, 4)?.tasksPerSecond;
  return one && four ? four / one : undefined;
}

function showShares(result: TransportResult): string | undefined {
  const shares = getStep(result, 4)?.shares;
  return shares?.map((share) => (share * 100).toFixed(0)).join('/');
}

const ROWS: RowSpec[] = [
  {
    label: 'latency p50, 1 in flight (ms)',
    scenario: 'latency',
    digits: 3,
    read: (r) => r.latency?.p50Ms,
  },
  {
    label: 'latency p99 (ms)',
    scenario: 'latency',
    digits: 3,
    read: (r) => r.latency?.p99Ms,
  },
  {
    label: 'latency max (ms)',
    scenario: 'latency',
    digits: 2,
    read: (r) => r.latency?.maxMs,
  },
  {
    label: '1 caller, 64 in flight (tasks/s)',
    digits: 0,
    read: (r) => r.oneCaller?.tasksPerSecond,
  },
  {
    label: '  CPU per task: caller (µs)',
    digits: 1,
    read: (r) => r.cpuPerTask?.callerUs,
  },
  {
    label: '  CPU per task: worker (µs)',
    digits: 1,
    read: (r) => r.cpuPerTask?.workerUs,
  },
  {
    label: '  CPU per task: broker (µs)',
    digits: 1,
    read: (r) => r.cpuPerTask?.brokerUs,
  },
  {
    label: '4 callers x 64 in flight (tasks/s)',
    digits: 0,
    read: (r) => r.fourCallers?.tasksPerSecond,
  },
  {
    label: '  events per task',
    digits: 2,
    read: (r) => r.fourCallers?.eventsPerTask,
  },
  {
    label: '  worker process busy (%)',
    digits: 0,
    read: (r) => mapDefined(r.fourCallers?.workerBusy, (x) => x * 100),
  },
  {
    label: 'progress, 10 statuses (tasks/s)',
    digits: 0,
    read: (r) => r.progress?.tasksPerSecond,
  },
  {
    label: 'scaling 20 ms, 1 worker (tasks/s)',
    scenario: 'scaling',
    digits: 1,
    read: (r) => getStep(r, 1)?.tasksPerSecond,
  },
  {
    label: 'scaling 20 ms, 2 workers (tasks/s)',
    scenario: 'scaling',
    digits: 1,
    read: (r) => getStep(r, 2)?.tasksPerSecond,
  },
  {
    label: 'scaling 20 ms, 4 workers (tasks/s)',
    scenario: 'scaling',
    digits: 1,
    read: (r) => getStep(r, 4)?.tasksPerSecond,
  },
  {
    label: 'speed-up, 4 workers / 1',
    scenario: 'scaling',
    digits: 2,
    read: getSpeedUp,
  },
  {
    label: 'shares of 4 workers (%)',
    scenario: 'scaling',
    digits: 0,
    read: () => undefined,
    show: showShares,
  },
  {
    label: 'worst share off the mean (%)',
    scenario: 'scaling',
    digits: 1,
    hasRatio: false,
    read: (r) => mapDefined(getStep(r, 4)?.maxShareDeviation, (x) => x * 100),
  },
  {
    label: 'caller heap before 100k (MB)',
    digits: 1,
    read: (r) => r.memory?.before.heapUsedMb,
  },
  {
    label: 'caller heap after 100k (MB)',
    digits: 1,
    read: (r) => r.memory?.after.heapUsedMb,
  },
  {
    label: 'caller heap growth (MB)',
    digits: 2,
    read: getHeapGrowth,
    hasRatio: false,
  },
  {
    label: 'caller RSS before 100k (MB)',
    digits: 1,
    read: (r) => r.memory?.before.rssMb,
  },
  {
    label: 'caller RSS after 100k (MB)',
    digits: 1,
    read: (r) => r.memory?.after.rssMb,
  },
];

function getHeapGrowth(result: TransportResult): number | undefined {
  const memory = result.memory;
  return memory && memory.after.heapUsedMb - memory.before.heapUsedMb;
}

function mapDefined<T, U>(value: T | undefined, map: (value: T) => U) {
  return value === undefined ? undefined : map(value);
}

/** The rows of one table, with this/peer ratios. */
export function buildRows(table: BrokerTable): TableRow[] {
  const byTransport = new Map(
    table.results.map((result) => [result.transport, result]),
  );
  return ROWS.map((spec) => buildRow(spec, byTransport)).filter(
    (row) => Object.keys(row.values).length > 0,
  );
}

function buildRow(
  spec: RowSpec,
  byTransport: Map<TransportName, TransportResult>,
): TableRow {
  const values: TableRow['values'] = {};
  for (const [transport, result] of byTransport) {
    const value = spec.show?.(result) ?? spec.read(result);
    if (value !== undefined) values[transport] = value;
  }

  const ratios: TableRow['ratios'] = {};
  const own = spec.hasRatio === false ? undefined : values.aether;
  for (const peer of PEERS) {
    const theirs = values[peer];
    if (typeof own === 'number' && typeof theirs === 'number' && theirs) {
      ratios[peer] = own / theirs;
    }
  }

  return { label: spec.label, values, ratios };
}

const LABEL_WIDTH = 36;
const VALUE_WIDTH = 12;
const RATIO_WIDTH = 11;

/** The table as text, with a heading, notes and footnotes. */
export function formatTable(table: BrokerTable, rows: TableRow[]): string {
  const transports = table.results.map((result) => result.transport);
  const header = [
    'scenario'.padEnd(LABEL_WIDTH),
    ...transports.map((t) => TRANSPORT_TITLES[t].padStart(VALUE_WIDTH)),
    ...PEERS.map((peer) => `this/${peer}`.padStart(RATIO_WIDTH)),
  ].join('');

  const specs = new Map(ROWS.map((spec) => [spec.label, spec]));
  const lines = rows.map((row) => {
    const spec = specs.get(row.label) as RowSpec;
    const cells = table.results.map((result) =>
      formatValue(row.values[result.transport], spec, result),
    );
    const ratios = PEERS.map((peer) =>
      formatRatio(row.ratios[peer]).padStart(RATIO_WIDTH),
    );
    return [row.label.padEnd(LABEL_WIDTH), ...cells, ...ratios].join('');
  });

  const rule = '-'.repeat(header.length);
  return [
    table.title,
    ...table.notes.map((note) => `  ${note}`),
    rule,
    header,
    rule,
    ...lines,
    rule,
    ...getFootnotes(table).map((note) => `  ${note}`),
  ].join('\n');
}

function formatValue(
  value: number | string | undefined,
  spec: RowSpec,
  result: TransportResult,
): string {
  if (typeof value === 'string') return value.padStart(VALUE_WIDTH);
  if (value !== undefined && Number.isFinite(value)) {
    return value.toFixed(spec.digits).padStart(VALUE_WIDTH);
  }

  const isLatencySkipped = spec.scenario === 'latency' && result.latencySkipped;
  const isScalingSkipped = spec.scenario === 'scaling' && result.scalingSkipped;
  const mark = isScalingSkipped
    ? 'n/a (1)'
    : isLatencySkipped
      ? 'n/a (2)'
      : '-';
  return mark.padStart(VALUE_WIDTH);
}

function formatRatio(ratio: number | undefined): string {
  return ratio === undefined || !Number.isFinite(ratio)
    ? '-'
    : `${ratio.toFixed(2)}x`;
}

function getFootnotes(table: BrokerTable): string[] {
  const notes = [
    'this/peer = AetherMagic divided by the peer: above 1 is better for ' +
      'tasks/s, below 1 is better for latency, growth and memory.',
  ];
  const noScaling = table.results.find((result) => result.scalingSkipped);
  if (noScaling) {
    notes.push(`(1) ${noScaling.scalingSkipped}.`);
  }

  const noLatency = table.results.find((result) => result.latencySkipped);
  if (noLatency) {
    const title = TRANSPORT_TITLES[noLatency.transport];
    notes.push(`(2) ${title}: ${noLatency.latencySkipped}.`);
  }

  for (const result of table.results) {
    notes.push(...describeProblems(result));
  }

  return notes;
}

function describeProblems(result: TransportResult): string[] {
  const title = TRANSPORT_TITLES[result.transport];
  const errors =
    (result.latency?.errors ?? 0) +
    (result.oneCaller?.errors ?? 0) +
    (result.fourCallers?.errors ?? 0) +
    (result.progress?.errors ?? 0) +
    (result.scaling ?? []).reduce((sum, step) => sum + step.errors, 0);
  const unfinished =
    (result.oneCaller?.unfinished ?? 0) +
    (result.fourCallers?.unfinished ?? 0) +
    (result.progress?.unfinished ?? 0);

  const problems = result.failures.map((failure) => `${title}: ${failure}`);
  if (errors > 0) problems.push(`${title}: ${errors} calls failed.`);
  if (unfinished > 0) {
    problems.push(`${title}: ${unfinished} calls never completed.`);
  }

  return problems;
}
