// The Python peer on both ends of a real Mosquitto: before it judges the
// Nest transport, it must itself speak PROTOCOL.md and crash where the
// library would.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, afterEach, before, describe, test } from 'node:test';

import type { WireMessage } from '../../lib/core/codec.js';
import { startMosquitto } from '../support/mosquitto.js';
import type { MosquittoBroker } from '../support/mosquitto.js';
import { PeerExitCode, startPythonPeer } from '../support/python-peer.js';
import type { PeerEvent, PythonPeer } from '../support/python-peer.js';

const JOB = 'worker';
const TASK = 'collect';

describe('Python AetherMagic peer on Mosquitto', () => {
  let broker: MosquittoBroker;
  const peers = new Set<PythonPeer>();

  before(async () => (broker = await startMosquitto()));
  after(() => broker.stop());

  afterEach(async () => {
    await Promise.all([...peers].map((peer) => peer.stop()));
    peers.clear();
  });

  function start(mode: string, union: string, extra: string[] = []) {
    const peer = startPythonPeer([
      mode,
      ...['--port', String(broker.port), '--union', union],
      ...['--job', JOB, '--task', TASK],
      ...extra,
    ]);
    peers.add(peer);
    return peer;
  }

  async function startWorker(union: string, extra: string[] = []) {
    const worker = start('worker', union, extra);
    const ready = await worker.waitFor(isEvent('ready'));
    return { worker, workerId: String(ready.client) };
  }

  test('a 0.2 caller gets the receipt, the progress, then succeed', async () => {
    const union = uniqueUnion();
    const { worker, workerId } = await startWorker(union, ['--max-tasks', '1']);
    const input = { steps: 2, echo: 'hello' };

    const caller = start('caller', union, [
      ...['--style', '0.2', '--input', JSON.stringify(input)],
    ]);
    assert.equal(await caller.exited, PeerExitCode.done, caller.stderr());

    const [tid] = sentTids(caller);
    const replies = repliesFor(caller, tid);
    assert.deepEqual(
      replies.map((reply) => [reply.action, reply.progress, reply.data]),
      [
        ['status', 0, {}],
        ['status', 33, { step: 1 }],
        ['status', 66, { step: 2 }],
        ['complete', 100, { echo: 'hello', worker: workerId, input }],
      ],
    );
    assertWellFormed(replies, workerId);
    assert.equal(replies.at(-1)?.status, 'succeed');

    assert.equal(await worker.exited, PeerExitCode.done, worker.stderr());
    assert.ok(worker.events.some((e) => isPerformed(e, tid)));
  });

  test('a task that asks to fail completes failed', async () => {
    const union = uniqueUnion();
    const { workerId } = await startWorker(union);

    const caller = start('caller', union, ['--input', '{"fail":true}']);
    assert.equal(await caller.exited, PeerExitCode.done, caller.stderr());

    const [tid] = sentTids(caller);
    const complete = repliesFor(caller, tid).at(-1);
    assert.ok(complete, 'no complete received');
    assert.equal(complete.action, 'complete');
    assert.equal(complete.status, 'failed');
    assert.deepEqual(complete.data, { message: 'requested failure' });
    assert.equal(complete.client, workerId);
  });

  test('a 0.0 caller filters its tids out of the `+` topics', async () => {
    const union = uniqueUnion();
    const { workerId } = await startWorker(union);

    const caller = start('caller', union, [
      ...['--style', '0.0', '--count', '2', '--input', '{"echo":7}'],
    ]);
    assert.equal(await caller.exited, PeerExitCode.done, caller.stderr());

    const tids = sentTids(caller);
    assert.equal(tids.length, 2);
    for (const tid of tids) {
      const replies = repliesFor(caller, tid);
      assert.deepEqual(replies[0]?.data, {}, 'the receipt comes first');
      assert.equal(replies.at(-1)?.status, 'succeed');
      assertWellFormed(replies, workerId);
    }
  });

  test('the worker ignores payload fields it does not know', async () => {
    const union = uniqueUnion();
    const { worker } = await startWorker(union);
    const tid = randomBytes(8).toString('hex');

    const perform = {
      ...{ host: 'h', client: 'c', action: 'perform', status: 'initialized' },
      ...{ progress: 0, data: { steps: 0 } },
      ...{ job: '', workgroup: '', task: '', context: '', tid: '' },
    };
    publishRaw(union, `${tid}/perform`, JSON.stringify(perform));

    await worker.waitFor((event) => isPerformed(event, tid));
  });

  test('a malformed perform makes the worker crash with code 3', async () => {
    const malformed = [
      '{"host":"h","client":"c","action":"perform","status":"initialized",' +
        '"progress":0}',
      'not json',
      '["a","list"]',
    ];

    for (const payload of malformed) {
      const union = uniqueUnion();
      const { worker } = await startWorker(union);
      publishRaw(union, 'bad0tid1/perform', payload);

      assert.equal(await worker.exited, PeerExitCode.crash, payload);
      const crash = await worker.waitFor(isEvent('crash'));
      assert.equal(crash.topic, `${union}/${JOB}/${TASK}/x/bad0tid1/perform`);
    }
  });

  test('a malformed complete makes a 0.0 caller crash with code 3', async () => {
    const union = uniqueUnion();
    const caller = start('caller', union, ['--style', '0.0']);
    await caller.waitFor(isEvent('sent'));

    // Nest-like spelling mistake: PROTOCOL.md says `succeed`.
    const complete = {
      ...{ host: 'h', client: 'c', action: 'complete', status: 'success' },
      ...{ progress: 100, data: {} },
    };
    publishRaw(union, 'other/complete', JSON.stringify(complete));

    assert.equal(await caller.exited, PeerExitCode.crash);
    const crash = await caller.waitFor(isEvent('crash'));
    assert.match(String(crash.reason), /`status` 'success'/);
  });

  test('a caller nobody serves times out with code 4', async () => {
    const caller = start('caller', uniqueUnion(), ['--seconds', '0.5']);

    assert.equal(await caller.exited, PeerExitCode.timeout);
    const timeout = await caller.waitFor(isEvent('timeout'));
    assert.deepEqual(timeout.pending, sentTids(caller));
  });

  function publishRaw(union: string, tidAndAction: string, payload: string) {
    const topic = `${union}/${JOB}/${TASK}/x/${tidAndAction}`;
    start('raw', union, ['--topic', topic, '--payload', payload]);
  }
});

function uniqueUnion(): string {
  return `pypeer${randomBytes(4).toString('hex')}`;
}

function isEvent(name: string) {
  return (event: PeerEvent) => event.event === name;
}

function isPerformed(event: PeerEvent, tid: string): boolean {
  return event.event === 'performed' && event.tid === tid;
}

function sentTids(peer: PythonPeer): string[] {
  return peer.events
    .filter((event) => event.event === 'sent')
    .map((event) => String(event.tid));
}

function repliesFor(peer: PythonPeer, tid: string): WireMessage[] {
  return peer.events
    .filter((event) => event.event === 'status' || event.event === 'complete')
    .filter((event) => event.tid === tid)
    .map((event) => event.payload as WireMessage);
}

function assertWellFormed(replies: WireMessage[], workerId: string): void {
  assert.ok(replies.length > 0, 'no reply at all');

  for (const reply of replies) {
    assert.equal(reply.client, workerId);
    assert.equal(typeof reply.host, 'string');
    const expected =
      reply.action === 'status' ? ['progress'] : ['succeed', 'failed'];
    assert.ok(expected.includes(reply.status), JSON.stringify(reply));
  }
}
