import assert from 'node:assert/strict';
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { after, afterEach, before, describe, it } from 'node:test';

import { Controller } from '@nestjs/common';
import mqtt from 'mqtt';
import { Ctx, MessagePattern, Payload } from '@nestjs/microservices';
import type { Subscription } from 'rxjs';

import {
  AetherErrorCode,
  AetherFailureCode,
  AetherRecord,
  AetherStatus,
  type AetherContext,
  type AetherEvent,
} from '../../lib/index.js';
import { startMosquitto, type MosquittoBroker } from '../support/mosquitto.js';
import { getFreePort } from '../support/ports.js';
import {
  closeAll,
  collect,
  collectError,
  createClient,
  createUnion,
  delay,
  eventually,
  getCompletion,
  startWorker,
} from '../support/nest-apps.js';

/** What the handlers saw, per test. */
const seen = { started: [] as string[], aborted: [] as string[], running: 0 };
let maxRunning = 0;

@Controller()
class ResilienceController {
  @MessagePattern('jobs/wait')
  async wait(@Payload() input: { ms: number }, @Ctx() ctx: AetherContext) {
    seen.started.push(ctx.tid);
    seen.running += 1;
    maxRunning = Math.max(maxRunning, seen.running);
    await ctx.status(1);

    try {
      await abortableDelay(input.ms, ctx.signal);
      return { workerId: ctx.workerId };
    } catch {
      seen.aborted.push(ctx.tid);
      throw new Error('aborted');
    } finally {
      seen.running -= 1;
    }
  }
}

/** A handler that gets everything about ctx.status() and its output wrong. */
@Controller()
class CarelessController {
  @MessagePattern('jobs/careless')
  async careless(@Ctx() ctx: AetherContext) {
    const cycle: Record<string, unknown> = {};
    cycle.self = cycle;
    await ctx.status(10, 'x'.repeat(70 * 1024)); // past max_packet_size
    await ctx.status(20, cycle);
    await ctx.status(30, () => 'not data');
    void ctx.status(Infinity, BigInt(1)); // not even awaited
    return () => 'not an output';
  }
}

/** Sends nothing until it completes: no receipt within a short delay. */
@Controller()
class QuietController {
  @MessagePattern('jobs/quiet')
  async quiet(@Payload() input: { ms: number }, @Ctx() ctx: AetherContext) {
    seen.started.push(ctx.tid);
    await delay(input.ms);
    return {};
  }
}

/** Floods its caller with statuses, then completes. */
@Controller()
class ChattyController {
  @MessagePattern('jobs/chatty')
  async chatty(
    @Payload() input: { statuses: number; ms: number },
    @Ctx() ctx: AetherContext,
  ) {
    seen.started.push(ctx.tid);
    for (let step = 0; step < input.statuses; step += 1) {
      void ctx.status(step % 100);
    }
    await delay(input.ms);
    return {};
  }
}

function abortableDelay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      reject(signal.reason);
    });
  });
}

