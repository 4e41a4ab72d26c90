import { Injectable, type PipeTransform } from '@nestjs/common';
import { RpcException } from '@nestjs/microservices';
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';

import { ScanErrorCode } from '../scanner/scan-errors.js';
import type { ScanInput } from '../shared/scan.contract.js';

/**
 * Turns a task's input into a `ScanInput` naming an existing folder, or
 * fails the task with a code the caller can act on. Runs before the
 * handler, so a bad path never reaches the scanner.
 */
@Injectable()
export class ScanInputPipe implements PipeTransform<unknown> {
  async transform(input: unknown): Promise<ScanInput> {
    const path = readPath(input);
    const absolutePath = resolve(path);

    const stats = await stat(absolutePath).catch(() => undefined);
    if (!stats) {
      throw reject(
        ScanErrorCode.NotFound,
        `${absolutePath} does not exist or cannot be read by the worker. ` +
          `Give the path of a folder on the worker's machine.`,
      );
    }

    if (!stats.isDirectory()) {
      throw reject(
        ScanErrorCode.NotADirectory,
        `${absolutePath} is a file, not a folder. Give the path of a ` +
          `folder to scan.`,
      );
    }

    return { path: absolutePath };
  }
}

function readPath(input: unknown): string {
  const path = (input as { path?: unknown } | null)?.path;
  if (typeof path === 'string' && path.trim() !== '') {
    return path;
  }

  throw reject(
    ScanErrorCode.InvalidInput,
    'The scan input must be an object with a non-empty "path" string, ' +
      'e.g. { "path": "/srv/data" }.',
  );
}

function reject(code: ScanErrorCode, message: string): RpcException {
  return new RpcException({ code, message });
}
