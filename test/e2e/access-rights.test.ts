import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, afterEach, before, describe, it } from 'node:test';

import {
  ConsoleLogger,
  Controller,
  Logger,
  type LoggerService,
  type Type,
} from '@nestjs/common';
import { Ctx, MessagePattern, Payload } from '@nestjs/microservices';
import { Test } from '@nestjs/testing';
import mqtt from 'mqtt';
import type { MqttClient } from 'mqtt';
import type { Observable } from 'rxjs';

import {
  AetherErrorCode,
  AetherRecord,
  AetherServer,
  AetherStatus,
  createMosquittoAcl,
  type AclDescription,
  type AetherClient,
  type AetherClientOptions,
  type AetherContext,
  type AetherEvent,
  type AetherServerOptions,
  type TaskGrant,
} from '../../lib/index.js';
import { startMosquitto, type MosquittoBroker } from '../support/mosquitto.js';
import {
  closeAll,
  collect,
  collectError,
  createClient,
  createUnion,
  delay,
  eventually,
  getCompletion,
  type StartedWorker,
} from '../support/nest-apps.js';

// The rights of docs/access-rights.md, through AetherClient and
// AetherServer, against a Mosquitto that loads a password file and an
// acl_file written by createMosquittoAcl. Each test starts its own broker
// and union; test/e2e/acl-raw.test.ts checks the same file with raw MQTT.

const BUILD: TaskGrant = { job: 'reports', task: 'build' };
const PURGE: TaskGrant = { job: 'reports', task: 'purge' };
const BUILD_PATTERN = 'reports/build';
// Mosquitto logs a refused publish at debug level only.
const DEBUG_LOG = ['log_type debug'];
// Long enough for Mosquitto on loopback to deliver what it would deliver;
// used only where nothing may arrive, and as the reconnect watch below.
const SETTLE_MS = 300;
const NO_RETRY_WATCH_MS = 2000;

/** Which worker ran which task, per test. */
const runs: Array<{ tid: string; workerId: string }> = [];

async function buildReport(input: { steps?: number }, ctx: AetherContext) {
  runs.push({ tid: ctx.tid, workerId: ctx.workerId });
  const steps = input.steps ?? 0;
  for (let step = 1; step <= steps; step += 1) {
    await ctx.status((100 * step) / (steps + 1), { step });
    await delay(5);
  }

  return { steps, workerId: ctx.workerId };
}

@Controller()
class ReportController {
  @MessagePattern(BUILD_PATTERN)
  build(@Payload() input: { steps?: number }, @Ctx() ctx: AetherContext) {
    return buildReport(input, ctx);
  }
}

/** The same task in a group of its own: it would get a copy of each. */
@Controller()
class EavesdropController {
  @MessagePattern(BUILD_PATTERN, { group: 'eavesdroppers' })
  build(@Payload() input: { steps?: number }, @Ctx() ctx: AetherContext) {
    return buildReport(input, ctx);
  }
}

type LogMethod = (message: unknown, ...params: unknown[]) => void;

/**
 * Everything the transport logs in this file (Nest's Logger is global),
 * so that a test can read a worker's complaint and a failure can show it.
 */
class LogCapture implements LoggerService {
  readonly lines: Array<{ level: string; text: string }> = [];

  log: LogMethod = (message, ...params) => this.add('log', message, params);
  error: LogMethod = (message, ...params) => this.add('error', message, params);
  warn: LogMethod = (message, ...params) => this.add('warn', message, params);
  debug: LogMethod = (message, ...params) => this.add('debug', message, params);
  verbose: LogMethod = (message, ...params) =>
    this.add('verbose', message, params);
  fatal: LogMethod = (message, ...params) => this.add('fatal', message, params);

  // Nest may narrow the levels here; the tests read every line.
  setLogLevels(): void {}

  errors(): string[] {
    return this.lines
      .filter((line) => line.level === 'error')
      .map((line) => line.text);
  }

  describe(): string {
    const text = this.lines.map((line) => `${line.level}: ${line.text}`);
    return `transport log:\n${text.join('\n') || '(empty)'}`;
  }

  private add(level: string, message: unknown, params: unknown[]): void {
    const causes = params
      .filter((param): param is Error => param instanceof Error)
      .map((error) => {
        const code = (error as { code?: unknown }).code;
        return `[${String(code)}] ${error.message}`;
      });
    this.lines.push({ level, text: [String(message), ...causes].join(' ') });
  }
}

const logs = new LogCapture();
const open: Array<{ close(): unknown }> = [];