describe('no task left hanging (Mosquitto, MQTT 5)', () => {
  let broker: MosquittoBroker;
  const open: Array<{ close(): unknown }> = [];

  before(async () => {
    broker = await startMosquitto({ maxPacketSize: 64 * 1024 });
  });

  afterEach(async () => {
    await closeAll(open.splice(0).reverse());
    seen.started.length = 0;
    seen.aborted.length = 0;
    maxRunning = 0;
  });

  after(async () => {
    await broker.stop();
  });

  async function setUp(workerOptions = {}, clientOptions = {}) {
    const union = createUnion('r');
    const worker = await startWorker(
      { url: broker.url, union, ...workerOptions },
      [ResilienceController],
    );
    const client = createClient({ url: broker.url, union, ...clientOptions });
    open.push(worker.app, client);
    return { union, worker, client };
  }

  it('cancels the task at its worker when the caller unsubscribes', async () => {
    const { client } = await setUp();
    const events: AetherEvent[] = [];
    const subscription: Subscription = client
      .send('jobs/wait', { ms: 10_000 })
      .subscribe((event) => events.push(event));

    await eventually(() => events.length > 0, 'the task started', 3000);
    subscription.unsubscribe();

    await eventually(
      () => seen.aborted.length === 1,
      'the handler aborted',
      3000,
    );
    assert.equal(seen.started.length, 1, 'no other worker ran it');
  });

  it("ignores a cancel from anyone but the task's caller", async () => {
    const { client, union, worker } = await setUp();
    const events: AetherEvent[] = [];
    const done = new Promise<void>((resolve, reject) =>
      client.send('jobs/wait', { ms: 400 }).subscribe({
        next: (e) => events.push(e),
        error: reject,
        complete: resolve,
      }),
    );
    await eventually(() => events.length > 0, 'the task started', 3000);

    const stranger = await mqtt.connectAsync(broker.url);
    const cancel = {
      host: 'elsewhere',
      client: 'stranger',
      action: 'cancel',
      status: 'cancelled',
      progress: 0,
      data: {},
    };
    const inbox = `${union}/inbox/${worker.workerId}/${events[0].tid}`;
    await stranger.publishAsync(inbox, JSON.stringify(cancel), { qos: 1 });
    await stranger.endAsync();

    await done;
    assert.equal(getCompletion(events).success, true);
    assert.deepEqual(seen.aborted, []);
  });

  it("takes an assign only from the task's caller (claim mode)", async () => {
    const union = createUnion('r');
    const worker = await startWorker(
      { url: broker.url, union, groupMode: 'claim' },
      [QuietController],
    );
    open.push(worker.app);

    // A hand-made caller, to hold back its assign while a stranger sends
    // one first.
    const caller = await mqtt.connectAsync(broker.url);
    open.push({ close: () => caller.endAsync() });
    const tid = 'a1';
    const inbox = `${union}/inbox/real-caller/${tid}`;
    const offered = new Promise<void>((resolve) =>
      caller.on('message', () => resolve()),
    );
    await caller.subscribeAsync(inbox, { qos: 1 });
    const wire = (client: string, action: string, extra = {}) =>
      JSON.stringify({
        host: 'h',
        client,
        action,
        status: action === 'perform' ? 'initialized' : 'assigned',
        progress: 0,
        data: { ms: 1 },
        ...extra,
      });
    const perform = `${union}/jobs/quiet/x/${tid}/perform`;
    await caller.publishAsync(
      perform,
      wire('real-caller', 'perform', { reply: inbox }),
      { qos: 1 },
    );
    await offered;

    const workerInbox = `${union}/inbox/${worker.workerId}/${tid}`;
    await caller.publishAsync(workerInbox, wire('stranger', 'assign'));
    await delay(300);
    assert.deepEqual(seen.started, [], "a stranger's assign ran it");

    await caller.publishAsync(workerInbox, wire('real-caller', 'assign'));
    await eventually(
      () => seen.started.length === 1,
      'the caller assigned',
      3000,
    );
  });

  it('fails fast when the broker says nobody subscribes (0x10)', async () => {
    const client = createClient({ url: broker.url, union: createUnion() });
    open.push(client);

    const started = Date.now();
    const error = await collectError(client.send('jobs/none', {}));
    assert.equal(error.code, AetherErrorCode.NoWorker);
    assert.match(error.message, /nobody subscribes/);
    assert.ok(Date.now() - started < 1000, 'before the receipt timeout');
  });

  it('says to check the url when no broker answers there', async () => {
    const silentPort = await getFreePort();
    const client = createClient({
      url: `mqtt://127.0.0.1:${silentPort}`,
      connectTimeout: 1500,
    });
    open.push(client);

    const error = await collectError(client.send('jobs/echo', {}));
    assert.equal(error.code, AetherErrorCode.ConnectionRefused);
    assert.match(error.message, /no answer within 1500 ms/);
    assert.match(error.message, /ECONNREFUSED/);
    assert.match(error.message, /Is a broker running there\? Check the url/);
  });

  it('keeps the call bounds while it connects', async () => {
    const silentUrl = `mqtt://127.0.0.1:${await getFreePort()}`;
    const slowConnect = { url: silentUrl, connectTimeout: 10_000 };

    const timed = createClient({ ...slowConnect, timeout: 300 });
    open.push(timed);
    let started = Date.now();
    const timeout = await collectError(timed.send('jobs/echo', {}));
    assert.equal(timeout.code, AetherErrorCode.Timeout);
    assert.ok(Date.now() - started < 2000, 'within the call timeout');

    const closed = createClient(slowConnect);
    started = Date.now();
    const pending = collectError(closed.send('jobs/echo', {}));
    await delay(100);
    await closed.close();
    const error = await pending;
    assert.equal(error.code, AetherErrorCode.ConnectionClosed);
    assert.ok(Date.now() - started < 2000, 'as soon as it was closed');
  });

  it('waits for a worker that comes late when asked to', async () => {
    const union = createUnion('w');
    const client = createClient({ url: broker.url, union });
    open.push(client);

    const record = new AetherRecord({ ms: 1 }, { waitForWorker: 5000 });
    const result = collect(client.send('jobs/wait', record));
    await delay(700);
    const worker = await startWorker({ url: broker.url, union }, [
      ResilienceController,
    ]);
    open.push(worker.app);

    assert.equal(getCompletion(await result).success, true);
  });

  it('survives statuses and an output it cannot send', async () => {
    const { client, union } = await setUp();
    const careless = await startWorker({ url: broker.url, union }, [
      CarelessController,
    ]);
    open.push(careless.app);

    const events = await collect(client.send('jobs/careless', {}));
    const statuses = events.filter((event) => event.type === 'status');
    assert.deepEqual(
      statuses.map((event) => [event.progress, event.data]),
      [
        [0, {}],
        [10, {}],
        [20, {}],
        [30, {}],
        [100, {}],
      ],
    );
    const completion = getCompletion(events);
    assert.equal(completion.success, false);
    assert.match(
      JSON.stringify(completion.data),
      /cannot encode.*Return plain data/,
    );

    // The worker kept its connection and serves the next task.
    const next = await collect(client.send('jobs/wait', { ms: 1 }));
    assert.equal(getCompletion(next).success, true);
  });

  it('counts the whole packet against the broker limit', async () => {
    // Long names make the response topic (the inbox) a large part of the
    // packet; near the limit every size must either go or be refused,
    // never reach the broker too large and cost the connection.
    const union = createUnion('r') + 'u'.repeat(180);
    const clientId = `c${Date.now()}`.padEnd(200, 'c');
    const worker = await startWorker({ url: broker.url, union }, [
      ResilienceController,
    ]);
    const client = createClient({ url: broker.url, union, clientId });
    open.push(worker.app, client);

    const limit = 64 * 1024;
    const outcomes = new Set<string>();
    for (let size = limit - 3000; size <= limit - 200; size += 100) {
      const input = { ms: 1, blob: 'x'.repeat(size) };
      const events = await collect(client.send('jobs/wait', input)).catch(
        (error: { code: string }) => error.code,
      );
      outcomes.add(typeof events === 'string' ? events : 'completed');
    }

    assert.deepEqual(
      [...outcomes].sort(),
      [AetherErrorCode.PayloadTooLarge, 'completed'].sort(),
    );
  });

  it('refuses a task larger than the broker takes, before sending', async () => {
    const { client } = await setUp();
    const error = await collectError(
      client.send('jobs/wait', { ms: 1, blob: 'x'.repeat(70 * 1024) }),
    );

    assert.equal(error.code, AetherErrorCode.PayloadTooLarge);
    assert.equal(seen.started.length, 0);
  });

  it('queues tasks past the concurrency limit and drops none', async () => {
    const { client } = await setUp({ concurrency: 2 });
    const calls = Array.from({ length: 8 }, () =>
      collect(client.send('jobs/wait', { ms: 30 })),
    );

    const results = await Promise.all(calls);
    assert.ok(results.every((events) => getCompletion(events).success));
    assert.equal(maxRunning, 2);
  });

  it('lets running tasks finish on close, and fails the rest', async () => {
    const { worker, client } = await setUp({
      concurrency: 1,
      shutdownGrace: 300,
    });
    const quick = collect(client.send('jobs/wait', { ms: 100 }));
    const queued = collect(client.send('jobs/wait', { ms: 100 }));
    await eventually(
      () => seen.started.length === 1,
      'the first started',
      3000,
    );

    // The second close() must not return before the first is done.
    const first = worker.server.close();
    await worker.server.close();
    assert.equal(seen.running, 0, 'the second close() waited for the task');
    await Promise.all([first, worker.app.close()]);
    assert.equal(getCompletion(await quick).success, true);

    const failed = getCompletion(await queued);
    assert.equal(failed.success, false);
    assert.equal(
      (failed.data as { code: string }).code,
      AetherFailureCode.Shutdown,
    );
  });

  it('fails a task still running past the shutdown grace', async () => {
    const { worker, client } = await setUp({ shutdownGrace: 200 });
    const long = collect(client.send('jobs/wait', { ms: 10_000 }));
    await eventually(() => seen.started.length === 1, 'the task started', 3000);

    await worker.app.close();
    const failed = getCompletion(await long);
    assert.equal(
      (failed.data as { code: string }).code,
      AetherFailureCode.Shutdown,
    );
    assert.equal(seen.aborted.length, 1, 'the handler saw the abort');
  });

  it('reports a killed worker within seconds', async () => {
    const union = createUnion('k');
    const doomed = await forkWorker(broker.url, union);
    const client = createClient({ url: broker.url, union, timeout: 15_000 });
    open.push(client, { close: () => doomed.stop() });

    const events: AetherEvent[] = [];
    let failure: (Error & { code?: string }) | undefined;
    client.send('jobs/hold', {}).subscribe({
      next: (event) => events.push(event),
      error: (error: Error & { code?: string }) => (failure = error),
    });
    await eventually(() => events.length >= 2, 'the task is running', 3000);

    const killedAt = Date.now();
    doomed.process.kill('SIGKILL');
    await eventually(() => failure !== undefined, 'the caller was told', 3000);
    assert.equal(failure?.code, AetherErrorCode.WorkerLost);
    assert.ok(Date.now() - killedAt < 3000);
  });

  it('retries a task whose worker was killed, on another', async () => {
    const union = createUnion('k');
    const workers = [
      await forkWorker(broker.url, union),
      await forkWorker(broker.url, union),
    ];
    const client = createClient({ url: broker.url, union, timeout: 15_000 });
    open.push(client, ...workers.map((w) => ({ close: () => w.stop() })));

    const events: AetherEvent[] = [];
    const record = new AetherRecord({ ms: 300 }, { retries: 1 });
    const done = new Promise<void>((resolve, reject) =>
      client.send('jobs/hold', record).subscribe({
        next: (event) => events.push(event),
        error: reject,
        complete: resolve,
      }),
    );
    await eventually(() => events.length >= 2, 'the task is running', 3000);

    const first = (events[1].data as { workerId: string }).workerId;
    workers.find((w) => w.workerId === first)?.process.kill('SIGKILL');
    await done;

    const completion = getCompletion(events);
    assert.equal(completion.success, true);
    assert.notEqual((completion.data as { workerId: string }).workerId, first);
    assert.equal(events.filter((e) => e.type === 'complete').length, 1);
  });

  it('survives a broker restart: reconnects and ends every task', async () => {
    const { client } = await setUp();
    const statuses: string[] = [];
    client.status.subscribe((status) => statuses.push(status));
    await collect(client.send('jobs/wait', { ms: 1 }));

    const inFlight = collect(client.send('jobs/wait', { ms: 800 }));
    await eventually(() => seen.started.length === 2, 'the task started', 3000);
    await broker.restart();

    const completion = getCompletion(await inFlight);
    assert.equal(completion.success, true);
    assert.ok(statuses.includes(AetherStatus.Reconnecting));
    assert.equal(statuses.at(-1), AetherStatus.Connected);

    // The worker may still be resubscribing: a new call waits for it.
    const waiting = new AetherRecord({ ms: 1 }, { waitForWorker: 5000 });
    const after = await collect(client.send('jobs/wait', waiting));
    assert.equal(getCompletion(after).success, true);
  });

  it('runs a task sent again once, even past its dedup window', async () => {
    // No receipt before the caller's receipt timeout: it sends each task
    // again while the first copy still runs, and the worker remembers
    // fewer task ids than it runs.
    const union = createUnion('r');
    const worker = await startWorker(
      { url: broker.url, union, dedupWindow: 1, receiptDelay: 5000 },
      [QuietController],
    );
    const client = createClient({
      url: broker.url,
      union,
      receiptTimeout: 200,
      retries: 3,
      retryDelay: 10,
    });
    open.push(worker.app, client);

    const calls = [1, 2, 3].map(() =>
      collect(client.send('jobs/quiet', { ms: 900 })),
    );
    await Promise.allSettled(calls);

    assert.equal(seen.started.length, 3, `runs: ${seen.started.join(' ')}`);
    assert.equal(new Set(seen.started).size, 3);
  });

  it('refuses a task sent after close(), and opens no connection', async () => {
    const { client } = await setUp();
    await client.close();
    const late = await collectError(client.send('jobs/wait', { ms: 1 }));
    assert.equal(late.code, AetherErrorCode.ConnectionClosed);
    assert.match(late.message, /sent after its client was closed/);

    const never = createClient({ url: broker.url });
    await never.close();
    const early = await collectError(never.send('jobs/wait', { ms: 1 }));
    assert.equal(early.code, AetherErrorCode.ConnectionClosed);
    assert.throws(
      () => never.unwrap(),
      (error: { code?: string }) => error.code === AetherErrorCode.NotConnected,
    );
  });

  it('ends tasks in flight when the client closes', async () => {
    const { client } = await setUp();
    const pending = collectError(client.send('jobs/wait', { ms: 5000 }));
    await eventually(() => seen.started.length === 1, 'the task started', 3000);

    await Promise.all([client.close(), client.close()]);
    const error = await pending;
    assert.equal(error.code, AetherErrorCode.ConnectionClosed);
  });
});

