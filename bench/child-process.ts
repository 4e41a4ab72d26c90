// Nest's decorators need the metadata API before any Nest module loads.
import 'reflect-metadata';

import { Logger } from '@nestjs/common';

import type {
  CallerCommand,
  ChildConfig,
  ChildMessage,
  RequestMessage,
  TransportName,
} from './ipc.js';
import {
  readCpuMs,
  CallGuard,
  measureLatency,
  measureMemory,
  measureThroughput,
  type CallTask,
} from './load.js';
import { aetherPeer } from './peers/aether.peer.js';
import { nestMqttPeer } from './peers/nest-mqtt.peer.js';
import type { BenchCaller, BenchWorker, Peer } from './peers/peer.js';
import { rawMqttPeer } from './peers/raw-mqtt.peer.js';
import { createPayload, getTaskCounts, sleep } from './workload.js';

/**
 * One bench caller or worker, forked by bench.ts with its config as JSON in
 * argv[2]. It connects, says `ready`, answers commands until `stop`, and
 * exits by itself after `maxLifeMs` or when the parent goes away.
 */

const PEERS: Record<TransportName, Peer> = {
  aether: aetherPeer,
  raw: rawMqttPeer,
  nest: nestMqttPeer,
};

// A stop must not wait on a close that hangs.
const CLOSE_LIMIT_MS = 3_000;

function sendToParent(message: ChildMessage): void {
  process.send?.(message);
}

function readConfig(): ChildConfig {
  const text = process.argv[2];
  if (!text || !process.send) {
    throw new Error(
      'child-process.js is started by bench.js with an IPC channel and ' +
        'its config as JSON; run `npm run bench` instead.',
    );
  }

  return JSON.parse(text) as ChildConfig;
}

async function main(): Promise<void> {
  const config = readConfig();
  setTimeout(() => exitAfterLimit(config), config.maxLifeMs).unref();
  process.on('disconnect', () => process.exit(0));
  // Warnings the bench expects (aedes refusing MQTT 5) would break up the
  // tables; errors still show.
  Logger.overrideLogger(['error']);

  const peer = PEERS[config.transport];
  const { broker, index, tasks } = config;
  const role =
    config.role === 'caller'
      ? await peer.createCaller(broker, index)
      : await peer.startWorker(broker, index, tasks);

  process.on('message', (message: RequestMessage) =>
    handleCommand(message, role),
  );
  sendToParent({ type: 'ready' });
}

function handleCommand(
  message: RequestMessage,
  role: BenchCaller | BenchWorker,
): void {
  const { id, command } = message;
  if (command.kind === 'stop') {
    stop(id, role);
    return;
  }

  const work =
    command.kind === 'usage'
      ? { counts: getTaskCounts(), cpuMs: readCpuMs() }
      : runCallerCommand(role as BenchCaller, command);
  Promise.resolve(work).then(
    (result) => sendToParent({ type: 'answer', id, result }),
    (error: unknown) =>
      sendToParent({ type: 'refusal', id, message: String(error) }),
  );
}

function runCallerCommand(caller: BenchCaller, command: CallerCommand) {
  if (typeof caller.call !== 'function') {
    throw new Error(`A worker cannot run "${command.kind}".`);
  }

  const payload = createPayload();
  const guard = new CallGuard();
  const call = guard.wrap(() => caller.call(command.task, payload));
  return measure(call, command).finally(() => guard.stop());
}

function measure(call: CallTask, command: CallerCommand): Promise<unknown> {
  switch (command.kind) {
    case 'latency':
      return measureLatency(call, command);
    case 'throughput':
      return measureThroughput(call, command);
    case 'memory':
      return measureMemory(call, command);
  }
}

function stop(id: number, role: BenchCaller | BenchWorker): void {
  const closed = role.close().catch(() => undefined);
  void Promise.race([closed, sleep(CLOSE_LIMIT_MS)])
    .then(() => sendToParent({ type: 'answer', id, result: {} }))
    .finally(() => process.exit(0));
}

function exitAfterLimit(config: ChildConfig): never {
  console.error(
    `bench ${config.role} ${config.index} (${config.transport}) reached ` +
      `its ${config.maxLifeMs} ms limit and exits.`,
  );
  process.exit(3);
}

main().catch((error: unknown) => {
  const message =
    error instanceof Error ? (error.stack ?? error.message) : error;
  sendToParent({ type: 'failed', message: String(message) });
  process.exit(1);
});
