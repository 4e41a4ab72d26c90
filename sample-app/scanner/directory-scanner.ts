import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';

import { walkDirectory, type FoundFile } from './directory-walker.js';
import { digestFile } from './file-digest.js';
import {
  ScanAbortedError,
  ScanError,
  ScanErrorCode,
  toScanFileError,
  type ScanFileError,
} from './scan-errors.js';

export interface ScanOptions {
  /**
   * Called as bytes are read: after each chunk, and when a file ends if
   * its size changed since it was listed (the total follows, so that the
   * last call has `bytesDone === bytesTotal`). `file` is relative.
   */
  onProgress?(bytesDone: number, bytesTotal: number, file: string): void;

  /** Stops the scan with a `ScanAbortedError` (named `AbortError`). */
  signal?: AbortSignal;

  /**
   * The most regular files a scan takes on; past it, SCAN_TOO_MANY_FILES.
   * @default 200000
   */
  maxFiles?: number;

  /**
   * The deepest folder nesting below the root; past it, SCAN_TOO_DEEP.
   * @default 256
   */
  maxDepth?: number;
}

/** One file of the summary. */
export interface ScannedFile {
  /** Relative to the root, with `/` separators. */
  path: string;
  bytes: number;
  lines: number;
  /** Lower-case hex. */
  sha256: string;
}

export interface ScanSummary {
  /** The absolute path that was scanned. */
  root: string;
  files: number;
  bytes: number;
  lines: number;
  /** Every file read to its end, sorted by path. */
  entries: ScannedFile[];
  /** The file with the most bytes (the first by path on a tie). */
  largest: { path: string; bytes: number } | null;
  /** Files and folders that could not be read; they count for nothing. */
  errors: ScanFileError[];
  skipped: { symlinks: number; special: number };
  durationMs: number;
}

const DEFAULT_MAX_FILES = 200_000;
const DEFAULT_MAX_DEPTH = 256;

/**
 * Walks `root` (symlinks skipped), then hashes and counts every regular
 * file as a stream, reporting progress by bytes over the total listed.
 */
export async function scanDirectory(
  root: string,
  options: ScanOptions = {},
): Promise<ScanSummary> {
  const startedAt = performance.now();
  const absoluteRoot = resolve(root);
  const { signal } = options;

  try {
    await assertDirectory(absoluteRoot);
    const walk = await walkDirectory(absoluteRoot, {
      maxFiles: options.maxFiles ?? DEFAULT_MAX_FILES,
      maxDepth: options.maxDepth ?? DEFAULT_MAX_DEPTH,
      signal,
    });

    const errors = [...walk.errors];
    const entries = await digestAll(walk.files, errors, options);
    return summarize(absoluteRoot, entries, errors, {
      skipped: { symlinks: walk.skippedSymlinks, special: walk.skippedSpecial },
      durationMs: Math.round(performance.now() - startedAt),
    });
  } catch (error) {
    throw signal?.aborted ? new ScanAbortedError(absoluteRoot, error) : error;
  }
}

async function assertDirectory(root: string): Promise<void> {
  const stats = await stat(root).catch((error: unknown) => {
    throw new ScanError(
      ScanErrorCode.NotFound,
      `${root} cannot be read (${toScanFileError(root, error).code}). ` +
        `Check the path and that this process may read it.`,
      { cause: error },
    );
  });

  if (!stats.isDirectory()) {
    throw new ScanError(
      ScanErrorCode.NotADirectory,
      `${root} is not a directory. Give the path of a folder to scan.`,
    );
  }
}

async function digestAll(
  files: FoundFile[],
  errors: ScanFileError[],
  options: ScanOptions,
): Promise<ScannedFile[]> {
  const { onProgress, signal } = options;
  const entries: ScannedFile[] = [];
  let plannedTotal = files.reduce((sum, file) => sum + file.size, 0);
  let bytesDone = 0;
  const report = (file: string) =>
    onProgress?.(bytesDone, Math.max(plannedTotal, bytesDone), file);

  for (const file of files) {
    signal?.throwIfAborted();
    let bytesRead = 0;
    const onChunk = (bytes: number) => {
      bytesRead += bytes;
      bytesDone += bytes;
      report(file.path);
    };

    try {
      const digest = await digestFile(file.absolutePath, onChunk, signal);
      entries.push({ path: file.path, ...digest });
    } catch (error) {
      if (signal?.aborted) throw error;
      errors.push(toScanFileError(file.path, error));
    }

    // The file grew, shrank or failed since it was listed: the plan
    // follows what was read, so that progress still ends at the total.
    const sizeChange = bytesRead - file.size;
    plannedTotal += sizeChange;
    if (sizeChange !== 0 || bytesRead === 0) report(file.path);
  }

  return entries;
}

function summarize(
  root: string,
  entries: ScannedFile[],
  errors: ScanFileError[],
  extra: Pick<ScanSummary, 'skipped' | 'durationMs'>,
): ScanSummary {
  entries.sort((a, b) => comparePaths(a.path, b.path));
  errors.sort((a, b) => comparePaths(a.path, b.path));

  let largest: ScanSummary['largest'] = null;
  for (const { path, bytes } of entries) {
    if (!largest || bytes > largest.bytes) largest = { path, bytes };
  }

  return {
    root,
    files: entries.length,
    bytes: entries.reduce((sum, entry) => sum + entry.bytes, 0),
    lines: entries.reduce((sum, entry) => sum + entry.lines, 0),
    entries,
    largest,
    errors,
    ...extra,
  };
}

// By code unit, not locale: the same order on every machine.
function comparePaths(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