describe('replies lost with the broker (Mosquitto)', () => {
  let broker: MosquittoBroker;
  const open: Array<{ close(): unknown }> = [];

  before(async () => {
    broker = await startMosquitto({});
  });

  after(async () => {
    await closeAll(open.splice(0).reverse());
    await broker.kill();
  });

  // Replies go at QoS 0: one written to a broker that then dies is gone.
  // The caller asks the worker again once both are back.
  it('recovers a completion the broker died with', async () => {
    const union = createUnion('lost');
    const worker = await startWorker({ url: broker.url, union }, [
      ResilienceController,
    ]);
    const client = createClient({
      url: broker.url,
      union,
      reconnectPeriod: 100,
      timeout: 15_000,
    });
    open.push(worker.app, client);

    const started = Date.now();
    const result = collect(client.send('jobs/wait', { ms: 300 }));
    await eventually(() => seen.started.length === 1, 'the task started', 3000);
    await delay(100); // its first status reaches the caller

    // Frozen, the broker takes the completion into its socket buffer and
    // never passes it on; killed, it forgets it.
    process.kill(broker.pid, 'SIGSTOP');
    await delay(600);
    await broker.kill();
    await broker.start();

    const completion = getCompletion(await result);
    assert.equal(completion.success, true);
    assert.ok(Date.now() - started < 8000, 'well before the timeout');
    assert.equal(seen.started.length, 1, 'it ran once');
  });
});

