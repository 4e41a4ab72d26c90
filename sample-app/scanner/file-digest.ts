import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';

const NEWLINE = 0x0a;
// Larger than fs's 64 KiB default: fewer callbacks on big files, still a
// small, fixed amount of memory per file.
const CHUNK_BYTES = 256 * 1024;

/** What one file holds, read once from start to end. */
export interface FileDigest {
  bytes: number;
  lines: number;
  sha256: string;
}

/**
 * Hashes and counts a file as it streams by, so that memory stays at one
 * chunk whatever the file's size. `onChunk` gets the size of each chunk
 * read; the signal stops the read between two chunks.
 */
export async function digestFile(
  path: string,
  onChunk: (bytes: number) => void,
  signal?: AbortSignal,
): Promise<FileDigest> {
  const hash = createHash('sha256');
  const stream = createReadStream(path, { highWaterMark: CHUNK_BYTES });
  let bytes = 0;
  let newlines = 0;
  let lastByte = NEWLINE;

  // Leaving the loop by a throw destroys the stream, closing the file.
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    signal?.throwIfAborted();
    hash.update(chunk);
    newlines += countNewlines(chunk);
    bytes += chunk.length;
    lastByte = chunk[chunk.length - 1] ?? lastByte;
    onChunk(chunk.length);
  }

  // A last line without its newline is still a line, as `wc -l` does not
  // count it but editors and people do.
  const hasOpenLastLine = bytes > 0 && lastByte !== NEWLINE;
  const lines = newlines + (hasOpenLastLine ? 1 : 0);
  return { bytes, lines, sha256: hash.digest('hex') };
}

function countNewlines(chunk: Buffer): number {
  let count = 0;
  let index = chunk.indexOf(NEWLINE);
  while (index !== -1) {
    count += 1;
    index = chunk.indexOf(NEWLINE, index + 1);
  }

  return count;
}
