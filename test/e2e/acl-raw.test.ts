import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import mqtt from 'mqtt';
import type { IClientOptions, MqttClient, Packet } from 'mqtt';

import { createMosquittoAcl } from '../../lib/acl/mosquitto-acl.js';
import {
  TaskAction,
  getDefaultGroup,
  getInboxTopic,
  getOfflineFilter,
  getOfflineTopic,
  getSharedFilter,
  getTaskFilter,
  getTaskTopic,
} from '../../lib/core/topics.js';
import { startMosquitto } from '../support/mosquitto.js';
import type { MosquittoBroker } from '../support/mosquitto.js';

// Raw MQTT.js against a Mosquitto that loads a generated acl_file: the
// rights themselves, without the transport's own handling of refusals.

const UNION = 'acl-raw';
const PASSWORDS = { alice: 'alice-secret', bob: 'bob-secret' };
const COLLECT = { union: UNION, job: 'worker', task: 'collect', context: 'x' };
const RESIZE = { ...COLLECT, task: 'resize' };

const SUCCESS = 0;
const NOT_AUTHORIZED = 0x87;
const MESSAGE_TIMEOUT_MS = 2_000;
// Long enough for Mosquitto on loopback to deliver a message it would
// deliver at all; only used where the test expects nothing to arrive.
const SETTLE_MS = 200;

const openClients = new Set<MqttClient>();

describe('a generated acl_file on Mosquitto', () => {
  let broker: MosquittoBroker;

  before(async () => {
    const acl = createMosquittoAcl({
      union: UNION,
      users: {
        alice: { calls: [{ job: 'worker', task: 'collect' }] },
        bob: { performs: [{ job: 'worker', task: 'collect' }] },
      },
    });
    broker = await startMosquitto({ users: PASSWORDS, acl });
  });

  afterEach(async () => {
    const clients = [...openClients];
    openClients.clear();
    await Promise.all(clients.map((client) => client.endAsync(true)));
  });

  after(() => broker.stop());

  test('a caller may publish perform; a $share worker gets it', async () => {
    const worker = await connectAs(broker, 'bob', 'worker-share');
    const group = getDefaultGroup(UNION, COLLECT.job);
    const filter = getTaskFilter(COLLECT, TaskAction.Perform);
    await worker.subscribeAsync(getSharedFilter(group, filter), { qos: 1 });

    const caller = await connectAs(broker, 'alice', 'caller-share');
    const topic = getTaskTopic(COLLECT, 'a1b2c3d4', TaskAction.Perform);
    const received = nextMessage(worker, topic);

    assert.equal(await publishForReason(caller, topic), SUCCESS);
    assert.equal(await received, 'a1b2c3d4');
  });

  test('a caller gets 0x87 on the perform of another task', async () => {
    const caller = await connectAs(broker, 'alice', 'caller-other');
    const topic = getTaskTopic(RESIZE, 'b2c3d4e5', TaskAction.Perform);

    assert.equal(await publishForReason(caller, topic), NOT_AUTHORIZED);
  });

  test('a caller gets 0x87 in another union', async () => {
    const caller = await connectAs(broker, 'alice', 'caller-union');
    const elsewhere = { ...COLLECT, union: 'other' };
    const topic = getTaskTopic(elsewhere, 'c3d4e5f6', TaskAction.Perform);

    assert.equal(await publishForReason(caller, topic), NOT_AUTHORIZED);
  });

  test('an inbox is read by its own client only', async () => {
    const caller = await connectAs(broker, 'alice', 'caller-inbox');
    await caller.subscribeAsync(`${UNION}/inbox/caller-inbox/+`, { qos: 1 });
    const snoop = await connectAs(broker, 'bob', 'snoop-inbox');
    await snoop.subscribeAsync(`${UNION}/inbox/+/+`, { qos: 1 });
    const snooped = collectTopics(snoop);

    const worker = await connectAs(broker, 'bob', 'worker-inbox');
    const reply = getInboxTopic(UNION, 'caller-inbox', 'd4e5f6a7');
    const marker = getInboxTopic(UNION, 'snoop-inbox', 'e5f6a7b8');
    const replied = nextMessage(caller, reply);
    const marked = nextMessage(snoop, marker);
    assert.equal(await publishForReason(worker, reply), SUCCESS);
    assert.equal(await publishForReason(worker, marker), SUCCESS);

    // Both went out of one connection in order, so once the snoop has its
    // own marker, the caller's reply would have reached it before.
    await Promise.all([replied, marked]);
    assert.deepEqual(snooped, [marker]);
  });

  test('a will reaches callers on its own topic only', async () => {
    const caller = await connectAs(broker, 'alice', 'caller-wills');
    await caller.subscribeAsync(getOfflineFilter(UNION), { qos: 1 });
    const wills = collectTopics(caller);

    // Mosquitto accepts a will it may not publish and drops it silently.
    const forged = getOfflineTopic(UNION, 'someone-else');
    const liar = await connectAs(broker, 'bob', 'worker-liar', forged);
    liar.stream.destroy();
    await sleep(SETTLE_MS);

    const own = getOfflineTopic(UNION, 'worker-lost');
    const lost = await connectAs(broker, 'bob', 'worker-lost', own);
    const announced = nextMessage(caller, own);
    lost.stream.destroy();

    await announced;
    assert.deepEqual(wills, [own]);
  });
});

async function connectAs(
  broker: MosquittoBroker,
  user: keyof typeof PASSWORDS,
  clientId: string,
  willTopic?: string,
): Promise<MqttClient> {
  const options: IClientOptions = {
    protocolVersion: 5,
    username: user,
    password: PASSWORDS[user],
    clientId,
    reconnectPeriod: 0,
    connectTimeout: 2_000,
  };
  if (willTopic) {
    options.will = { topic: willTopic, payload: Buffer.from(clientId) };
  }

  const client = mqtt.connect(broker.url, options);
  openClients.add(client);
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve());
    client.once('error', reject);
  });
  return client;
}

/**
 * The reason code of the PUBACK, which MQTT.js hides on success (0x10 and
 * 0 look alike) and turns into an error from 0x80 on.
 */
async function publishForReason(
  client: MqttClient,
  topic: string,
): Promise<number> {
  const tid = topic.split('/').at(-2) ?? '';
  const puback = new Promise<number>((resolve) => {
    const onPacket = (packet: Packet) => {
      if (packet.cmd !== 'puback') return;
      client.off('packetreceive', onPacket);
      resolve(packet.reasonCode ?? SUCCESS);
    };
    client.on('packetreceive', onPacket);
  });

  await client.publishAsync(topic, tid, { qos: 1 }).catch(() => undefined);
  return withTimeout(puback, `no PUBACK for ${topic}`);
}

function nextMessage(client: MqttClient, topic: string): Promise<string> {
  const message = new Promise<string>((resolve) => {
    const onMessage = (received: string, payload: Buffer) => {
      if (received !== topic) return;
      client.off('message', onMessage);
      resolve(payload.toString());
    };
    client.on('message', onMessage);
  });
  return withTimeout(message, `no message on ${topic}`);
}

function collectTopics(client: MqttClient): string[] {
  const topics: string[] = [];
  client.on('message', (topic) => topics.push(topic));
  return topics;
}

async function withTimeout<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${what} within ${MESSAGE_TIMEOUT_MS} ms`)),
      MESSAGE_TIMEOUT_MS,
    );
  });

  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
