import type { MqttClient } from 'mqtt';

import type { BrokerSettings, TaskName } from '../ipc.js';
import type { BenchInput } from '../workload.js';

/** The caller side of one transport, as the load drivers use it. */
export interface BenchCaller {
  /**
   * Sends one task and resolves with the number of events received
   * (statuses and the completion) once it has completed.
   */
  call(task: TaskName, input: BenchInput): Promise<number>;
  close(): Promise<void>;
}

export interface BenchWorker {
  close(): Promise<void>;
}

/** One transport: how to make a caller and how to start a worker. */
export interface Peer {
  createCaller(broker: BrokerSettings, index: number): Promise<BenchCaller>;
  startWorker(
    broker: BrokerSettings,
    index: number,
    tasks: TaskName[],
  ): Promise<BenchWorker>;
}

/** Where the bench's topics start, for the two MQTT peers. */
export const BENCH_PREFIX = 'bench';

/**
 * The Nest pattern of a task: `bench/echo`, `bench/progress`, and for the
 * scaling steps `scale1/slow`, `scale2/slow`, `scale4/slow`. Each step is
 * its own job because AetherMagic groups workers by job: a group's members
 * should all serve the same tasks, as they would in production.
 */
export function getNestPattern(task: TaskName): string {
  const step = /^slow(\d)$/.exec(task);
  return step ? `scale${step[1]}/slow` : `${BENCH_PREFIX}/${task}`;
}

/** The worker group every bench worker of one task joins. */
export const BENCH_GROUP = 'g';

/** A client id unique to this process and role, one topic level. */
export function getBenchClientId(role: string, index: number): string {
  return `bench-${role}-${index}-${process.pid}`;
}

/**
 * MQTT.js never sets TCP_NODELAY, and neither does Nest's transport:
 * without it every QoS 1 round trip waits for Nagle (88 ms, measured).
 * Set on the current socket and on the socket of every reconnect.
 */
export function setNoDelayOnEveryConnect(client: MqttClient): void {
  const apply = () => {
    const socket = client.stream as { setNoDelay?: (on: boolean) => void };
    socket?.setNoDelay?.(true);
  };
  client.on('connect', apply);
  apply();
}
