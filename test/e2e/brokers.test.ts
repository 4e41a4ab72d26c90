import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connect as connectTcp } from 'node:net';
import { after, afterEach, before, describe, test } from 'node:test';
import mqtt from 'mqtt';
import type { IClientOptions, MqttClient, Packet } from 'mqtt';
import { startAedes } from '../support/aedes.js';
import type { AedesBroker } from '../support/aedes.js';
import { createTlsMaterial } from '../support/certificates.js';
import type { TlsMaterial } from '../support/certificates.js';
import { startMosquitto } from '../support/mosquitto.js';
import type { MosquittoBroker } from '../support/mosquitto.js';

const MESSAGE_TIMEOUT_MS = 2_000;
const NOT_AUTHORIZED = 0x87;
const V311_NOT_AUTHORIZED = 5;

const openClients = new Set<MqttClient>();

afterEach(async () => {
  const clients = [...openClients];
  openClients.clear();
  await Promise.all(clients.map((client) => client.endAsync(true)));
});

describe('startMosquitto', () => {
  let broker: MosquittoBroker;
  before(async () => (broker = await startMosquitto()));
  after(() => broker.stop());

  test('carries messages between MQTT 5 and 3.1.1 clients', async () => {
    const v5 = await connectClient(broker.url, { protocolVersion: 5 });
    const v4 = await connectClient(broker.url, { protocolVersion: 4 });
    await v5.subscribeAsync('carry/to-v5', { qos: 1 });
    await v4.subscribeAsync('carry/to-v4', { qos: 1 });

    const atV4 = nextMessage(v4, 'carry/to-v4');
    await v5.publishAsync('carry/to-v4', 'from v5', { qos: 1 });
    assert.equal(await atV4, 'from v5');

    const atV5 = nextMessage(v5, 'carry/to-v5');
    await v4.publishAsync('carry/to-v5', 'from v4', { qos: 1 });
    assert.equal(await atV5, 'from v4');
  });

  test('writes a log that logs() returns', () => {
    assert.match(broker.logs(), /mosquitto version [\d.]+ running/);
    assert.equal(broker.url, `mqtt://127.0.0.1:${broker.port}`);
  });
});

describe('MosquittoBroker lifecycle', () => {
  let broker: MosquittoBroker;
  before(async () => (broker = await startMosquitto()));
  after(() => broker.stop());

  test('restart keeps the port and clients can connect again', async () => {
    const original = { url: broker.url, port: broker.port, pid: broker.pid };
    const first = await connectClient(broker.url);
    const closed = new Promise<void>((resolve) =>
      first.once('close', () => resolve()),
    );

    await broker.restart();
    await closed;

    assert.equal(broker.port, original.port);
    assert.equal(broker.url, original.url);
    assert.notEqual(broker.pid, original.pid);
    await assertCarriesMessage(broker.url, 'restart/echo');
  });

  test('kill() ends the process at once and restart() recovers', async () => {
    await broker.kill();
    assert.equal(await acceptsTcp(broker.port), false);

    await broker.restart();
    await assertCarriesMessage(broker.url, 'kill/echo');
  });

  test('stop() is safe to call twice', async () => {
    await Promise.all([broker.stop(), broker.stop()]);
    await broker.stop();
    assert.equal(await acceptsTcp(broker.port), false);
  });
});

describe('Mosquitto with users and an ACL', () => {
  let broker: MosquittoBroker;
  before(async () => {
    broker = await startMosquitto({
      users: { alice: 'alice-secret', bob: 'bob-secret' },
      acl: [
        'user alice',
        'topic readwrite allowed/#',
        'user bob',
        'topic read allowed/#',
      ].join('\n'),
    });
  });
  after(() => broker.stop());

  test('a user publishes where the ACL allows it', async () => {
    const alice = await connectClient(broker.url, asUser('alice'));
    const bob = await connectClient(broker.url, asUser('bob'));
    await bob.subscribeAsync('allowed/#', { qos: 1 });

    const atBob = nextMessage(bob, 'allowed/news');
    await alice.publishAsync('allowed/news', 'hello bob', { qos: 1 });
    assert.equal(await atBob, 'hello bob');
  });

  test('a denied topic gets PUBACK reason 0x87 on MQTT 5', async () => {
    const alice = await connectClient(broker.url, asUser('alice'));
    const pubackCodes: (number | undefined)[] = [];
    alice.on('packetreceive', (packet: Packet) => {
      if (packet.cmd === 'puback') pubackCodes.push(packet.reasonCode);
    });

    await assert.rejects(
      alice.publishAsync('denied/news', 'nope', { qos: 1 }),
      { code: NOT_AUTHORIZED },
    );
    assert.deepEqual(pubackCodes, [NOT_AUTHORIZED]);
  });

  test('a wrong password is refused', async () => {
    const wrongPassword = { ...asUser('alice'), password: 'wrong' };

    // Mosquitto 2.0.11 answers 0x87, not 0x86 (bad username or password).
    await assert.rejects(connectClient(broker.url, wrongPassword), {
      code: NOT_AUTHORIZED,
    });
    await assert.rejects(
      connectClient(broker.url, { ...wrongPassword, protocolVersion: 4 }),
      { code: V311_NOT_AUTHORIZED },
    );
  });

  test('an anonymous client is refused', async () => {
    await assert.rejects(connectClient(broker.url, { protocolVersion: 5 }));
  });
});

