import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import {
  readServerSentEvents,
  type ServerSentEvent,
} from '../../sample-app/demo/sse-client.js';
import {
  startGateway,
  type StartedGateway,
} from '../../sample-app/gateway/gateway.js';
import { ScanController } from '../../sample-app/worker/scan.controller.js';
import { startMosquitto, type MosquittoBroker } from '../support/mosquitto.js';
import {
  closeAll,
  createUnion,
  startWorkers,
  type StartedWorker,
} from '../support/nest-apps.js';

// The sample app as a user runs it: two scan workers in one group, the
// HTTP gateway, and a scan streamed over server-sent events.

const FILES: Record<string, string> = {
  'notes.txt': 'one\ntwo\n',
  'sub/last-line.txt': 'no newline at the end',
};

/** Every event of one scan through the gateway's SSE endpoint. */
async function scan(gateway: StartedGateway, path: string) {
  const url = `${gateway.url}/scan?path=${encodeURIComponent(path)}`;
  const events: ServerSentEvent[] = [];
  const deadline = AbortSignal.timeout(10_000);
  for await (const event of readServerSentEvents(url, deadline)) {
    events.push(event);
  }

  return events;
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

describe('the sample app (gateway and scan workers, Mosquitto)', () => {
  let broker: MosquittoBroker;
  let workers: StartedWorker[];
  let gateway: StartedGateway;
  let folder: string;

  before(async () => {
    folder = mkdtempSync(join(tmpdir(), 'aether-scan-'));
    mkdirSync(join(folder, 'sub'));
    for (const [path, text] of Object.entries(FILES)) {
      writeFileSync(join(folder, path), text);
    }

    broker = await startMosquitto({});
    const union = createUnion('sample');
    workers = await startWorkers(2, { url: broker.url, union }, [
      ScanController,
    ]);
    gateway = await startGateway({
      client: { url: broker.url, union, timeout: 10_000 },
      port: 0,
      logLevels: ['error'],
    });
  });

  after(async () => {
    await closeAll([gateway.app, ...workers.map((worker) => worker.app)]);
    await broker.stop();
    rmSync(folder, { recursive: true, force: true });
  });

  it('streams a scan: progress by bytes, then the summary', async () => {
    const events = await scan(gateway, folder);

    const last = events.at(-1);
    assert.equal(last?.type, 'complete', JSON.stringify(events));
    const statuses = events.slice(0, -1);
    assert.ok(statuses.length > 0, 'progress before the summary');
    assert.ok(statuses.every((event) => event.type === 'status'));

    const { success, data } = last.data as {
      success: boolean;
      data: {
        files: number;
        bytes: number;
        lines: number;
        workerId: string;
        entries: Array<{ path: string; sha256: string; lines: number }>;
      };
    };
    assert.equal(success, true);
    assert.equal(data.files, 2);
    assert.equal(data.bytes, 8 + 21);
    // A last line without a newline counts, as people count lines.
    assert.equal(data.lines, 3);
    assert.deepEqual(
      data.entries.map(({ path, sha256: hash, lines }) => [path, hash, lines]),
      [
        ['notes.txt', sha256(FILES['notes.txt']), 2],
        ['sub/last-line.txt', sha256(FILES['sub/last-line.txt']), 1],
      ],
    );
    assert.ok(
      workers.some((worker) => worker.workerId === data.workerId),
      'one of the two workers did it',
    );
  });

  it('answers a path that is not there with a coded error event', async () => {
    const events = await scan(gateway, join(folder, 'missing'));

    const last = events.at(-1);
    assert.equal(last?.type, 'complete', JSON.stringify(events));
    const { success, data } = last.data as {
      success: boolean;
      data: { code: string };
    };
    assert.equal(success, false);
    assert.equal(data.code, 'SCAN_NOT_FOUND');
  });
});
