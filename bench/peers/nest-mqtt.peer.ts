import { NestFactory } from '@nestjs/core';
import { ClientMqtt, MqttRecord, ServerMqtt } from '@nestjs/microservices';
import type { MqttClient } from 'mqtt';

import type { BrokerSettings, TaskName } from '../ipc.js';
import type { BenchInput } from '../workload.js';
import { createWorkerModule } from './nest-controllers.js';
import {
  BENCH_GROUP,
  BENCH_PREFIX,
  getBenchClientId,
  getNestPattern,
  setNoDelayOnEveryConnect,
  type BenchCaller,
  type BenchWorker,
  type Peer,
} from './peer.js';

type MqttOptions = ConstructorParameters<typeof ServerMqtt>[0];

/**
 * Nest's ServerMqtt, with its workers sharing one `$share` subscription.
 *
 * How Nest is meant to do it (server-mqtt.js, 12.1.1): write
 * `$share/<group>/<topic>` into the decorator. The server subscribes that
 * string as it is; the broker delivers on the plain topic, and
 * getHandlerByPattern finds the handler again by stripping the `$share`
 * prefix from each handler key. Callers send to the plain topic (a client
 * sending to `$share/...` is dropped by the broker), replies go to
 * `<plain topic>/reply`.
 *
 * What the bench does instead, to the same effect: the decorators keep the
 * plain pattern, shared with AetherServer's controllers, and this subclass
 * overrides getRequestPattern(), which is only used to build the
 * subscription. Handler lookup and reply topics are unchanged. On aedes,
 * which has no `$share`, the group is left out: one worker, plain topic.
 *
 * Also: TCP_NODELAY on the server's socket after every connect, and QoS 1
 * for delivery to workers (subscribeOptions). Replies stay at QoS 0: Nest
 * publishes them with no options.
 */
class SharedServerMqtt extends ServerMqtt {
  constructor(
    options: MqttOptions,
    private readonly group: string | undefined,
  ) {
    super(options);
  }

  override getRequestPattern(pattern: string): string {
    return this.group ? `$share/${this.group}/${pattern}` : pattern;
  }

  override async createMqttClient(): Promise<MqttClient> {
    const client = (await super.createMqttClient()) as MqttClient;
    setNoDelayOnEveryConnect(client);
    return client;
  }
}

class NestMqttBenchCaller implements BenchCaller {
  constructor(private readonly client: ClientMqtt) {}

  call(task: TaskName, input: BenchInput): Promise<number> {
    // QoS 1 for the request, as the other peers; a record is consumed by
    // the send (Nest deletes its options), so one per call.
    const record = new MqttRecord(input, { qos: 1 });
    return new Promise((resolve, reject) => {
      let events = 0;
      this.client.send(getNestPattern(task), record).subscribe({
        next: () => (events += 1),
        error: reject,
        complete: () => resolve(events),
      });
    });
  }

  close(): Promise<void> {
    return this.client.close();
  }
}

/** Nest's built-in MQTT transport, ClientMqtt and ServerMqtt. */
export const nestMqttPeer: Peer = {
  async createCaller(broker: BrokerSettings, index: number) {
    const client = new ClientMqtt({
      url: broker.url,
      clientId: getBenchClientId('caller', index),
      protocolVersion: broker.protocolVersion,
    });
    await client.connect();
    setNoDelayOnEveryConnect(client.unwrap<MqttClient>());
    return new NestMqttBenchCaller(client);
  },

  async startWorker(broker: BrokerSettings, index: number, tasks: TaskName[]) {
    const group = broker.hasSharedSubscriptions ? BENCH_GROUP : undefined;
    const clientId = getBenchClientId('worker', index);
    const strategy = new SharedServerMqtt(
      {
        url: broker.url,
        clientId,
        protocolVersion: broker.protocolVersion,
        subscribeOptions: { qos: 1 },
      },
      group,
    );
    const app = await NestFactory.createMicroservice(
      createWorkerModule('nest', tasks),
      { strategy, logger: ['error'] },
    );
    await app.listen();

    // ServerMqtt calls back on CONNACK, before the broker has answered its
    // SUBSCRIBEs: a task sent at once finds no worker and, as Nest has no
    // timeout, never completes. A broker answers one connection's
    // SUBSCRIBEs in order, so one more SUBACK means the others are in place.
    const probe = `${BENCH_PREFIX}/probe/${clientId}`;
    await strategy.unwrap<MqttClient>().subscribeAsync(probe);
    return { close: () => app.close() } satisfies BenchWorker;
  },
};