describe('Mosquitto over TLS', () => {
  let tls: TlsMaterial;
  let serverOnly: MosquittoBroker;
  let mutual: MosquittoBroker;

  before(async () => {
    tls = createTlsMaterial();
    serverOnly = await startMosquitto({ tls });
    mutual = await startMosquitto({
      tls,
      requireCertificate: true,
      acl: ['user worker-7', 'topic readwrite jobs/worker-7/#'].join('\n'),
    });
  });
  after(() => Promise.all([serverOnly.stop(), mutual.stop()]));

  test('a client trusting the test CA connects to localhost', async () => {
    assert.match(serverOnly.url, /^mqtts:\/\/localhost:\d+$/);
    await assertCarriesMessage(serverOnly.url, 'tls/echo', {
      ca: readFileSync(tls.caCert),
    });
  });

  test('a client without the test CA is refused', async () => {
    await assert.rejects(connectClient(serverOnly.url));
  });

  test('a client certificate is required and its CN is the user', async () => {
    const { cert, key } = tls.createClientCertificate('worker-7');
    const worker = await connectClient(mutual.url, {
      protocolVersion: 5,
      ca: readFileSync(tls.caCert),
      cert: readFileSync(cert),
      key: readFileSync(key),
    });

    // The ACL names only user worker-7, so these two results prove it.
    await worker.publishAsync('jobs/worker-7/a', 'mine', { qos: 1 });
    await assert.rejects(
      worker.publishAsync('jobs/worker-8/a', 'not mine', { qos: 1 }),
      { code: NOT_AUTHORIZED },
    );
    assert.match(mutual.logs(), /u'worker-7'/);
  });

  test('a client without a certificate is refused', async () => {
    const withoutCertificate = { ca: readFileSync(tls.caCert) };
    await assert.rejects(connectClient(mutual.url, withoutCertificate));
  });
});

describe('startAedes', () => {
  let broker: AedesBroker;
  before(async () => (broker = await startAedes()));
  after(async () => {
    await broker.close();
    await broker.close();
  });

  test('carries a message between MQTT 3.1.1 clients', async () => {
    assert.match(broker.url, /^mqtt:\/\/127\.0\.0\.1:\d+$/);
    await assertCarriesMessage(broker.url, 'aedes/echo', {
      protocolVersion: 4,
    });
  });
});

async function connectClient(
  url: string,
  options: IClientOptions = {},
): Promise<MqttClient> {
  const client = mqtt.connect(url, {
    reconnectPeriod: 0,
    connectTimeout: 2_000,
    ...options,
  });
  openClients.add(client);

  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve());
    client.once('error', reject);
    client.once('close', () => reject(new Error(`${url} closed at connect`)));
  });
  return client;
}

async function assertCarriesMessage(
  url: string,
  topic: string,
  options: IClientOptions = {},
): Promise<void> {
  const client = await connectClient(url, options);
  await client.subscribeAsync(topic, { qos: 1 });

  const received = nextMessage(client, topic);
  await client.publishAsync(topic, `to ${topic}`, { qos: 1 });
  assert.equal(await received, `to ${topic}`);
}

function nextMessage(client: MqttClient, topic: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      client.off('message', onMessage);
      reject(new Error(`No message on ${topic} in ${MESSAGE_TIMEOUT_MS} ms`));
    }, MESSAGE_TIMEOUT_MS);

    function onMessage(received: string, payload: Buffer): void {
      if (received !== topic) return;
      clearTimeout(timer);
      client.off('message', onMessage);
      resolve(payload.toString());
    }
    client.on('message', onMessage);
  });
}

function asUser(username: string): IClientOptions {
  return { protocolVersion: 5, username, password: `${username}-secret` };
}

function acceptsTcp(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connectTcp({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
