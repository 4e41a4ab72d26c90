import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import type { AetherClient } from '../../lib/index.js';
import { TaskController } from '../support/fixtures.js';
import { startMosquitto, type MosquittoBroker } from '../support/mosquitto.js';
import {
  closeAll,
  collect,
  createClient,
  createUnion,
  getCompletion,
  startWorker,
  type StartedWorker,
} from '../support/nest-apps.js';
import { getFreePort } from '../support/ports.js';

// `ws://` URLs, which the options promise: a caller over WebSockets and a
// worker over TCP, on one Mosquitto with both listeners.

describe('a caller over ws:// (Mosquitto websockets listener)', () => {
  let broker: MosquittoBroker;
  let worker: StartedWorker;
  let client: AetherClient;

  before(async () => {
    const wsPort = await getFreePort();
    broker = await startMosquitto({
      extraConfig: [`listener ${wsPort} 127.0.0.1`, 'protocol websockets'],
    });
    const union = createUnion('ws');
    worker = await startWorker({ url: broker.url, union }, [TaskController]);
    client = createClient({ url: `ws://127.0.0.1:${wsPort}`, union });
  });

  after(async () => {
    await closeAll([client, worker.app]);
    await broker.stop();
  });

  it('completes a task with its progress', async () => {
    const events = await collect(client.send('jobs/progress', { steps: 2 }));
    const progress = events.flatMap((event) =>
      event.type === 'status' ? [event.progress] : [],
    );

    assert.deepEqual(progress, [0, 33, 67]);
    assert.equal(getCompletion(events).success, true);
  });
});