before(() => Logger.overrideLogger(logs));
after(() => Logger.overrideLogger(new ConsoleLogger()));

/**
 * As startWorker in test/support/nest-apps.ts, but logging into `logs`:
 * compiling a testing module installs its own logger for the process.
 */
async function startWorker(
  options: AetherServerOptions,
  controllers: Type<unknown>[],
): Promise<StartedWorker> {
  const { app, server } = await createWorkerApp(options, controllers);
  open.push(app);
  await app.listen();
  return { app, server, workerId: server.clientId };
}

async function createWorkerApp(
  options: AetherServerOptions,
  controllers: Type<unknown>[],
) {
  const module = await Test.createTestingModule({ controllers })
    .setLogger(logs)
    .compile();
  const server = new AetherServer(options);
  const app = module.createNestMicroservice({ strategy: server });
  return { app, server };
}

/** A broker with a password per user of the descriptions, and their ACL. */
async function startSecuredBroker(
  descriptions: AclDescription[],
  extraConfig: string[] = [],
) {
  const passwords: Record<string, string> = {};
  for (const description of descriptions) {
    for (const user of Object.keys(description.users)) {
      passwords[user] ??= randomBytes(8).toString('hex');
    }
  }

  const broker = await startMosquitto({
    users: passwords,
    acl: createMosquittoAcl(descriptions),
    extraConfig,
  });
  open.push({ close: () => broker.stop() });

  const login = (user: string) => ({
    url: broker.url,
    username: user,
    password: passwords[user],
  });
  return { broker, login };
}

/** The end of one call: its events, or the error it ended with. */
interface Outcome {
  events?: AetherEvent[];
  error?: Error & { code?: string };
}

function settle(events$: Observable<AetherEvent>): Promise<Outcome> {
  return collect(events$).then(
    (events) => ({ events }),
    (error: Error & { code?: string }) => ({ error }),
  );
}

function getProgress(events: AetherEvent[]): number[] {
  return events.flatMap((event) =>
    event.type === 'status' ? [event.progress] : [],
  );
}

function countRunsBy(workerId: string): number {
  return runs.filter((run) => run.workerId === workerId).length;
}

function countDenied(broker: MosquittoBroker): number {
  return broker.logs().match(/Denied PUBLISH/g)?.length ?? 0;
}

function mqttName(protocolVersion: 4 | 5): string {
  return protocolVersion === 5 ? 'MQTT 5' : 'MQTT 3.1.1';
}

async function connectRaw(
  options: mqtt.IClientOptions & { url: string },
): Promise<MqttClient> {
  const { url, ...rest } = options;
  const client = await mqtt.connectAsync(url, {
    protocolVersion: 5,
    reconnectPeriod: 0,
    connectTimeout: 2000,
    ...rest,
  });
  open.push({ close: () => client.endAsync(true) });
  return client;
}

