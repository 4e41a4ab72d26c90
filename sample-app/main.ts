// What `npm start` runs: a broker (in-process unless MQTT_URL is set), two
// scan workers in processes of their own, the HTTP gateway, then six scans
// at once through the gateway's SSE endpoint, a results table, and a clean
// stop. `--serve` keeps everything running afterwards; a folder given as
// the first argument is scanned six times instead of the repo's folders.
import 'reflect-metadata';

import { Logger } from '@nestjs/common';
import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import type { GroupMode } from '../lib/index.js';
import {
  startInProcessBroker,
  type InProcessBroker,
} from './demo/in-process-broker.js';
import {
  countTasksByWorker,
  formatResultsTable,
} from './demo/results-table.js';
import { runScans, type ScanTarget } from './demo/scan-demo.js';
import { forkWorkers, type WorkerProcess } from './demo/worker-processes.js';
import { startGateway, type StartedGateway } from './gateway/gateway.js';
import { readConnectionOptions } from './shared/env-options.js';
import { SCAN_TIMEOUT_MS } from './shared/scan.contract.js';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const WORKER_SCRIPT = fileURLToPath(
  new URL('./worker/main.js', import.meta.url),
);
const DEMO_FOLDERS = [
  'lib',
  'sample-app',
  'test',
  'docs',
  'node_modules/rxjs',
  'node_modules/mqtt',
];
const TASK_COUNT = 6;
const WORKER_COUNT = 2;

const logger = new Logger('SampleApp');

/** Everything started, so that every path out stops all of it. */
interface Running {
  broker?: InProcessBroker;
  workers: WorkerProcess[];
  gateway?: StartedGateway;
}

/** How every process of the sample reaches the broker. */
interface BrokerSettings {
  url: string;
  groupMode?: GroupMode;
  protocolVersion?: 4 | 5;
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const isServing = args.includes('--serve');
  const folder = args.find((arg) => !arg.startsWith('--'));
  const running: Running = { workers: [] };
  if (folder && !isDirectory(folder)) {
    logger.error(`${resolve(folder)} is not a folder: give one to scan`);
    return 1;
  }

  try {
    const broker = await connectBroker(running);
    running.workers = await startWorkers(broker);
    running.gateway = await startGatewayFor(broker);

    const { gateway, workers } = running;
    const targets = chooseTargets(folder);
    const isSuccess = await runDemo(gateway.url, workers, targets);
    if (isServing) await serveUntilStopped(gateway.url, folder);
    return isSuccess ? 0 : 1;
  } catch (error) {
    logger.error('The sample app failed', error);
    return 1;
  } finally {
    await stopAll(running);
  }
}

async function connectBroker(running: Running): Promise<BrokerSettings> {
  const url = process.env.MQTT_URL;
  if (url) {
    logger.log(`Using the broker at ${url} (MQTT_URL)`);
    return { url };
  }

  running.broker = await startInProcessBroker();
  logger.log(`Started an in-process aedes broker at ${running.broker.url}`);
  // aedes speaks MQTT 3.1.1 only and grants `$share` filters that never
  // deliver: workers must claim tasks instead (README, group modes).
  return { url: running.broker.url, groupMode: 'claim', protocolVersion: 4 };
}

async function startWorkers(broker: BrokerSettings) {
  const env: NodeJS.ProcessEnv = { ...process.env, MQTT_URL: broker.url };
  if (broker.groupMode) env.AETHER_GROUP_MODE = broker.groupMode;
  if (broker.protocolVersion) {
    env.AETHER_PROTOCOL_VERSION = String(broker.protocolVersion);
  }

  const workers = await forkWorkers(WORKER_SCRIPT, WORKER_COUNT, env);
  for (const worker of workers) {
    logger.log(`${worker.label} is ready as ${worker.workerId}`);
  }

  return workers;
}

async function startGatewayFor(broker: BrokerSettings) {
  const fromEnv = readConnectionOptions();
  const gateway = await startGateway({
    client: {
      ...fromEnv,
      url: broker.url,
      protocolVersion: broker.protocolVersion ?? fromEnv.protocolVersion,
      timeout: SCAN_TIMEOUT_MS,
    },
    port: Number(process.env.PORT || 0),
  });

  logger.log(`Gateway listening on ${gateway.url}`);
  return gateway;
}

function chooseTargets(folder: string | undefined): ScanTarget[] {
  if (folder) {
    const path = resolve(folder);
    return Array.from({ length: TASK_COUNT }, (_, i) => ({
      label: `${folder} #${i + 1}`,
      path,
    }));
  }

  return DEMO_FOLDERS.map((label) => ({
    label,
    path: resolve(REPO_ROOT, label),
  }))
    .filter((target) => existsSync(target.path))
    .slice(0, TASK_COUNT);
}

/** Runs the scans; false when one of them failed. */
async function runDemo(
  gatewayUrl: string,
  workers: WorkerProcess[],
  targets: ScanTarget[],
): Promise<boolean> {
  logger.log(`Sending ${targets.length} scans at once through the gateway`);
  const outcomes = await runScans(gatewayUrl, targets);

  process.stdout.write(`\n${formatResultsTable(outcomes, workers)}\n\n`);
  const counts = countTasksByWorker(outcomes, workers);
  for (const [worker, count] of counts) {
    logger.log(`${worker.label} (${worker.workerId}) did ${count} scans`);
  }

  // Not a failure: each scan goes to the least loaded worker as its
  // caller sees it, and a worker that was slow to start may miss a run.
  const idle = [...counts].filter(([, count]) => count === 0).length;
  if (idle > 0) {
    logger.warn(
      `${idle} worker(s) got no scan this time: a worker that joins late ` +
        `can miss the first scans; run it again to see both.`,
    );
  }

  const failed = outcomes.filter((outcome) => outcome.error).length;
  if (failed > 0) logger.warn(`${failed} of ${outcomes.length} scans failed`);
  return failed === 0;
}

async function serveUntilStopped(url: string, folder: string | undefined) {
  const path = folder ? resolve(folder) : resolve(REPO_ROOT, 'lib');
  logger.log('Serving until Ctrl-C. Try:');
  process.stdout.write(
    `  curl -N "${url}/scan?path=${encodeURIComponent(path)}"\n` +
      `  curl -X POST -H 'content-type: application/json' ` +
      `-d '{"path":"${path}"}' ${url}/scan\n`,
  );

  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
}

function isDirectory(path: string): boolean {
  return statSync(path, { throwIfNoEntry: false })?.isDirectory() === true;
}

async function stopAll(running: Running): Promise<void> {
  logger.log('Stopping the gateway, the workers and the broker');
  await running.gateway?.app.close().catch((error: unknown) => {
    logger.error('The gateway did not close cleanly', error);
  });
  await Promise.all(running.workers.map((worker) => worker.stop()));
  await running.broker?.close();
  logger.log('Everything stopped');
}

process.exitCode = await main();
