/**
 * The chaos suite of issue 4: under a steady load of tasks, kill a worker
 * mid-task, restart the broker, flood every topic with malformed messages
 * and close a worker gracefully; then show that every task ended, for its
 * caller, in one completion or a typed error within its bounds, that no
 * worker ran a task twice and that only tasks sent with retries ran on a
 * second worker. Prints one table; exits 1 when a must-hold figure fails.
 *
 *   npm run chaos             the short run (well under a minute)
 *   npm run chaos -- --long   more workers, more floods, four cycles
 *   --without-poison          leaves out the well-formed performs whose
 *                             reply topic no client may publish to
 */
import 'reflect-metadata';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Logger } from '@nestjs/common';

import { AetherClient } from '../../lib/index.js';
import { startMosquitto, type MosquittoBroker } from '../support/mosquitto.js';
import { FileLogger } from './file-logger.js';
import { LoadDriver } from './load.js';
import { MALFORMED_KINDS } from './malformed.js';
import {
  describeRuns,
  describeSends,
  mustBeZero,
  printTable,
  type Row,
} from './report.js';
import { countRunsByKey, readLines } from './run-log.js';
import {
  createScenarioLog,
  runCycle,
  type Profile,
  type ScenarioLog,
} from './scenario.js';
import { CHAOS_UNION } from './shared.js';
import { WireSpy } from './wire-spy.js';
import { WorkerPool } from './worker-pool.js';

const SHORT: Profile = {
  name: 'short',
  workers: 4,
  inFlight: 48,
  concurrency: 8,
  shutdownGrace: 1000,
  floodCount: 5000,
  floodDeadlineMs: 15_000,
  cycles: 1,
  pauseMs: 1500,
  watchdogMs: 100_000,
};

const LONG: Profile = {
  ...SHORT,
  name: 'long',
  workers: 6,
  inFlight: 64,
  floodCount: 25_000,
  floodDeadlineMs: 60_000,
  cycles: 4,
  pauseMs: 4000,
  watchdogMs: 15 * 60_000,
};

const CLIENT_TIMEOUT_MS = 3000;
const RECEIPT_TIMEOUT_MS = 1000;
const MARGIN_MS = 500;
const CALLERS = 2;

// The heap figures are only worth reading after a full collection.
setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;

interface ChaosRun {
  profile: Profile;
  directory: string;
  broker: MosquittoBroker;
  spy: WireSpy;
  pool: WorkerPool;
  callers: AetherClient[];
  unhandled: unknown[];
  startedAt: number;
}

async function main(): Promise<number> {
  const profile = process.argv.includes('--long') ? LONG : SHORT;
  const directory = mkdtempSync(join(tmpdir(), 'aethermagic-chaos-'));
  Logger.overrideLogger(new FileLogger(join(directory, 'callers.log')));
  const watchdog = setTimeout(
    () => giveUp(profile, directory),
    profile.watchdogMs,
  );

  const run = await setUp(profile, directory);
  const heapBefore = measureHeap();
  const { driver, log } = await playScenario(run);
  const rows = await collectRows(run, driver, log);

  // Drop the script's own records, so that only the clients' state counts.
  driver.sends.length = 0;
  run.spy.performsByKey.clear();
  rows.push(
    { figure: 'caller heap before (MiB, after gc)', value: heapBefore },
    { figure: 'caller heap after (MiB, after gc)', value: measureHeap() },
  );

  await Promise.all(run.callers.map((caller) => caller.close()));
  await run.broker.stop();
  clearTimeout(watchdog);
  return report(run, rows, log);
}

async function setUp(profile: Profile, directory: string): Promise<ChaosRun> {
  const unhandled: unknown[] = [];
  process.on('unhandledRejection', (reason) => unhandled.push(reason));

  const startedAt = Date.now();
  const broker = await startMosquitto();
  const spy = new WireSpy();
  await spy.start(broker.url);
  const pool = new WorkerPool({
    url: broker.url,
    directory,
    concurrency: profile.concurrency,
    shutdownGrace: profile.shutdownGrace,
  });
  await pool.start(profile.workers);

  const callers = createCallers(broker.url);
  await Promise.all(callers.map((caller) => caller.connect()));
  return {
    profile,
    directory,
    broker,
    spy,
    pool,
    callers,
    unhandled,
    startedAt,
  };
}

/** The load, and every cycle of faults under it, until all tasks end. */
async function playScenario(run: ChaosRun) {
  const { profile, pool } = run;
  const driver = new LoadDriver(run.callers, {
    inFlight: profile.inFlight,
    clientTimeout: CLIENT_TIMEOUT_MS,
    marginMs: MARGIN_MS,
  });
  const log = createScenarioLog();
  const context = {
    profile,
    broker: run.broker,
    pool,
    driver,
    callerIds: run.callers.map((caller) => caller.clientId),
    floodKinds: chooseFloodKinds(),
    startedAt: Date.now(),
  };

  driver.start();
  for (let cycle = 0; cycle < profile.cycles; cycle += 1) {
    await runCycle(context, log);
    if (cycle + 1 < profile.cycles) {
      await pool.start(profile.workers - pool.alive.length);
    }
  }

  await driver.stop();
  return { driver, log };
}