describe('access rights through the transport (Mosquitto acl_file)', () => {
  afterEach(async () => {
    await closeAll(open.splice(0).reverse());
    runs.length = 0;
    logs.lines.length = 0;
  });

  for (const protocolVersion of [5, 4] as const) {
    const name = mqttName(protocolVersion);
    it(`completes authorised calls with progress (${name})`, async () => {
      const union = createUnion('ok');
      const { broker, login } = await startSecuredBroker(
        [
          {
            union,
            users: {
              clerk: { calls: [BUILD] },
              builder: { performs: [BUILD] },
            },
          },
        ],
        DEBUG_LOG,
      );
      const worker = await startWorker(
        { ...login('builder'), union, protocolVersion },
        [ReportController],
      );
      const client = createClient({
        ...login('clerk'),
        union,
        protocolVersion,
      });
      open.push(client);

      const results = await Promise.all(
        [3, 4].map((steps) => collect(client.send(BUILD_PATTERN, { steps }))),
      );

      assert.deepEqual(getProgress(results[0]), [0, 25, 50, 75]);
      assert.deepEqual(getProgress(results[1]), [0, 20, 40, 60, 80]);
      for (const [index, events] of results.entries()) {
        const completion = getCompletion(events);
        assert.equal(completion.success, true);
        assert.deepEqual(completion.data, {
          steps: index + 3,
          workerId: worker.workerId,
        });
      }

      // Every publish of both sides (presence, idle, will, replies) is
      // within the generated rights: the broker refused none of them.
      await closeAll([client, worker.app]);
      assert.equal(countDenied(broker), 0, broker.logs());
      assert.deepEqual(logs.errors(), [], logs.describe());
    });
  }

  it('refuses a task the caller may not start at once (MQTT 5)', async () => {
    const union = createUnion('nw');
    const { login } = await startSecuredBroker([
      {
        union,
        users: { clerk: { calls: [PURGE] }, builder: { performs: [BUILD] } },
      },
    ]);
    await startWorker({ ...login('builder'), union }, [ReportController]);
    const client = createClient({
      ...login('clerk'),
      union,
      receiptTimeout: 3000,
    });
    open.push(client);

    const started = Date.now();
    const error = await collectError(client.send(BUILD_PATTERN, {}));
    const elapsed = Date.now() - started;

    assert.equal(error.code, AetherErrorCode.NotAuthorized);
    assert.match(
      error.message,
      new RegExp(
        `refused to let this client publish on ` +
          `"${union}/reports/build/x/[^/]+/perform".*ACL`,
      ),
    );
    assert.ok(elapsed < 1000, `failed after ${elapsed} ms, not at once`);
    assert.equal(runs.length, 0, 'no worker ran it');
  });

  it('ends a task the caller may not start (MQTT 3.1.1)', async () => {
    const union = createUnion('nw4');
    const { login } = await startSecuredBroker([
      {
        union,
        users: { clerk: { calls: [PURGE] }, builder: { performs: [BUILD] } },
      },
    ]);
    await startWorker({ ...login('builder'), union }, [ReportController]);
    const client = createClient({
      ...login('clerk'),
      union,
      protocolVersion: 4,
      receiptTimeout: 600,
      timeout: 5000,
    });
    open.push(client);

    const started = Date.now();
    const error = await collectError(client.send(BUILD_PATTERN, {}));
    const elapsed = Date.now() - started;

    // 3.1.1 cannot say "not authorised" to a publish: the broker acks
    // it and drops it, so only the receipt timeout can end the call.
    assert.equal(error.code, AetherErrorCode.NoWorker);
    assert.match(error.message, /no receipt within 600 ms/);
    assert.match(error.message, /MQTT 3\.1\.1/);
    assert.match(error.message, /may not publish.*ACL/);
    assert.ok(elapsed >= 550 && elapsed < 2000, `ended after ${elapsed} ms`);
    assert.equal(runs.length, 0, 'no worker ran it');
  });

  it('drops the turns of a group member without the right', async () => {
    const union = createUnion('sh');
    const { login } = await startSecuredBroker([
      {
        union,
        users: {
          clerk: { calls: [BUILD] },
          builder: { performs: [BUILD] },
          outsider: { performs: [PURGE] },
        },
      },
    ]);
    const builder = await startWorker({ ...login('builder'), union }, [
      ReportController,
    ]);
    const outsider = await startWorker({ ...login('outsider'), union }, [
      ReportController,
    ]);
    const client = createClient({
      ...login('clerk'),
      union,
      receiptTimeout: 400,
      retryDelay: 20,
    });
    open.push(client);

    // Mosquitto grants the outsider's $share subscription and hands it
    // every other task, then drops each one: only the receipt timeout
    // tells the caller.
    const plain = await Promise.all(
      Array.from({ length: 6 }, () => settle(client.send(BUILD_PATTERN, {}))),
    );
    const lost = plain.filter((outcome) => outcome.error);
    assert.ok(lost.length > 0 && lost.length < 6, `${lost.length} of 6 lost`);
    for (const { error } of lost) {
      assert.equal(error?.code, AetherErrorCode.NoWorker);
      assert.match(error?.message ?? '', /no receipt within 400 ms/);
    }

    // Sent again, a lost task lands on the next member in turn.
    const retried = await Promise.all(
      Array.from({ length: 6 }, () =>
        collect(
          client.send(BUILD_PATTERN, new AetherRecord({}, { retries: 5 })),
        ),
      ),
    );
    for (const events of retried) {
      assert.equal(getCompletion(events).success, true);
    }

    assert.equal(countRunsBy(outsider.workerId), 0, 'the outsider ran none');
    assert.equal(countRunsBy(builder.workerId), 6 - lost.length + 6);

    // The one sign at the outsider (MQTT 5): its idle announcement for
    // the task it may not serve is refused, and it logs that.
    const idle = `${union}/reports/build/x/${outsider.workerId}/idle`;
    await eventually(
      () => logs.errors().some((line) => line.includes(idle)),
      'the outsider logged its refused idle announcement',
      2000,
      () => logs.describe(),
    );
    const complaint = logs.errors().find((line) => line.includes(idle));
    assert.match(complaint ?? '', /AETHER_NOT_AUTHORIZED/);
    assert.ok(
      !logs.errors().some((line) => line.includes(builder.workerId)),
      logs.describe(),
    );
  });

  it("hides a caller's progress from a user without read rights", async () => {
    const union = createUnion('rd');
    const { login } = await startSecuredBroker([
      {
        union,
        users: {
          clerk: { calls: [BUILD] },
          builder: { performs: [BUILD] },
          snoop: { calls: [PURGE], performs: [PURGE] },
        },
      },
    ]);
    await startWorker({ ...login('builder'), union }, [ReportController]);
    const client = createClient({ ...login('clerk'), union });
    open.push(client);
    await client.connect();

    const snoopId = `snoop-${randomBytes(4).toString('hex')}`;
    const snoop = await connectRaw({ ...login('snoop'), clientId: snoopId });
    const filters = [`${union}/inbox/${client.clientId}/+`, `${union}/#`];
    await snoop.subscribeAsync(filters, { qos: 1 });
    const snooped: string[] = [];
    snoop.on('message', (topic) => snooped.push(topic));

    const events = await collect(client.send(BUILD_PATTERN, { steps: 4 }));
    assert.deepEqual(getProgress(events), [0, 20, 40, 60, 80]);

    // Published after the caller heard its completion, the marker reaches
    // the snoop after anything of the caller's it would have been sent.
    const marker = `${union}/inbox/${snoopId}/marker`;
    await snoop.publishAsync(marker, '{}', { qos: 1 });
    await eventually(
      () => snooped.includes(marker),
      'the marker arrived',
      2000,
      () => logs.describe(),
    );
    // Without the ACL it would have read every reply twice (both filters
    // match) and the task itself.
    assert.deepEqual(snooped, [marker]);
  });

  describe('unions', () => {
    async function startTwoUnions() {
      const unionA = createUnion('ua');
      const unionB = createUnion('ub');
      const secured = await startSecuredBroker([
        {
          union: unionA,
          users: {
            clerkA: { calls: [BUILD] },
            builderA: { performs: [BUILD] },
          },
        },
        {
          union: unionB,
          users: {
            clerkB: { calls: [BUILD] },
            builderB: { performs: [BUILD] },
          },
        },
      ]);
      return { unionA, unionB, ...secured };
    }

    it("never gives a worker of union A union B's tasks", async () => {
      const { unionB, login } = await startTwoUnions();
      const builderB = await startWorker(
        { ...login('builderB'), union: unionB },
        [ReportController],
      );
      // Valid credentials, pointed at the other union, in a group of its
      // own: it would get a copy of every task of union B.
      const intruder = await startWorker(
        { ...login('builderA'), union: unionB },
        [EavesdropController],
      );
      const client = createClient({ ...login('clerkB'), union: unionB });
      open.push(client);

      const results = await Promise.all(
        Array.from({ length: 4 }, () =>
          collect(client.send(BUILD_PATTERN, {})),
        ),
      );

      for (const events of results) {
        assert.equal(getCompletion(events).success, true);
      }
      await delay(SETTLE_MS);
      assert.equal(countRunsBy(builderB.workerId), 4);
      assert.equal(countRunsBy(intruder.workerId), 0, 'the intruder ran none');
    });

    it("refuses a caller of union A union B's tasks (MQTT 5)", async () => {
      const { unionA, unionB, login } = await startTwoUnions();
      await startWorker({ ...login('builderA'), union: unionA }, [
        ReportController,
      ]);
      const builderB = await startWorker(
        { ...login('builderB'), union: unionB },
        [ReportController],
      );
      const ownUnion = createClient({ ...login('clerkA'), union: unionA });
      const otherUnion = createClient({ ...login('clerkA'), union: unionB });
      open.push(ownUnion, otherUnion);

      const own = await collect(ownUnion.send(BUILD_PATTERN, {}));
      assert.equal(getCompletion(own).success, true);

      const error = await collectError(otherUnion.send(BUILD_PATTERN, {}));
      assert.equal(error.code, AetherErrorCode.NotAuthorized);
      assert.match(error.message, new RegExp(`"${unionB}/reports/build/`));
      assert.equal(countRunsBy(builderB.workerId), 0);
    });

    it("lets a user of union A drop union B's tasks in B's group", async () => {
      const { unionB, login } = await startTwoUnions();
      await startWorker({ ...login('builderB'), union: unionB }, [
        ReportController,
      ]);
      // In union B's default group: the broker grants the subscription
      // and gives it turns, which it then drops.
      const intruder = await startWorker(
        { ...login('builderA'), union: unionB },
        [ReportController],
      );
      const client = createClient({
        ...login('clerkB'),
        union: unionB,
        receiptTimeout: 400,
      });
      open.push(client);

      const outcomes = await Promise.all(
        Array.from({ length: 4 }, () => settle(client.send(BUILD_PATTERN, {}))),
      );

      const lost = outcomes.filter((outcome) => outcome.error);
      assert.ok(lost.length > 0, 'some of union B tasks were swallowed');
      for (const { error } of lost) {
        assert.equal(error?.code, AetherErrorCode.NoWorker);
      }
      assert.equal(countRunsBy(intruder.workerId), 0, 'yet it ran none');
    });
  });
});