describe('flow control (Mosquitto, receive maximum 1)', () => {
  let broker: MosquittoBroker;
  const open: Array<{ close(): unknown }> = [];

  before(async () => {
    broker = await startMosquitto({ maxInflight: 1 });
  });

  after(async () => {
    await closeAll(open.splice(0).reverse());
    seen.started.length = 0;
    await broker.stop();
  });

  // With replies at QoS 1, a worker holds its statuses back to one
  // unacknowledged packet at a time. The receipts of tasks that wait for
  // a free slot must not queue behind them past the receipt timeout.
  it("sends a task's first reply before statuses held back", async () => {
    const union = createUnion('flow');
    const worker = await startWorker(
      { url: broker.url, union, replyQos: 1, concurrency: 2 },
      [ChattyController],
    );
    // Two callers: the broker's own queue to the flooded one is not the
    // worker's to shorten.
    const flooded = createClient({ url: broker.url, union });
    const client = createClient({
      url: broker.url,
      union,
      receiptTimeout: 800,
    });
    open.push(worker.app, flooded, client);

    const chatty = [1, 2].map(() =>
      collect(flooded.send('jobs/chatty', { statuses: 4000, ms: 10 })),
    );
    await eventually(
      () => seen.started.length === 2,
      'both chatty started',
      3000,
    );
    const waiting = Array.from({ length: 6 }, () =>
      collect(client.send('jobs/chatty', { statuses: 0, ms: 1 })),
    );

    const outcomes = await Promise.allSettled([...chatty, ...waiting]);
    const codes = outcomes.map((outcome) =>
      outcome.status === 'fulfilled'
        ? String(getCompletion(outcome.value).success)
        : (outcome.reason as { code: string }).code,
    );
    assert.deepEqual(codes, Array(8).fill('true'));
  });
});

async function forkWorker(url: string, union: string) {
  const entry = fileURLToPath(
    new URL('../support/worker-process.js', import.meta.url),
  );
  const child: ChildProcess = fork(entry, [url, union], { stdio: 'inherit' });
  const workerId = await new Promise<string>((resolve, reject) => {
    child.once('message', (message: { workerId: string }) =>
      resolve(message.workerId),
    );
    child.once('exit', (code) => reject(new Error(`worker exited ${code}`)));
  });

  const stop = () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
    }
  };
  return { process: child, workerId, stop };
}
