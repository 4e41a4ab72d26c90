import type { ScanOutcome } from './scan-demo.js';
import type { WorkerProcess } from './worker-processes.js';

// `scan ms` is the worker's own time; `total ms` adds the transport, the
// gateway and the wait for a worker, as the HTTP client saw it.
const HEADERS = [
  'path',
  'files',
  'bytes',
  'lines',
  'worker',
  'scan ms',
  'total ms',
];
const NUMERIC_COLUMNS = new Set([1, 2, 3, 5, 6]);

/** The outcomes as a plain-text table, one row a scan. */
export function formatResultsTable(
  outcomes: ScanOutcome[],
  workers: WorkerProcess[],
): string {
  const labels = new Map(workers.map((w) => [w.workerId, w.label]));
  const rows = outcomes.map((outcome) => toRow(outcome, labels));
  const widths = HEADERS.map((header, column) =>
    Math.max(header.length, ...rows.map((row) => row[column].length)),
  );

  const format = (cells: string[]) =>
    cells
      .map((cell, column) =>
        NUMERIC_COLUMNS.has(column)
          ? cell.padStart(widths[column])
          : cell.padEnd(widths[column]),
      )
      .join('  ')
      .trimEnd();
  const rule = widths.map((width) => '-'.repeat(width)).join('  ');

  return [format(HEADERS), rule, ...rows.map(format)].join('\n');
}

function toRow(outcome: ScanOutcome, labels: Map<string, string>): string[] {
  const { result, target } = outcome;
  if (!result) {
    const elapsed = formatCount(outcome.elapsedMs);
    return [target.label, '-', '-', '-', 'failed', '-', elapsed];
  }

  const worker = labels.get(result.workerId) ?? result.workerId;
  return [
    target.label,
    formatCount(result.files),
    formatCount(result.bytes),
    formatCount(result.lines),
    worker,
    formatCount(result.durationMs),
    formatCount(outcome.elapsedMs),
  ];
}

/** How many scans each worker did, zero included. */
export function countTasksByWorker(
  outcomes: ScanOutcome[],
  workers: WorkerProcess[],
): Map<WorkerProcess, number> {
  const counts = new Map(workers.map((worker) => [worker, 0]));
  for (const { result } of outcomes) {
    const worker = workers.find((w) => w.workerId === result?.workerId);
    if (worker) counts.set(worker, (counts.get(worker) ?? 0) + 1);
  }

  return counts;
}

function formatCount(value: number): string {
  return value.toLocaleString('en-US');
}
