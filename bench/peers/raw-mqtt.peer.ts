import mqtt from 'mqtt';
import type { IClientOptions, MqttClient } from 'mqtt';

import type { BrokerSettings, TaskName } from '../ipc.js';
import {
  countTask,
  getStatusSteps,
  isSlowTask,
  runSlowTask,
  type BenchInput,
} from '../workload.js';
import {
  BENCH_GROUP,
  BENCH_PREFIX,
  getBenchClientId,
  setNoDelayOnEveryConnect,
  type BenchCaller,
  type BenchWorker,
  type Peer,
} from './peer.js';

/**
 * The ceiling: plain MQTT.js with the fewest messages a task can take. A
 * request on `bench/req/<task>` carrying a correlation id and the caller's
 * own reply topic; QoS 1 both ways; the workers of a task share
 * `$share/g/bench/req/<task>` (a plain subscription on aedes, which has no
 * `$share`: one worker there).
 */

interface RawRequest {
  id: number;
  reply: string;
  data: BenchInput;
}

interface RawReply {
  id: number;
  type: 'status' | 'complete';
  data: unknown;
}

const QOS = { qos: 1 } as const;
const CONNECT_TIMEOUT_MS = 10_000;

function getRequestTopic(task: TaskName): string {
  return `${BENCH_PREFIX}/req/${task}`;
}

/** Connects, with TCP_NODELAY set on every (re)connect. */
function connectWithNoDelay(
  broker: BrokerSettings,
  clientId: string,
): Promise<MqttClient> {
  const options: IClientOptions = {
    clientId,
    protocolVersion: broker.protocolVersion,
    clean: true,
    connectTimeout: CONNECT_TIMEOUT_MS,
    reconnectPeriod: 0,
  };
  const client = mqtt.connect(broker.url, options);
  setNoDelayOnEveryConnect(client);

  return new Promise((resolve, reject) => {
    client.once('connect', () => resolve(client));
    client.once('error', reject);
  });
}

class RawBenchCaller implements BenchCaller {
  private readonly replyTopic: string;
  private readonly pending = new Map<number, RawCall>();
  private lastId = 0;

  constructor(private readonly client: MqttClient) {
    this.replyTopic = `${BENCH_PREFIX}/reply/${client.options.clientId}`;
    client.on('message', (_topic, payload) => this.handleReply(payload));
  }

  subscribe(): Promise<unknown> {
    return this.client.subscribeAsync(this.replyTopic, QOS);
  }

  call(task: TaskName, input: BenchInput): Promise<number> {
    return new Promise((resolve, reject) => {
      this.lastId += 1;
      const id = this.lastId;
      this.pending.set(id, { events: 0, resolve });

      const request: RawRequest = { id, reply: this.replyTopic, data: input };
      this.client.publish(
        getRequestTopic(task),
        JSON.stringify(request),
        QOS,
        (error) => {
          if (error) {
            this.pending.delete(id);
            reject(error);
          }
        },
      );
    });
  }

  private handleReply(payload: Buffer): void {
    const reply = JSON.parse(payload.toString()) as RawReply;
    const call = this.pending.get(reply.id);
    if (!call) {
      return;
    }

    call.events += 1;
    if (reply.type === 'complete') {
      this.pending.delete(reply.id);
      call.resolve(call.events);
    }
  }

  close(): Promise<void> {
    return this.client.endAsync();
  }
}

interface RawCall {
  events: number;
  resolve(events: number): void;
}

class RawBenchWorker implements BenchWorker {
  private readonly requestPrefix = `${BENCH_PREFIX}/req/`;

  constructor(private readonly client: MqttClient) {
    client.on('message', (topic, payload) =>
      this.handleRequest(topic, payload),
    );
  }

  subscribe(tasks: TaskName[], isShared: boolean): Promise<unknown> {
    const filters = tasks.map((task) => {
      const topic = getRequestTopic(task);
      return isShared ? `$share/${BENCH_GROUP}/${topic}` : topic;
    });
    return this.client.subscribeAsync(filters, QOS);
  }

  private handleRequest(topic: string, payload: Buffer): void {
    const task = topic.slice(this.requestPrefix.length) as TaskName;
    const request = JSON.parse(payload.toString()) as RawRequest;
    countTask(task);

    if (task === 'progress') {
      for (const progress of getStatusSteps()) {
        this.reply(request, 'status', { progress });
      }
    }

    if (isSlowTask(task)) {
      void runSlowTask(request.data).then((output) =>
        this.reply(request, 'complete', output),
      );
      return;
    }

    this.reply(request, 'complete', request.data);
  }

  private reply(request: RawRequest, type: RawReply['type'], data: unknown) {
    const reply: RawReply = { id: request.id, type, data };
    this.client.publish(request.reply, JSON.stringify(reply), QOS);
  }

  close(): Promise<void> {
    return this.client.endAsync();
  }
}

export const rawMqttPeer: Peer = {
  async createCaller(broker: BrokerSettings, index: number) {
    const clientId = getBenchClientId('caller', index);
    const caller = new RawBenchCaller(
      await connectWithNoDelay(broker, clientId),
    );
    await caller.subscribe();
    return caller;
  },

  async startWorker(broker: BrokerSettings, index: number, tasks: TaskName[]) {
    const clientId = getBenchClientId('worker', index);
    const worker = new RawBenchWorker(
      await connectWithNoDelay(broker, clientId),
    );
    await worker.subscribe(tasks, broker.hasSharedSubscriptions);
    return worker;
  },
};
