import { appendFileSync, existsSync, readFileSync } from 'node:fs';

/**
 * What a chaos worker writes down about each run of its handler, one JSON
 * line per step. The lines are appended synchronously, so a worker killed
 * with SIGKILL loses none that it wrote before dying.
 */
export type RunStep = 'start' | 'done' | 'abort';

export interface RunLine {
  step: RunStep;
  tid: string;
  /** The caller's own name for the task; '' for a stranger's perform. */
  key: string;
  worker: number;
  at: number;
}

/** A connection status change of a worker, written to the same log. */
export interface StatusLine {
  step: 'status';
  status: string;
  worker: number;
  at: number;
}

export type WorkerLogLine = RunLine | StatusLine;

export function appendLine(path: string, line: WorkerLogLine): void {
  appendFileSync(path, JSON.stringify(line) + '\n');
}

/** Every line of every log; a line cut short by SIGKILL is skipped. */
export function readLines(paths: string[]): WorkerLogLine[] {
  const lines: WorkerLogLine[] = [];
  for (const path of paths.filter((each) => existsSync(each))) {
    for (const text of readFileSync(path, 'utf8').split('\n')) {
      const line = parseLine(text);
      if (line) {
        lines.push(line);
      }
    }
  }

  return lines;
}

function parseLine(text: string): WorkerLogLine | undefined {
  if (text.length === 0) {
    return undefined;
  }

  try {
    return JSON.parse(text) as WorkerLogLine;
  } catch {
    return undefined;
  }
}

/** How often each task key started and finished, over all workers. */
export interface KeyRuns {
  starts: number;
  dones: number;
  workers: Set<number>;
  /** Runs to the end, per worker: over 1 means one worker ran it twice. */
  donesByWorker: Map<number, number>;
}

export function countRunsByKey(lines: WorkerLogLine[]): Map<string, KeyRuns> {
  const byKey = new Map<string, KeyRuns>();
  for (const line of lines) {
    if (line.step === 'status' || line.key === '') {
      continue;
    }

    const runs = byKey.get(line.key) ?? {
      starts: 0,
      dones: 0,
      workers: new Set<number>(),
      donesByWorker: new Map<number, number>(),
    };
    runs.workers.add(line.worker);
    runs.starts += line.step === 'start' ? 1 : 0;
    if (line.step === 'done') {
      runs.dones += 1;
      const done = runs.donesByWorker.get(line.worker) ?? 0;
      runs.donesByWorker.set(line.worker, done + 1);
    }
    byKey.set(line.key, runs);
  }

  return byKey;
}
