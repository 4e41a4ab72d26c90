import { setTimeout as sleep } from 'node:timers/promises';

import type { MosquittoBroker } from '../support/mosquitto.js';
import { runFlood, type FloodResult, type LiveTask } from './flood.js';
import type { LoadDriver } from './load.js';
import type { MalformedKind } from './malformed.js';
import { readLines } from './run-log.js';
import type { ChaosWorker, WorkerPool } from './worker-pool.js';

export interface Profile {
  name: 'short' | 'long';
  workers: number;
  inFlight: number;
  concurrency: number;
  shutdownGrace: number;
  floodCount: number;
  floodDeadlineMs: number;
  /** How many times the whole sequence of faults is played. */
  cycles: number;
  /** Quiet load between two faults, in ms. */
  pauseMs: number;
  /** The run gives up (exit 1) past this, in ms. */
  watchdogMs: number;
}

export interface ScenarioContext {
  profile: Profile;
  broker: MosquittoBroker;
  pool: WorkerPool;
  driver: LoadDriver;
  callerIds: string[];
  floodKinds: MalformedKind[];
  startedAt: number;
}

/** What the faults did, over every cycle. */
export interface ScenarioLog {
  steps: string[];
  killed: number;
  floods: FloodResult[];
  /** Workers that had to survive a flood, and those that did not. */
  checkedAfterFlood: number;
  deadAfterFlood: string[];
  workerDisconnectsInFlood: number;
  gracefulCloses: { index: number; code: number | null; ms: number }[];
}

export function createScenarioLog(): ScenarioLog {
  return {
    steps: [],
    killed: 0,
    floods: [],
    checkedAfterFlood: 0,
    deadAfterFlood: [],
    workerDisconnectsInFlood: 0,
    gracefulCloses: [],
  };
}

/**
 * One cycle of faults under load: a worker killed mid-task, the broker
 * restarted, a flood of malformed messages, a worker closed gracefully.
 */
export async function runCycle(
  context: ScenarioContext,
  log: ScenarioLog,
): Promise<void> {
  const { profile, broker, pool } = context;
  const note = (step: string) => log.steps.push(`${elapsed(context)} ${step}`);

  await sleep(profile.pauseMs);
  const victim = await pool.findBusyWorker(1000);
  await pool.kill(victim);
  log.killed += 1;
  note(`SIGKILL worker ${victim.index} (pid ${victim.pid}) mid-task`);

  await sleep(profile.pauseMs);
  const restartAt = Date.now();
  await broker.restart();
  note(`broker restarted on the same port in ${Date.now() - restartAt} ms`);

  // MQTT.js reconnects once a second: give everyone time to come back.
  await sleep(profile.pauseMs + 1000);
  await floodAndCheck(context, log, note);

  const closing = await pool.findBusyWorker(1000);
  await closeGracefully(context, closing, log, note);
  await sleep(profile.pauseMs);
}

async function floodAndCheck(
  context: ScenarioContext,
  log: ScenarioLog,
  note: (step: string) => void,
): Promise<void> {
  const { profile, pool } = context;
  const exposed = pool.alive;
  const floodStart = Date.now();
  const flood = await runFlood(
    context.broker.url,
    profile.floodCount,
    {
      kinds: context.floodKinds,
      workerIds: exposed.map((worker) => worker.clientId),
      callerIds: context.callerIds,
      getLiveTasks: () => getLiveTasks(context),
    },
    profile.floodDeadlineMs,
  );
  log.floods.push(flood);
  note(
    `flood: ${flood.sent} malformed messages in ${flood.elapsedMs} ms ` +
      `(${flood.unacknowledged} not acknowledged, flood client cut off ` +
      `${flood.disconnects} times)`,
  );

  const floodEnd = Date.now();
  await sleep(profile.pauseMs);
  log.checkedAfterFlood += exposed.length;
  for (const worker of exposed) {
    const problem = findServingProblem(worker, floodEnd);
    if (problem) {
      log.deadAfterFlood.push(`worker ${worker.index}: ${problem}`);
    }
  }

  log.workerDisconnectsInFlood += countDisconnects(
    exposed,
    floodStart,
    Date.now(),
  );
}

function getLiveTasks(context: ScenarioContext): LiveTask[] {
  const live: LiveTask[] = [];
  for (const send of context.driver.live) {
    if (send.tid) {
      live.push({ callerId: context.callerIds[send.caller], tid: send.tid });
    }
  }

  return live;
}

/** Alive means the process runs and its handler ended a task since. */
function findServingProblem(
  worker: ChaosWorker,
  since: number,
): string | undefined {
  if (worker.exit) {
    const { code, signal } = worker.exit;
    return `exited (code ${code}, signal ${signal})`;
  }

  const served = readLines([worker.runLog]).some(
    (line) => line.step === 'done' && line.at >= since,
  );
  return served ? undefined : 'running, but ended no task after the flood';
}

function countDisconnects(
  workers: ChaosWorker[],
  from: number,
  to: number,
): number {
  const lines = readLines(workers.map((worker) => worker.runLog));
  return lines.filter(
    (line) =>
      line.step === 'status' &&
      line.status === 'disconnected' &&
      line.at >= from &&
      line.at <= to,
  ).length;
}

async function closeGracefully(
  context: ScenarioContext,
  worker: ChaosWorker,
  log: ScenarioLog,
  note: (step: string) => void,
): Promise<void> {
  const boundMs = context.profile.shutdownGrace + 3000;
  const startedAt = Date.now();
  const exit = await context.pool.terminate(worker, boundMs);
  const ms = Date.now() - startedAt;
  log.gracefulCloses.push({
    index: worker.index,
    code: exit?.code ?? null,
    ms,
  });
  note(
    exit
      ? `SIGTERM worker ${worker.index}: exit ${exit.code} after ${ms} ms`
      : `SIGTERM worker ${worker.index}: still running after ${ms} ms`,
  );
}

function elapsed(context: ScenarioContext): string {
  const seconds = (Date.now() - context.startedAt) / 1000;
  return `t+${seconds.toFixed(1).padStart(5)} s`;
}