/** How many logins the broker has turned away. */
function countRefusals(broker: MosquittoBroker): number {
  return broker.logs().match(/disconnected, not authorised/g)?.length ?? 0;
}

const REFUSED = /refused the connection: Connection refused: Not authorized/;

describe('refused credentials', { concurrency: true }, () => {
  const cases = [
    { role: 'caller', who: 'a wrong password', protocolVersion: 5 },
    { role: 'caller', who: 'no credentials', protocolVersion: 5 },
    { role: 'caller', who: 'a wrong password', protocolVersion: 4 },
    { role: 'worker', who: 'a wrong password', protocolVersion: 5 },
    { role: 'worker', who: 'no credentials', protocolVersion: 5 },
  ] as const;

  for (const { role, who, protocolVersion } of cases) {
    const name = `refuses a ${role} with ${who} once`;
    it(`${name} (${mqttName(protocolVersion)})`, async (t) => {
      const union = createUnion('cr');
      const broker = await startMosquitto({
        users: { clerk: 'right-password' },
        acl: createMosquittoAcl({
          union,
          users: { clerk: { calls: [BUILD] } },
        }),
      });
      const mine: Array<{ close(): unknown }> = [];
      t.after(async () => {
        await closeAll(mine.reverse());
        await broker.stop();
      });

      const credentials =
        who === 'no credentials'
          ? {}
          : { username: 'clerk', password: 'wrong' };
      const options = {
        url: broker.url,
        union,
        protocolVersion,
        ...credentials,
      };
      const started = Date.now();
      const statuses =
        role === 'caller'
          ? await refuseCaller(options, mine)
          : await refuseWorker(options, mine);
      const elapsed = Date.now() - started;
      assert.ok(elapsed < 1000, `refused after ${elapsed} ms`);
      assert.equal(statuses.at(-1), AetherStatus.Closed);

      // One attempt per call (the caller's connect() and send(), the
      // worker's listen()), then none: a refusal is final, where MQTT.js
      // alone would try again every second.
      const attempts = role === 'caller' ? 2 : 1;
      await eventually(
        () => countRefusals(broker) === attempts,
        `the broker logged ${attempts} refusals`,
        2000,
        () => logs.describe(),
      );
      await delay(NO_RETRY_WATCH_MS);
      assert.equal(countRefusals(broker), attempts, broker.logs());
      assert.equal(statuses.at(-1), AetherStatus.Closed, `${statuses}`);
    });
  }
});

