import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { afterEach, before, describe, it } from 'node:test';

import { Controller } from '@nestjs/common';
import { Ctx, MessagePattern, Payload } from '@nestjs/microservices';

import {
  AetherErrorCode,
  AetherStatus,
  createMosquittoAcl,
  type AetherClientOptions,
  type AetherContext,
  type AetherEvent,
} from '../../lib/index.js';
import {
  createTlsMaterial,
  type CertificateFiles,
  type TlsMaterial,
} from '../support/certificates.js';
import { startMosquitto, type MosquittoBroker } from '../support/mosquitto.js';
import {
  closeAll,
  collect,
  collectError,
  createClient,
  createUnion,
  delay,
  getCompletion,
  startWorker,
} from '../support/nest-apps.js';

// TLS through the transport: the options `ca`, `cert` and `key` go to
// MQTT.js as they are. With `requireCertificate` the broker takes the
// certificate's common name as the user name, which the ACL then names.

const BUILD_PATTERN = 'reports/build';
const BUILD = { job: 'reports', task: 'build' };
// Short, so that a handshake the broker refuses ends the test quickly;
// the transport only gives up on it after connectTimeout (see below).
const CONNECT_TIMEOUT_MS = 1500;

@Controller()
class ReportController {
  @MessagePattern(BUILD_PATTERN)
  async build(@Payload() input: { steps: number }, @Ctx() ctx: AetherContext) {
    for (let step = 1; step <= input.steps; step += 1) {
      await ctx.status((100 * step) / (input.steps + 1), { step });
      await delay(5);
    }

    return { steps: input.steps, workerId: ctx.workerId };
  }
}

/** MQTT.js wants the PEM text itself, not a path to it. */
function readCertificate(files: CertificateFiles) {
  return { cert: readFileSync(files.cert), key: readFileSync(files.key) };
}

function getProgress(events: AetherEvent[]): number[] {
  return events.flatMap((event) =>
    event.type === 'status' ? [event.progress] : [],
  );
}

describe('TLS (mqtts://, Mosquitto)', () => {
  let tls: TlsMaterial;
  let ca: Buffer;
  const open: Array<{ close(): unknown }> = [];

  before(() => {
    tls = createTlsMaterial();
    ca = readFileSync(tls.caCert);
  });

  afterEach(async () => {
    await closeAll(open.splice(0).reverse());
  });

  async function startBroker(options: { requireCertificate?: boolean }) {
    const union = createUnion('tls');
    const acl = createMosquittoAcl({
      union,
      users: {
        'tls-clerk': { calls: [BUILD] },
        'tls-builder': { performs: [BUILD] },
      },
    });
    const broker = await startMosquitto({
      tls,
      acl: options.requireCertificate ? acl : undefined,
      requireCertificate: options.requireCertificate,
    });
    open.push({ close: () => broker.stop() });
    return { broker, union };
  }

  async function expectRefused(
    broker: MosquittoBroker,
    options: AetherClientOptions,
  ) {
    const client = createClient({
      url: broker.url,
      connectTimeout: CONNECT_TIMEOUT_MS,
      ...options,
    });
    open.push(client);
    const statuses: string[] = [];
    client.status.subscribe((status) => statuses.push(status));

    const started = Date.now();
    const error = await collectError(client.send(BUILD_PATTERN, {}));
    const elapsed = Date.now() - started;
    assert.equal(error.code, AetherErrorCode.ConnectionRefused);
    assert.ok(elapsed < CONNECT_TIMEOUT_MS + 1000, `after ${elapsed} ms`);
    assert.equal(statuses.at(-1), AetherStatus.Closed);
    return error;
  }

  it('completes a task over mqtts:// with the test CA', async () => {
    const { broker, union } = await startBroker({});
    assert.match(broker.url, /^mqtts:\/\/localhost:\d+$/);
    const worker = await startWorker({ url: broker.url, union, ca }, [
      ReportController,
    ]);
    open.push(worker.app);
    const client = createClient({ url: broker.url, union, ca });
    open.push(client);

    const events = await collect(client.send(BUILD_PATTERN, { steps: 3 }));
    assert.deepEqual(getProgress(events), [0, 25, 50, 75]);
    assert.equal(getCompletion(events).success, true);
  });

  it('refuses a broker whose CA the client does not trust', async () => {
    const { broker, union } = await startBroker({});

    // Not a refusal by the broker: the client retries the handshake until
    // connectTimeout, then names the TLS error it last saw.
    const error = await expectRefused(broker, { union });
    assert.match(error.message, /self-signed certificate in certificate chain/);
    assert.match(error.message, /Check the TLS options: ca must be/);
  });

  it('takes the common name of a client certificate as its user', async () => {
    const { broker, union } = await startBroker({ requireCertificate: true });
    const builder = tls.createClientCertificate('tls-builder');
    const clerk = tls.createClientCertificate('tls-clerk');
    const worker = await startWorker(
      { url: broker.url, union, ca, ...readCertificate(builder) },
      [ReportController],
    );
    open.push(worker.app);
    const client = createClient({
      url: broker.url,
      union,
      ca,
      ...readCertificate(clerk),
    });
    open.push(client);

    const events = await collect(client.send(BUILD_PATTERN, { steps: 1 }));
    assert.deepEqual(getProgress(events), [0, 50]);
    assert.deepEqual(getCompletion(events).data, {
      steps: 1,
      workerId: worker.workerId,
    });
    assert.match(
      broker.logs(),
      /as caller-[0-9a-f]+ \(p5, c1, k60, u'tls-clerk'\)/,
    );

    // The worker's certificate does not make a caller: its CN may only
    // take the task, and a CN the ACL does not name may do nothing.
    for (const name of ['tls-builder', 'tls-stranger']) {
      const certificate = readCertificate(tls.createClientCertificate(name));
      const other = createClient({
        url: broker.url,
        union,
        ca,
        ...certificate,
      });
      open.push(other);

      const error = await collectError(other.send(BUILD_PATTERN, { steps: 1 }));
      assert.equal(error.code, AetherErrorCode.NotAuthorized, name);
      assert.match(error.message, /refused to let this client publish/);
    }
  });

  it('refuses a client without a required certificate', async () => {
    const { broker, union } = await startBroker({ requireCertificate: true });

    // The broker ends the handshake with TLS alert 116; the transport
    // retries it like a network error until connectTimeout.
    const error = await expectRefused(broker, { union, ca });
    assert.match(error.message, /certificate required/);
    assert.match(broker.logs(), /peer did not return a certificate/);
  });
});
