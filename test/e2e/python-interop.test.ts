import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';

import { Controller, type Type } from '@nestjs/common';
import { Ctx, MessagePattern, Payload } from '@nestjs/microservices';

import type { AetherClient, AetherContext } from '../../lib/index.js';
import { TaskController } from '../support/fixtures.js';
import { startMosquitto, type MosquittoBroker } from '../support/mosquitto.js';
import {
  closeAll,
  collect,
  createClient,
  createUnion,
  delay,
  getCompletion,
  startWorker,
  type StartedWorker,
} from '../support/nest-apps.js';
import {
  PeerExitCode,
  startPythonPeer,
  type PeerEvent,
  type PythonPeer,
} from '../support/python-peer.js';

const nestRuns: string[] = [];

/** A Nest worker of the job that Python workers also serve. */
@Controller()
class MixedController {
  @MessagePattern('mix/echo')
  echo(@Payload() input: { echo: unknown }, @Ctx() ctx: AetherContext) {
    nestRuns.push(ctx.tid);
    return { echo: input.echo, worker: ctx.workerId };
  }
}

describe('two-way interop with AetherMagic for Python', () => {
  let broker: MosquittoBroker;
  let union: string;
  const peers: PythonPeer[] = [];
  const open: Array<{ close(): unknown }> = [];

  before(async () => {
    broker = await startMosquitto();
  });

  afterEach(async () => {
    await Promise.all(peers.splice(0).map((peer) => peer.stop()));
    await closeAll(open.splice(0).reverse());
    nestRuns.length = 0;
  });

  after(async () => {
    await broker.stop();
  });

  function peerArgs(mode: string, job: string, task: string): string[] {
    return [
      mode,
      '--port',
      String(broker.port),
      '--union',
      union,
      '--job',
      job,
      '--task',
      task,
    ];
  }

  async function startPythonWorker(job: string, task: string) {
    const peer = startPythonPeer([...peerArgs('worker', job, task)]);
    peers.push(peer);
    await peer.waitFor((event) => event.event === 'ready');
    return peer;
  }

  function startClient(): AetherClient {
    const client = createClient({ url: broker.url, union });
    open.push(client);
    return client;
  }

  async function startNestWorker(controller: Type<unknown>) {
    const worker: StartedWorker = await startWorker(
      { url: broker.url, union },
      [controller],
    );
    open.push(worker.app);
    return worker;
  }

  it('a Nest caller gets progress and results from a Python worker', async () => {
    union = createUnion('py');
    const python = await startPythonWorker('py', 'work');
    const client = startClient();

    const events = await collect(
      client.send('py/work', { steps: 3, echo: 'hi' }),
    );
    const progress = events.map((e) =>
      e.type === 'status' ? e.progress : 100,
    );
    assert.deepEqual(progress, [0, 25, 50, 75, 100]);
    assert.equal(getCompletion(events).success, true);
    assert.equal((getCompletion(events).data as { echo: string }).echo, 'hi');

    const failed = getCompletion(
      await collect(client.send('py/work', { fail: true })),
    );
    assert.equal(failed.success, false);
    assert.deepEqual(failed.data, { message: 'requested failure' });
    assert.equal(python.events.filter(isCrash).length, 0);
  });

  for (const style of ['0.2', '0.0']) {
    it(`a Python caller (${style}) is served by a Nest worker`, async () => {
      union = createUnion('pc');
      await startNestWorker(TaskController);
      const caller = startPythonPeer([
        ...peerArgs('caller', 'jobs', 'progress'),
        '--style',
        style,
        '--input',
        JSON.stringify({ steps: 2 }),
      ]);
      peers.push(caller);

      assert.equal(await caller.exited, PeerExitCode.done, caller.stderr());
      const replies = caller.events.filter(isReply);
      const first = replies[0].payload as Record<string, unknown>;
      assert.equal(first.action, 'status');
      assert.equal(first.progress, 0, 'the receipt comes first');
      assert.deepEqual(first.data, {});

      const last = replies.at(-1)?.payload as Record<string, unknown>;
      assert.equal(last.action, 'complete');
      assert.equal(last.status, 'succeed');
      assert.equal(last.progress, 100);
      assert.deepEqual(last.data, { steps: 2 });
    });
  }

  it('a Python caller sees a failed task as "failed"', async () => {
    union = createUnion('pf');
    await startNestWorker(TaskController);
    const caller = startPythonPeer([...peerArgs('caller', 'jobs', 'fail')]);
    peers.push(caller);

    assert.equal(await caller.exited, PeerExitCode.done, caller.stderr());
    const last = caller.events.filter(isReply).at(-1)?.payload as {
      status: string;
      data: unknown;
    };
    assert.equal(last.status, 'failed');
    assert.deepEqual(last.data, { code: 'E_BROKEN', message: 'It broke.' });
  });

  it('Nest and Python workers share one group, once per task', async () => {
    union = createUnion('mx');
    const pythons = [
      await startPythonWorker('mix', 'echo'),
      await startPythonWorker('mix', 'echo'),
    ];
    await startNestWorker(MixedController);
    await startNestWorker(MixedController);
    const client = startClient();

    const results = await Promise.all(
      Array.from({ length: 24 }, (_, index) =>
        collect(client.send('mix/echo', { echo: index })),
      ),
    );
    const tids = results.map((events) => getCompletion(events).tid);
    const getPythonRuns = () =>
      pythons.flatMap((peer) =>
        peer.events
          .filter((event) => event.event === 'performed')
          .map((event) => event.tid as string),
      );

    // A peer prints what it performed after it publishes the completion.
    for (let wait = 0; wait < 100; wait += 1) {
      if (nestRuns.length + getPythonRuns().length >= tids.length) {
        break;
      }

      await delay(20);
    }

    const pythonRuns = getPythonRuns();
    const allRuns = [...nestRuns, ...pythonRuns].sort();
    assert.deepEqual(allRuns, [...tids].sort(), 'each task ran once');
    assert.ok(nestRuns.length > 0, 'Nest workers took a share');
    for (const peer of pythons) {
      assert.ok(peer.events.some((event) => event.event === 'performed'));
      assert.equal(peer.events.filter(isCrash).length, 0);
    }
  });
});

function isReply(event: PeerEvent): boolean {
  return event.event === 'status' || event.event === 'complete';
}

function isCrash(event: PeerEvent): boolean {
  return event.event === 'crash';
}
