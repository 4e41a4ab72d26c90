/**
 * One chaos worker process: a Nest microservice on AetherServer serving
 * `chaos/work`. Forked by the chaos script, which reads its run log to see
 * how often each task ran, and stops it with SIGKILL or SIGTERM.
 */
import 'reflect-metadata';
import { setTimeout as sleep } from 'node:timers/promises';
import { Controller, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import {
  Ctx,
  MessagePattern,
  Payload,
  RpcException,
} from '@nestjs/microservices';

import { AetherContext, AetherServer } from '../../lib/index.js';
import { appendLine, type RunStep } from './run-log.js';
import {
  CHAOS_FAILURE_CODE,
  CHAOS_PATTERN,
  CHAOS_UNION,
  isChaosInput,
  SETTINGS_VARIABLE,
  type ChaosWorkerSettings,
  type WorkerReady,
} from './shared.js';

const settings = JSON.parse(
  process.env[SETTINGS_VARIABLE] ?? '{}',
) as ChaosWorkerSettings;

function writeRun(step: RunStep, tid: string, key: string): void {
  appendLine(settings.runLog, {
    step,
    tid,
    key,
    worker: settings.index,
    at: Date.now(),
  });
}

@Controller()
class ChaosController {
  @MessagePattern(CHAOS_PATTERN)
  async work(@Payload() input: unknown, @Ctx() context: AetherContext) {
    // The flood sends well-formed performs with any input: run them too,
    // under an empty key, so that they never count as the script's tasks.
    const task = isChaosInput(input)
      ? input
      : { key: '', workMs: 1, shouldFail: false };
    writeRun('start', context.tid, task.key);

    try {
      await context.status(10, { step: 1 });
      await sleep(task.workMs / 2, undefined, { signal: context.signal });
      await context.status(60, { step: 2 });
      await sleep(task.workMs / 2, undefined, { signal: context.signal });
    } catch (error) {
      writeRun('abort', context.tid, task.key);
      throw error;
    }

    writeRun('done', context.tid, task.key);
    if (task.shouldFail) {
      throw new RpcException({
        code: CHAOS_FAILURE_CODE,
        message: 'The chaos script asked this task to fail.',
      });
    }

    return { key: task.key, worker: settings.index };
  }
}

@Module({ controllers: [ChaosController] })
class ChaosWorkerModule {}

async function main(): Promise<void> {
  const server = new AetherServer({
    url: settings.url,
    union: CHAOS_UNION,
    concurrency: settings.concurrency,
    shutdownGrace: settings.shutdownGrace,
  });
  for (const status of ['connected', 'disconnected', 'reconnecting']) {
    server.on(status as 'connected', () => writeStatus(status));
  }

  const app = await NestFactory.createMicroservice(ChaosWorkerModule, {
    strategy: server,
    logger: ['error', 'warn'],
  });
  await app.listen();

  process.once('SIGTERM', () => {
    writeStatus('closing');
    app.close().then(
      () => (writeStatus('closed'), process.exit(0)),
      () => process.exit(2),
    );
  });

  const ready: WorkerReady = { type: 'ready', clientId: server.clientId };
  process.send?.(ready);
}

function writeStatus(status: string): void {
  appendLine(settings.runLog, {
    step: 'status',
    status,
    worker: settings.index,
    at: Date.now(),
  });
}

// A worker whose script is gone must not linger.
process.on('disconnect', () => process.exit(3));

main().catch((error: unknown) => {
  console.error('The chaos worker could not start:', error);
  process.exit(1);
});
