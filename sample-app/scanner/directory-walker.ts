import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';

import {
  ScanError,
  ScanErrorCode,
  toScanFileError,
  type ScanFileError,
} from './scan-errors.js';

/** A regular file found under the root, with its size when listed. */
export interface FoundFile {
  absolutePath: string;
  /** Relative to the root, with `/` separators whatever the platform. */
  path: string;
  size: number;
}

/** What the walk found: files to read, and what it left out and why. */
export interface WalkResult {
  files: FoundFile[];
  errors: ScanFileError[];
  skippedSymlinks: number;
  /** Sockets, FIFOs, devices: nothing a scan can read to an end. */
  skippedSpecial: number;
}

export interface WalkLimits {
  maxFiles: number;
  maxDepth: number;
  signal?: AbortSignal;
}

interface PendingFolder {
  absolutePath: string;
  path: string;
  depth: number;
}

/**
 * Lists every regular file under `root`. Entries are looked at with lstat,
 * never stat: a symlink is counted and skipped, never followed, so the walk
 * cannot leave the root or loop, and it ends with the real files.
 */
export async function walkDirectory(
  root: string,
  limits: WalkLimits,
): Promise<WalkResult> {
  const result: WalkResult = {
    files: [],
    errors: [],
    skippedSymlinks: 0,
    skippedSpecial: 0,
  };
  const pending: PendingFolder[] = [{ absolutePath: root, path: '', depth: 0 }];

  for (let folder = pending.pop(); folder; folder = pending.pop()) {
    limits.signal?.throwIfAborted();
    await visitFolder(root, folder, pending, result, limits);
  }

  return result;
}

async function visitFolder(
  root: string,
  folder: PendingFolder,
  pending: PendingFolder[],
  result: WalkResult,
  limits: WalkLimits,
): Promise<void> {
  let names: string[];
  try {
    names = await readdir(folder.absolutePath);
  } catch (error) {
    result.errors.push(toScanFileError(folder.path || '.', error));
    return;
  }

  for (const name of names) {
    const entry = {
      absolutePath: join(folder.absolutePath, name),
      path: folder.path ? `${folder.path}/${name}` : name,
      depth: folder.depth + 1,
    };
    await visitEntry(root, entry, pending, result, limits);
  }
}

async function visitEntry(
  root: string,
  entry: PendingFolder,
  pending: PendingFolder[],
  result: WalkResult,
  limits: WalkLimits,
): Promise<void> {
  let stats;
  try {
    stats = await lstat(entry.absolutePath);
  } catch (error) {
    result.errors.push(toScanFileError(entry.path, error));
    return;
  }

  if (stats.isSymbolicLink()) {
    result.skippedSymlinks += 1;
  } else if (stats.isDirectory()) {
    assertDepth(root, entry, limits.maxDepth);
    pending.push(entry);
  } else if (stats.isFile()) {
    assertFileCount(root, result.files.length, limits.maxFiles);
    const { absolutePath, path } = entry;
    result.files.push({ absolutePath, path, size: stats.size });
  } else {
    result.skippedSpecial += 1;
  }
}

function assertDepth(root: string, entry: PendingFolder, maxDepth: number) {
  if (entry.depth <= maxDepth) {
    return;
  }

  throw new ScanError(
    ScanErrorCode.TooDeep,
    `${root} nests folders deeper than ${maxDepth} levels (at ` +
      `${entry.path}). Scan a subfolder, or raise the maxDepth option.`,
  );
}

function assertFileCount(root: string, count: number, maxFiles: number) {
  if (count < maxFiles) {
    return;
  }

  throw new ScanError(
    ScanErrorCode.TooManyFiles,
    `${root} holds more than ${maxFiles} files. Scan a subfolder, or ` +
      `raise the maxFiles option.`,
  );
}