/** Reads the workers' run logs once they have all stopped. */
async function collectRows(
  run: ChaosRun,
  driver: LoadDriver,
  log: ScenarioLog,
): Promise<Row[]> {
  const rows = describeSends(driver);
  const leftInClients = run.callers.reduce(
    (sum, caller) => sum + caller.inFlight,
    0,
  );

  await run.pool.stopAll();
  await run.spy.close();
  const runs = countRunsByKey(readLines(run.pool.runLogs));
  rows.push(...describeRuns(driver, runs, run.spy.performsByKey));
  rows.push(...describeFaults(run.profile, log));
  rows.push(mustBeZero('calls left pending in the clients', leftInClients));
  rows.push(mustBeZero('unhandled rejections', run.unhandled.length));
  return rows;
}

function report(run: ChaosRun, rows: Row[], log: ScenarioLog): number {
  const { profile } = run;
  const seconds = ((Date.now() - run.startedAt) / 1000).toFixed(1);
  printTable(
    `AetherMagic chaos, ${profile.name} run: ${profile.workers} workers, ` +
      `${profile.inFlight} tasks in flight, ${profile.cycles} cycle(s), ` +
      `${seconds} s`,
    rows,
  );
  printSteps(log, run.unhandled);

  if (rows.some((row) => row.isFailed)) {
    console.log(`\nFAILED. Worker and caller logs kept in ${run.directory}`);
    return 1;
  }

  rmSync(run.directory, { recursive: true, force: true });
  console.log(
    '\nPASSED: every task ended once, in time; no worker ran a task ' +
      'twice, and only retried tasks ran on a second worker.',
  );
  return 0;
}

function createCallers(url: string): AetherClient[] {
  const callers: AetherClient[] = [];
  for (let index = 0; index < CALLERS; index += 1) {
    callers.push(
      new AetherClient({
        url,
        union: CHAOS_UNION,
        timeout: CLIENT_TIMEOUT_MS,
        receiptTimeout: RECEIPT_TIMEOUT_MS,
        retries: 0,
      }),
    );
  }

  return callers;
}

function chooseFloodKinds() {
  if (!process.argv.includes('--without-poison')) {
    return MALFORMED_KINDS;
  }

  return MALFORMED_KINDS.filter((kind) => !kind.isPoison);
}

function describeFaults(profile: Profile, log: ScenarioLog): Row[] {
  const sent = log.floods.reduce((sum, flood) => sum + flood.sent, 0);
  const alive = log.checkedAfterFlood - log.deadAfterFlood.length;
  const badCloses = log.gracefulCloses.filter(
    (close) => close.code !== 0 || close.ms > profile.shutdownGrace + 3000,
  );

  return [
    { figure: 'workers killed with SIGKILL', value: log.killed },
    { figure: 'malformed messages sent', value: sent },
    {
      figure: 'workers alive and serving after the flood',
      value: `${alive}/${log.checkedAfterFlood}`,
      bound: 'must be all',
      isFailed: alive !== log.checkedAfterFlood,
    },
    {
      figure: 'worker disconnects during the flood',
      value: log.workerDisconnectsInFlood,
      bound: 'expected 0',
    },
    mustBeZero('graceful closes not exiting 0 in time', badCloses.length),
  ];
}

function printSteps(log: ScenarioLog, unhandled: unknown[]): void {
  console.log('\nWhat happened:');
  for (const step of [...log.steps, ...log.deadAfterFlood]) {
    console.log(`  ${step}`);
  }

  for (const flood of log.floods.slice(0, 1)) {
    const kinds = [...flood.byKind].map(([kind, n]) => `${kind} ${n}`);
    console.log(`  flood kinds: ${kinds.join(', ')}`);
  }

  for (const reason of unhandled.slice(0, 3)) {
    console.log(`  unhandled rejection: ${String(reason)}`);
  }
}

function measureHeap(): number {
  collectGarbage();
  collectGarbage();
  return Math.round((process.memoryUsage().heapUsed / 2 ** 20) * 10) / 10;
}

function giveUp(profile: Profile, directory: string): void {
  console.error(
    `The chaos run went past its ${profile.watchdogMs} ms bound and was ` +
      `stopped. Logs are in ${directory}.`,
  );
  process.exit(1);
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error('The chaos run could not complete:', error);
    process.exit(1);
  },
);
