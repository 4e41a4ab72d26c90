import 'reflect-metadata';

import type { INestMicroservice, Type } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { lastValueFrom, toArray, type Observable } from 'rxjs';

import {
  AetherClient,
  AetherServer,
  type AetherClientOptions,
  type AetherEvent,
  type AetherServerOptions,
} from '../../lib/index.js';

/** A worker app as a user builds it, through @nestjs/testing. */
export interface StartedWorker {
  app: INestMicroservice;
  server: AetherServer;
  workerId: string;
}

let unionCounter = 0;

/** Each test its own union, so that no test sees another's tasks. */
export function createUnion(prefix = 't'): string {
  unionCounter += 1;
  return `${prefix}${process.pid}x${unionCounter}`;
}

export async function startWorker(
  options: AetherServerOptions,
  controllers: Type<unknown>[],
  providers: Type<unknown>[] = [],
): Promise<StartedWorker> {
  const module = await Test.createTestingModule({
    controllers,
    providers,
  }).compile();
  const server = new AetherServer(options);
  const app = module.createNestMicroservice({
    strategy: server,
    logger: ['error'],
  });
  await app.listen();
  return { app, server, workerId: server.clientId };
}

export async function startWorkers(
  count: number,
  options: AetherServerOptions,
  controllers: Type<unknown>[],
): Promise<StartedWorker[]> {
  const workers: StartedWorker[] = [];
  for (let index = 0; index < count; index += 1) {
    workers.push(await startWorker(options, controllers));
  }

  return workers;
}

export async function closeAll(
  closables: Array<{ close(): unknown } | undefined>,
): Promise<void> {
  for (const closable of closables) {
    await closable?.close();
  }
}

export function createClient(options: AetherClientOptions): AetherClient {
  return new AetherClient({ timeout: 10_000, ...options });
}

/** Every event of one call, once its Observable completes. */
export function collect(
  events$: Observable<AetherEvent>,
): Promise<AetherEvent[]> {
  return lastValueFrom(events$.pipe(toArray()));
}

/** The error a call ends with; fails the test if it completes instead. */
export async function collectError(
  events$: Observable<AetherEvent>,
): Promise<Error & { code?: string }> {
  try {
    await collect(events$);
  } catch (error) {
    return error as Error & { code?: string };
  }

  throw new Error('The call completed, but an error was expected.');
}

export function getCompletion(events: AetherEvent[]) {
  const last = events.at(-1);
  if (!last || last.type !== 'complete') {
    throw new Error(`No completion at the end: ${JSON.stringify(events)}`);
  }

  return last;
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

const POLL_MS = 20;

/**
 * Polls every 20 ms until `check` holds, for state that settles after a
 * call ends; fails after `timeoutMs` of polling, with `detail()` in the
 * message.
 */
export async function eventually(
  check: () => boolean,
  what: string,
  timeoutMs: number,
  detail: () => string = () => '',
): Promise<void> {
  for (let waited = 0; waited < timeoutMs; waited += POLL_MS) {
    if (check()) {
      return;
    }

    await delay(POLL_MS);
  }

  const more = detail();
  throw new Error(`Timed out waiting until ${what}.${more && `\n${more}`}`);
}
