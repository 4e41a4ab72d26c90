import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import mqtt from 'mqtt';

import {
  AetherErrorCode,
  AetherRecord,
  type AetherClient,
  type AetherEvent,
} from '../../lib/index.js';
import {
  BROKER_KINDS,
  startBroker,
  type TestBroker,
} from '../support/brokers.js';
import {
  AuditController,
  audits,
  events,
  resetRecords,
  runs,
  TaskController,
} from '../support/fixtures.js';
import {
  closeAll,
  collect,
  collectError,
  createClient,
  createUnion,
  delay,
  eventually,
  getCompletion,
  startWorkers,
  type StartedWorker,
} from '../support/nest-apps.js';

for (const kind of BROKER_KINDS) {
  describe(`the transport on ${kind}`, () => {
    let broker: TestBroker;
    let union: string;
    let workers: StartedWorker[];
    let auditors: StartedWorker[];
    let client: AetherClient;

    before(async () => {
      broker = await startBroker(kind);
      union = createUnion();
      const options = { url: broker.url, union, groupMode: broker.groupMode };
      workers = await startWorkers(3, options, [TaskController]);
      auditors = await startWorkers(2, options, [AuditController]);
      client = createClient({ url: broker.url, union });
    });

    after(async () => {
      await closeAll([client, ...workers.map((w) => w.app)]);
      await closeAll(auditors.map((w) => w.app));
      await broker.close();
    });

    it('runs each task once per group and uses every worker', async () => {
      resetRecords();
      const calls = Array.from({ length: 30 }, (_, index) =>
        collect(client.send('jobs/echo', { index })),
      );
      const results = await Promise.all(calls);

      const tids = results.map((events) => getCompletion(events).tid);
      assert.equal(new Set(tids).size, 30);
      await eventually(() => runs.length === 60, 'both groups ran all', 2000);

      for (const group of [`${union}_jobs_workgroup`, 'audit']) {
        const ran = runs.filter((run) => run.group === group);
        assert.deepEqual(
          ran.map((run) => run.tid).sort(),
          [...tids].sort(),
          `group ${group} ran every task exactly once`,
        );
      }

      const used = (group: StartedWorker[]) =>
        group.filter((w) => runs.some((run) => run.workerId === w.workerId));
      assert.equal(used(workers).length, 3, 'all 3 default workers used');
      assert.equal(used(auditors).length, 2, 'both audit workers used');
    });

    it('serves jobs named like the inbox and system topics', async () => {
      const sorted = await collect(client.send('inbox/sort', [3, 1, 2]));
      assert.deepEqual(getCompletion(sorted).data, [1, 2, 3]);

      const offline = await collect(client.send('system/offline', {}));
      assert.deepEqual(getCompletion(offline).data, { offline: false });
    });

    it("leaves another group's copy running after completing", async () => {
      resetRecords();
      const events = await collect(client.send('jobs/audited', {}));
      assert.deepEqual(getCompletion(events).data, { done: true });

      await eventually(
        () => audits.length === 1,
        'the audit ran to its end',
        2000,
      );
      assert.deepEqual(audits, [
        { tid: getCompletion(events).tid, aborted: false },
      ]);
    });

    it('streams progress in order and completes once', async () => {
      const events = await collect(client.send('jobs/progress', { steps: 4 }));

      const statuses = events.filter((event) => event.type === 'status');
      const progress = statuses.map((event) =>
        event.type === 'status' ? event.progress : -1,
      );
      assert.deepEqual(progress, [0, 20, 40, 60, 80]);
      assert.deepEqual(statuses[0], {
        type: 'status',
        tid: statuses[0].tid,
        progress: 0,
        data: {},
      });
      assert.equal(events.filter((e) => e.type === 'complete').length, 1);
      assert.deepEqual(getCompletion(events).data, { steps: 4 });
    });

    it('hands an input with data, pattern and id keys over whole', async () => {
      const input = { data: [1, 2], pattern: 'not-mine', id: 7, nested: {} };
      const events = await collect(client.send('jobs/wrapped', input));

      const completion = getCompletion(events);
      assert.equal(completion.success, true);
      assert.deepEqual(completion.data, { wrapped: input });
    });

    it('completes a throwing handler as failed with its error', async () => {
      const completion = getCompletion(
        await collect(client.send('jobs/fail', {})),
      );

      assert.equal(completion.success, false);
      assert.deepEqual(completion.data, {
        code: 'E_BROKEN',
        message: 'It broke.',
      });
    });

    it('masks an unexpected error as Nest transports do', async () => {
      const completion = getCompletion(
        await collect(client.send('jobs/crash', {})),
      );

      assert.equal(completion.success, false);
      assert.equal(
        (completion.data as { message: string }).message,
        'Internal server error',
      );
    });

    it('runs pipes, interceptors and guards', async () => {
      const valid = getCompletion(
        await collect(client.send('jobs/validate', { name: 'a', score: 5 })),
      );
      assert.deepEqual(valid.data, { name: 'a', score: 5, isDto: true });

      const invalid = getCompletion(
        await collect(client.send('jobs/validate', { name: 3, score: 500 })),
      );
      assert.equal(invalid.success, false);
      assert.deepEqual(invalid.data, {
        code: 'E_INVALID',
        message: 'name, score',
      });

      const wrapped = getCompletion(
        await collect(client.send('jobs/wrapped', { x: 1 })),
      );
      assert.deepEqual(wrapped.data, { wrapped: { x: 1 } });

      const guarded = getCompletion(
        await collect(client.send('jobs/guarded', {})),
      );
      assert.equal(guarded.success, false);
      assert.equal(
        (guarded.data as { message: string }).message,
        'Forbidden resource',
      );
    });

    it('delivers an emitted task to one event handler', async () => {
      resetRecords();
      await new Promise<void>((resolve, reject) =>
        client.emit('jobs/notify', { note: 1 }).subscribe({
          complete: resolve,
          error: reject,
        }),
      );

      await eventually(() => events.length === 1, 'the event arrived', 2000);
      await delay(200);
      assert.equal(events.length, 1, 'exactly one worker got the event');
      assert.deepEqual(events[0].input, { note: 1 });
    });

    it('ends a task nobody serves with a typed error', async () => {
      const quick = createClient({
        url: broker.url,
        union,
        receiptTimeout: 300,
        timeout: 2000,
      });
      const started = Date.now();
      const error = await collectError(quick.send('nobody/home', {}));
      await quick.close();

      assert.equal(error.code, AetherErrorCode.NoWorker);
      assert.match(error.message, /No worker took task/);
      assert.ok(Date.now() - started < 2000, 'failed before the timeout');
    });

    it('ends a slow task with a timeout and cancels it', async () => {
      resetRecords();
      const started = Date.now();
      const record = new AetherRecord({}, { timeout: 400 });
      const error = await collectError(client.send('jobs/slow', record));

      assert.equal(error.code, AetherErrorCode.Timeout);
      assert.ok(Date.now() - started < 1500);
    });

    it('keeps serving after malformed messages', async () => {
      const raw = await mqtt.connectAsync(broker.url, { protocolVersion: 4 });
      const topic = `${union}/jobs/echo/x/bad1/perform`;
      for (const payload of [
        '{',
        '[]',
        '{"action":"perform"}',
        'x'.repeat(9),
      ]) {
        await raw.publishAsync(topic, payload, { qos: 1 });
      }
      await raw.publishAsync(`${union}/jobs/echo/x/perform`, '{}', { qos: 1 });
      await raw.endAsync();

      const events = await collect(client.send('jobs/echo', { after: 1 }));
      assert.equal(getCompletion(events).success, true);
    });

    it('rejects names that cannot be one topic level', async () => {
      const error = await collectError(client.send('jobs/a+b', {}));
      assert.equal(error.code, AetherErrorCode.InvalidName);

      const pattern = await collectError(client.send('one/two/three', {}));
      assert.equal(pattern.code, AetherErrorCode.InvalidPattern);
    });

    it('accepts object patterns with a context', async () => {
      const pattern = { job: 'jobs', task: 'echo', context: 'x' };
      const events: AetherEvent[] = await collect(
        client.send(pattern, { via: 'object' }),
      );
      assert.equal(getCompletion(events).success, true);
    });
  });
}
