import type { LoadDriver, TrackedSend } from './load.js';
import type { KeyRuns } from './run-log.js';

/** One line of the table; a failed check makes the script exit 1. */
export interface Row {
  figure: string;
  value: string | number;
  /** What the figure must be, printed beside it; omitted when free. */
  bound?: string;
  isFailed?: boolean;
}

/** A figure that must be 0 for the run to pass. */
export function mustBeZero(figure: string, value: number): Row {
  return { figure, value, bound: 'must be 0', isFailed: value !== 0 };
}

/** The caller-side figures of every send, in rows. */
export function describeSends(driver: LoadDriver): Row[] {
  const sends = driver.sends;
  const ended = sends.filter((send) => send.endedAt !== undefined);
  const hung = sends.filter((send) => isHung(driver, send));
  const untyped = sends.filter((send) => !send.isTyped);
  const overshoot = ended.reduce(
    (worst, send) =>
      Math.max(worst, endedAt(send) - send.startedAt - send.timeout),
    0,
  );

  return [
    { figure: 'tasks sent', value: sends.length },
    { figure: 'tasks sent with retries: 2', value: count(sends, withRetry) },
    { figure: 'completed: success', value: count(sends, isOutcome('success')) },
    { figure: 'completed: failed', value: count(sends, isOutcome('failed')) },
    ...countCodes(sends, 'failed', '  failed with'),
    { figure: 'ended in an error', value: count(sends, isOutcome('error')) },
    ...countCodes(sends, 'error', '  error'),
    mustBeZero('errors that are not AetherError', untyped.length),
    mustBeZero('hung past their bound', hung.length),
    { figure: 'latest end past its timeout (ms)', value: overshoot },
    mustBeZero(
      'duplicates: two completions seen',
      count(sends, (send) => send.completions > 1),
    ),
    mustBeZero(
      'events after the end',
      sends.reduce((sum, send) => sum + send.eventsAfterEnd, 0),
    ),
    mustBeZero(
      'completions carrying another task',
      count(sends, (send) => send.isCrossed),
    ),
  ];
}

/** The worker-side and wire figures: runs and re-sends per task key. */
export function describeRuns(
  driver: LoadDriver,
  runs: Map<string, KeyRuns>,
  performsByKey: Map<string, number>,
): Row[] {
  const keys = driver.sends.map((send) => send.key);
  const runsOf = (key: string) => runs.get(key);

  return [
    {
      figure: 'retried: perform seen more than once',
      value: count(keys, (key) => (performsByKey.get(key) ?? 0) > 1),
    },
    {
      figure: 'retried: started on two workers or more',
      value: count(keys, (key) => (runsOf(key)?.workers.size ?? 0) > 1),
    },
    // The issue's promise: a worker never runs one tid twice, and a task
    // is never run twice unless its caller asked for retries. A retry of a
    // task whose worker went silent may run it on a second worker: that is
    // what a retry is, and it is counted, not hidden.
    mustBeZero(
      'duplicates: one worker ran a task twice',
      count(keys, (key) =>
        [...(runsOf(key)?.donesByWorker.values() ?? [])].some((n) => n > 1),
      ),
    ),
    mustBeZero(
      'duplicates: a task without retries ran twice',
      count(
        driver.sends,
        (send) => send.retries === 0 && (runsOf(send.key)?.dones ?? 0) > 1,
      ),
    ),
    {
      figure: 'retried tasks run to the end on two workers',
      value: count(
        driver.sends,
        (send) => send.retries > 0 && (runsOf(send.key)?.dones ?? 0) > 1,
      ),
    },
    {
      figure: 'never started at any worker',
      value: count(keys, (key) => runsOf(key) === undefined),
    },
  ];
}

export function printTable(title: string, rows: Row[]): void {
  const width = Math.max(...rows.map((row) => row.figure.length));
  const valueWidth = Math.max(...rows.map((row) => `${row.value}`.length));
  console.log(`\n${title}\n`);
  for (const row of rows) {
    const mark = row.isFailed ? '  <-- FAILED' : '';
    const bound = row.bound ? `  (${row.bound})` : '';
    console.log(
      `  ${row.figure.padEnd(width)}  ${`${row.value}`.padStart(valueWidth)}` +
        `${bound}${mark}`,
    );
  }
}

function isHung(driver: LoadDriver, send: TrackedSend): boolean {
  return endedAt(send) > driver.deadline(send);
}

function endedAt(send: TrackedSend): number {
  return send.endedAt ?? Number.POSITIVE_INFINITY;
}

function withRetry(send: TrackedSend): boolean {
  return send.retries > 0;
}

function isOutcome(outcome: TrackedSend['outcome']) {
  return (send: TrackedSend) => send.outcome === outcome;
}

function count<T>(items: T[], predicate: (item: T) => boolean): number {
  return items.reduce((sum, item) => sum + (predicate(item) ? 1 : 0), 0);
}

function countCodes(
  sends: TrackedSend[],
  outcome: TrackedSend['outcome'],
  prefix: string,
): Row[] {
  const byCode = new Map<string, number>();
  for (const send of sends.filter(isOutcome(outcome))) {
    const code = send.code ?? '(no code)';
    byCode.set(code, (byCode.get(code) ?? 0) + 1);
  }

  return [...byCode]
    .sort(([, a], [, b]) => b - a)
    .map(([code, value]) => ({ figure: `${prefix} ${code}`, value }));
}
