import { Logger } from '@nestjs/common';
import { fork, type ChildProcess } from 'node:child_process';

import { isWorkerReadyMessage } from '../worker/worker-ready.message.js';

/** A forked worker that said it takes tasks. */
export interface WorkerProcess {
  /** `worker-1`, `worker-2`...: shorter than the id in a table. */
  label: string;
  workerId: string;
  pid: number;
  /** Asks it to stop (SIGTERM), then kills it past the deadline. */
  stop(): Promise<void>;
}

const READY_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 8_000;
const logger = new Logger('WorkerProcesses');

/** Forks `count` workers and waits until each one listens. */
export async function forkWorkers(
  script: string,
  count: number,
  env: NodeJS.ProcessEnv,
): Promise<WorkerProcess[]> {
  const labels = Array.from({ length: count }, (_, i) => `worker-${i + 1}`);
  const starting = labels.map((label) => forkWorker(script, label, env));
  const settled = await Promise.allSettled(starting);

  const workers = settled.flatMap((s) =>
    s.status === 'fulfilled' ? [s.value] : [],
  );
  const failure = settled.find((s) => s.status === 'rejected');
  if (failure) {
    await Promise.all(workers.map((worker) => worker.stop()));
    throw failure.reason;
  }

  return workers;
}

function forkWorker(
  script: string,
  label: string,
  env: NodeJS.ProcessEnv,
): Promise<WorkerProcess> {
  const child = fork(script, [], { env, stdio: 'inherit' });
  const pid = child.pid ?? -1;
  logger.log(`Forked ${label} (pid ${pid})`);

  return new Promise<WorkerProcess>((resolve, reject) => {
    const onEarlyExit = (code: number | null, signal: string | null) =>
      fail(`it exited (${code ?? signal})`);
    const fail = (why: string) => {
      clearTimeout(timer);
      child.off('exit', onEarlyExit);
      child.kill('SIGKILL');
      reject(new Error(`${label} (pid ${pid}) did not start: ${why}.`));
    };
    const timer = setTimeout(
      () => fail(`no ready message within ${READY_TIMEOUT_MS} ms`),
      READY_TIMEOUT_MS,
    );

    child.once('exit', onEarlyExit);
    child.on('message', (message) => {
      if (!isWorkerReadyMessage(message)) return;
      clearTimeout(timer);
      child.off('exit', onEarlyExit);
      child.once('exit', (code, signal) =>
        logger.log(`${label} (pid ${pid}) exited (${code ?? signal})`),
      );

      const { workerId } = message;
      resolve({ label, workerId, pid, stop: () => stopChild(child, label) });
    });
  });
}

async function stopChild(child: ChildProcess, label: string): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;

  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => resolve()),
  );
  child.kill('SIGTERM');
  const timer = setTimeout(() => {
    logger.warn(`${label} (pid ${child.pid}) ignored SIGTERM; killing it`);
    child.kill('SIGKILL');
  }, STOP_TIMEOUT_MS);

  await exited;
  clearTimeout(timer);
}
