import { fork, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

import { readLines } from './run-log.js';
import {
  SETTINGS_VARIABLE,
  type ChaosWorkerSettings,
  type WorkerReady,
} from './shared.js';

const WORKER_ENTRY = fileURLToPath(
  new URL('./chaos-worker.js', import.meta.url),
);
const READY_TIMEOUT_MS = 20_000;

export interface WorkerPoolOptions {
  url: string;
  /** Where run logs and worker output go. */
  directory: string;
  concurrency: number;
  shutdownGrace: number;
}

export interface WorkerExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  at: number;
}

export interface ChaosWorker {
  index: number;
  pid: number;
  clientId: string;
  runLog: string;
  output: string;
  child: ChildProcess;
  exit?: WorkerExit;
  exited: Promise<WorkerExit>;
}

/** The worker processes of one chaos run, each tracked by its pid. */
export class WorkerPool {
  readonly workers: ChaosWorker[] = [];

  constructor(private readonly options: WorkerPoolOptions) {}

  get runLogs(): string[] {
    return this.workers.map((worker) => worker.runLog);
  }

  get alive(): ChaosWorker[] {
    return this.workers.filter((worker) => worker.exit === undefined);
  }

  /** Starts `count` more workers, numbered after those already started. */
  async start(count: number): Promise<void> {
    const starting = [];
    const first = this.workers.length;
    for (let index = first; index < first + count; index += 1) {
      starting.push(this.startOne(index));
    }

    this.workers.push(...(await Promise.all(starting)));
  }

  private async startOne(index: number): Promise<ChaosWorker> {
    const { directory } = this.options;
    const settings: ChaosWorkerSettings = {
      url: this.options.url,
      index,
      concurrency: this.options.concurrency,
      shutdownGrace: this.options.shutdownGrace,
      runLog: join(directory, `worker-${index}.runs.jsonl`),
    };
    const output = join(directory, `worker-${index}.out`);
    const outputFd = openSync(output, 'a');
    const child = fork(WORKER_ENTRY, [], {
      env: { ...process.env, [SETTINGS_VARIABLE]: JSON.stringify(settings) },
      stdio: ['ignore', outputFd, outputFd, 'ipc'],
    });
    closeSync(outputFd);

    const exited = new Promise<WorkerExit>((resolve) =>
      child.once('exit', (code, signal) =>
        resolve({ code, signal, at: Date.now() }),
      ),
    );
    const ready = await waitForReady(child, exited, output);
    const worker: ChaosWorker = {
      index,
      pid: child.pid as number,
      clientId: ready.clientId,
      runLog: settings.runLog,
      output,
      child,
      exited,
    };
    exited.then((exit) => (worker.exit = exit));
    return worker;
  }

  /**
   * A live worker with a task started and not ended, so that a kill lands
   * mid-task; waits up to `waitMs` for one, else takes any live worker.
   */
  async findBusyWorker(waitMs: number): Promise<ChaosWorker> {
    const deadline = Date.now() + waitMs;
    while (Date.now() < deadline) {
      const busy = this.alive.find((worker) => hasOpenRun(worker.runLog));
      if (busy) {
        return busy;
      }

      await sleep(20);
    }

    return this.alive[0];
  }

  async kill(worker: ChaosWorker): Promise<WorkerExit> {
    process.kill(worker.pid, 'SIGKILL');
    return worker.exited;
  }

  /** SIGTERM; resolves with the exit, or undefined past `timeoutMs`. */
  async terminate(
    worker: ChaosWorker,
    timeoutMs: number,
  ): Promise<WorkerExit | undefined> {
    if (worker.exit) {
      return worker.exit;
    }

    process.kill(worker.pid, 'SIGTERM');
    return Promise.race([worker.exited, sleep(timeoutMs, undefined)]);
  }

  /** Ends every worker still running: SIGTERM, then SIGKILL past 5 s. */
  async stopAll(): Promise<void> {
    await Promise.all(
      this.alive.map(async (worker) => {
        const exit = await this.terminate(worker, 5000);
        if (!exit && worker.exit === undefined) {
          await this.kill(worker);
        }
      }),
    );
  }
}

function waitForReady(
  child: ChildProcess,
  exited: Promise<WorkerExit>,
  output: string,
): Promise<WorkerReady> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`A chaos worker did not start; see ${output}`));
    }, READY_TIMEOUT_MS);

    child.once('message', (message) => {
      clearTimeout(timer);
      resolve(message as WorkerReady);
    });
    exited.then((exit) => {
      clearTimeout(timer);
      reject(
        new Error(
          `A chaos worker exited at start (code ${exit.code}); ` +
            `see ${output}`,
        ),
      );
    });
  });
}

function hasOpenRun(runLog: string): boolean {
  const open = new Set<string>();
  for (const line of readLines([runLog])) {
    if (line.step === 'start') {
      open.add(line.tid);
    } else if (line.step !== 'status') {
      open.delete(line.tid);
    }
  }

  return open.size > 0;
}