/** Connects and sends; both must fail with the refusal. */
async function refuseCaller(
  options: AetherClientOptions,
  mine: Array<{ close(): unknown }>,
): Promise<string[]> {
  const client: AetherClient = createClient(options);
  mine.push(client);
  const statuses: string[] = [];
  client.status.subscribe((status) => statuses.push(status));

  const connecting = await client.connect().then(
    () => assert.fail('connect() succeeded'),
    (error: Error & { code?: string }) => error,
  );
  assert.equal(connecting.code, AetherErrorCode.ConnectionRefused);
  assert.match(connecting.message, REFUSED);

  const sending = await collectError(client.send(BUILD_PATTERN, {}));
  assert.equal(sending.code, AetherErrorCode.ConnectionRefused);
  assert.match(sending.message, REFUSED);
  return statuses;
}

async function refuseWorker(
  options: AetherServerOptions,
  mine: Array<{ close(): unknown }>,
): Promise<string[]> {
  const { app, server } = await createWorkerApp(options, [ReportController]);
  mine.push(app);
  const statuses: string[] = [];
  server.status.subscribe((status) => statuses.push(status));

  const error = await app.listen().then(
    () => assert.fail('listen() succeeded'),
    (refusal: Error & { code?: string }) => refusal,
  );
  assert.equal(error.code, AetherErrorCode.ConnectionRefused);
  assert.match(error.message, REFUSED);
  return statuses;
}
