import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { scanDirectory } from '../../sample-app/scanner/directory-scanner.js';
import {
  ScanAbortedError,
  ScanError,
  ScanErrorCode,
} from '../../sample-app/scanner/scan-errors.js';

// Big enough to take several chunks (256 KiB each) of the streamed read.
const BIG_FILE_BYTES = 1024 * 1024 + 123;

const CONTENTS: Record<string, string | Buffer> = {
  'a.txt': 'one\ntwo\nthree\n',
  'no-trailing-newline.txt': 'first\nsecond',
  'empty.txt': '',
  'only-newline.txt': '\n',
  'sub/deeper/b.md': '# title\n\nbody\n',
  'sub/c.bin': Buffer.from([0, 1, 2, 0x0a, 255]),
  'big.log': Buffer.alloc(BIG_FILE_BYTES, 'x\n'),
};

const EXPECTED_LINES: Record<string, number> = {
  'a.txt': 3,
  'no-trailing-newline.txt': 2,
  'empty.txt': 0,
  'only-newline.txt': 1,
  'sub/deeper/b.md': 3,
  'sub/c.bin': 2,
  'big.log': Math.ceil(BIG_FILE_BYTES / 2),
};

function sha256(content: string | Buffer): string {
  return createHash('sha256').update(content).digest('hex');
}

function byteLength(content: string | Buffer): number {
  return typeof content === 'string'
    ? Buffer.byteLength(content)
    : content.length;
}

describe('scanDirectory', () => {
  let root: string;
  let outside: string;

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'scan-test-'));
    outside = await mkdtemp(join(tmpdir(), 'scan-outside-'));
    for (const [path, content] of Object.entries(CONTENTS)) {
      await mkdir(join(root, path, '..'), { recursive: true });
      await writeFile(join(root, path), content);
    }

    // Links inside and out of the root: none may be followed or counted.
    await writeFile(join(outside, 'secret.txt'), 'not to be read\n');
    await symlink(outside, join(root, 'link-to-outside'));
    await symlink(join(root, 'a.txt'), join(root, 'link-to-a.txt'));
    await symlink(root, join(root, 'sub', 'loop'));
  });

  after(async () => {
    await rm(root, { recursive: true, force: true });
    await rm(outside, { recursive: true, force: true });
  });

  it('hashes every regular file as crypto does, sorted by path', async () => {
    const summary = await scanDirectory(root);

    const expectedPaths = Object.keys(CONTENTS).sort();
    assert.deepEqual(
      summary.entries.map((entry) => entry.path),
      expectedPaths,
    );
    for (const entry of summary.entries) {
      assert.equal(entry.sha256, sha256(CONTENTS[entry.path]), entry.path);
      assert.equal(entry.bytes, byteLength(CONTENTS[entry.path]), entry.path);
    }
  });

  it('counts lines, with a last line lacking its newline', async () => {
    const summary = await scanDirectory(root);

    for (const entry of summary.entries) {
      assert.equal(entry.lines, EXPECTED_LINES[entry.path], entry.path);
    }
    const totalLines = Object.values(EXPECTED_LINES).reduce((a, b) => a + b);
    assert.equal(summary.lines, totalLines);
  });

  it('sums files and bytes and names the largest file', async () => {
    const summary = await scanDirectory(root);

    const totalBytes = Object.values(CONTENTS)
      .map(byteLength)
      .reduce((a, b) => a + b);
    assert.equal(summary.root, root);
    assert.equal(summary.files, Object.keys(CONTENTS).length);
    assert.equal(summary.bytes, totalBytes);
    assert.deepEqual(summary.largest, {
      path: 'big.log',
      bytes: BIG_FILE_BYTES,
    });
    assert.deepEqual(summary.errors, []);
    assert.ok(summary.durationMs >= 0);
  });

  it('skips symlinks and never follows them out of the root', async () => {
    const summary = await scanDirectory(root);

    assert.equal(summary.skipped.symlinks, 3);
    const paths = summary.entries.map((entry) => entry.path);
    assert.ok(paths.every((path) => !path.includes('link')));
    assert.ok(paths.every((path) => !path.includes('secret')));
  });

  it('reports progress by bytes, ending at the total', async () => {
    const calls: [number, number, string][] = [];
    const summary = await scanDirectory(root, {
      onProgress: (done, total, file) => calls.push([done, total, file]),
    });

    assert.ok(calls.length > Object.keys(CONTENTS).length);
    const [lastDone, lastTotal] = calls[calls.length - 1];
    assert.equal(lastDone, summary.bytes);
    assert.equal(lastTotal, summary.bytes);
    for (let i = 1; i < calls.length; i += 1) {
      assert.ok(calls[i][0] >= calls[i - 1][0], 'bytes done never go back');
      assert.ok(calls[i][0] <= calls[i][1], 'done never passes the total');
    }
    const files = new Set(calls.map(([, , file]) => file));
    assert.ok(files.has('big.log') && files.has('empty.txt'));
  });

  it('stops with an AbortError when its signal aborts', async () => {
    const controller = new AbortController();
    let callsAfterAbort = 0;
    const scanning = scanDirectory(root, {
      signal: controller.signal,
      onProgress: () => {
        if (controller.signal.aborted) callsAfterAbort += 1;
        controller.abort();
      },
    });

    await assert.rejects(scanning, (error: unknown) => {
      assert.ok(error instanceof ScanAbortedError);
      assert.equal(error.name, 'AbortError');
      assert.equal(error.code, ScanErrorCode.Aborted);
      return true;
    });
    assert.equal(callsAfterAbort, 0);
  });

  it('does not start when the signal is already aborted', async () => {
    const signal = AbortSignal.abort();
    await assert.rejects(scanDirectory(root, { signal }), ScanAbortedError);
  });

  it('fails with a code for a missing root or a file', async () => {
    await assert.rejects(
      scanDirectory(join(root, 'does-not-exist')),
      (error: unknown) =>
        error instanceof ScanError && error.code === ScanErrorCode.NotFound,
    );
    await assert.rejects(
      scanDirectory(join(root, 'a.txt')),
      (error: unknown) =>
        error instanceof ScanError &&
        error.code === ScanErrorCode.NotADirectory,
    );
  });

  it('collects files that cannot be read, and goes on', async () => {
    // Deleting files once the walk has listed them makes them unreadable
    // for anyone, root included (chmod 000 does not stop root).
    const folder = await mkdtemp(join(tmpdir(), 'scan-vanishing-'));
    const names = ['1.txt', '2.txt', '3.txt'];
    for (const name of names) await writeFile(join(folder, name), 'data\n');

    let firstFile: string | undefined;
    const calls: [number, number][] = [];
    const summary = await scanDirectory(folder, {
      onProgress: (done, total, file) => {
        calls.push([done, total]);
        firstFile ??= file;
        for (const name of names) {
          if (name !== firstFile) rmSync(join(folder, name), { force: true });
        }
      },
    }).finally(() => rm(folder, { recursive: true, force: true }));

    assert.deepEqual(
      summary.entries.map((entry) => entry.path),
      [firstFile],
    );
    assert.equal(summary.errors.length, 2);
    assert.ok(summary.errors.every((error) => error.code === 'ENOENT'));
    assert.deepEqual(calls[calls.length - 1], [5, 5]);
  });

  it('stops past maxFiles instead of walking without end', async () => {
    await assert.rejects(
      scanDirectory(root, { maxFiles: 2 }),
      (error: unknown) =>
        error instanceof ScanError && error.code === ScanErrorCode.TooManyFiles,
    );
  });
});
