// A scan worker: serves 'files/scan' in the group of every worker of the
// job, so start as many as there are machines or cores to spread the work.
// Settings come from the environment: MQTT_URL, AETHER_UNION,
// AETHER_GROUP_MODE, AETHER_PROTOCOL_VERSION (see shared/env-options.ts).
import 'reflect-metadata';

import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';

import { AetherServer } from '../../lib/index.js';
import { readConnectionOptions, readGroupMode } from '../shared/env-options.js';
import type { WorkerReadyMessage } from './worker-ready.message.js';
import { WorkerModule } from './worker.module.js';

const logger = new Logger('ScanWorker');
const STOP_DEADLINE_MS = 10_000;

async function main(): Promise<void> {
  const server = new AetherServer({
    ...readConnectionOptions(),
    groupMode: readGroupMode(),
  });
  const app = await NestFactory.createMicroservice(WorkerModule, {
    strategy: server,
  });

  await app.listen();
  logger.log(`Worker ${server.clientId} (pid ${process.pid}) takes tasks`);

  let closing: Promise<void> | undefined;
  const shutdown = (why: string) => {
    closing ??= closeApp(why, () => app.close());
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
  // Forked by a parent that died: nobody will stop this worker otherwise.
  process.once('disconnect', () => shutdown('parent gone'));

  const ready: WorkerReadyMessage = {
    type: 'ready',
    workerId: server.clientId,
    pid: process.pid,
  };
  process.send?.(ready);
}

async function closeApp(why: string, close: () => Promise<void>) {
  logger.log(`Stopping (${why}): running tasks may finish first`);
  // Past the transport's 5 s grace, something is stuck: do not linger.
  setTimeout(() => process.exit(1), STOP_DEADLINE_MS).unref();

  try {
    await close();
    logger.log('Stopped');
  } catch (error) {
    logger.error('Stopping failed', error);
    process.exitCode = 1;
  }

  // An open IPC channel alone would keep this process alive.
  if (process.connected) process.disconnect();
}

main().catch((error: unknown) => {
  logger.error('The worker could not start', error);
  process.exit(1);
});
