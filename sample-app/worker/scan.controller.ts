import { Controller, Logger } from '@nestjs/common';
import {
  Ctx,
  MessagePattern,
  Payload,
  RpcException,
} from '@nestjs/microservices';

import type { AetherContext } from '../../lib/index.js';
import { scanDirectory } from '../scanner/directory-scanner.js';
import { ScanError, ScanErrorCode } from '../scanner/scan-errors.js';
import {
  SCAN_PATTERN,
  type ScanInput,
  type ScanProgress,
  type ScanResult,
} from '../shared/scan.contract.js';
import { ScanInputPipe } from './scan-input.pipe.js';
import { StatusThrottle } from './status-throttle.js';

// At most ten status messages a second, plus the last one.
const STATUS_INTERVAL_MS = 100;

@Controller()
export class ScanController {
  private readonly logger = new Logger(ScanController.name);

  @MessagePattern(SCAN_PATTERN)
  async scan(
    @Payload(ScanInputPipe) input: ScanInput,
    @Ctx() ctx: AetherContext,
  ): Promise<ScanResult> {
    this.logger.log(`Task ${ctx.tid}: scanning ${input.path}`);
    const throttle = new StatusThrottle(STATUS_INTERVAL_MS);
    let progress: ScanProgress = { file: '', bytesDone: 0, bytesTotal: 0 };

    const summary = await scanDirectory(input.path, {
      signal: ctx.signal,
      onProgress: (bytesDone, bytesTotal, file) => {
        progress = { file, bytesDone, bytesTotal };
        if (throttle.tryPass()) void ctx.status(toPercent(progress), progress);
      },
    }).catch((error: unknown) => {
      throw this.toRpcException(ctx, error);
    });

    await ctx.status(100, progress);
    this.logger.log(
      `Task ${ctx.tid}: ${summary.files} files, ${summary.bytes} bytes ` +
        `in ${summary.durationMs} ms`,
    );
    return { ...summary, workerId: ctx.workerId };
  }

  private toRpcException(ctx: AetherContext, error: unknown): RpcException {
    // The transport has ended the task already and sends nothing more; an
    // RpcException only keeps Nest from logging the cancel as a crash.
    if (ctx.signal.aborted) {
      this.logger.log(`Task ${ctx.tid}: stopped, as it was cancelled`);
      return new RpcException({
        code: ScanErrorCode.Aborted,
        message: 'The scan was cancelled by its caller or a worker shutdown.',
      });
    }

    if (error instanceof ScanError) {
      this.logger.warn(`Task ${ctx.tid}: ${error.message}`);
      return new RpcException({ code: error.code, message: error.message });
    }

    this.logger.error(`Task ${ctx.tid} failed`, error);
    return new RpcException({
      code: ScanErrorCode.Failed,
      message: 'The scan failed on the worker; its log has the details.',
    });
  }
}

function toPercent({ bytesDone, bytesTotal }: ScanProgress): number {
  return bytesTotal === 0 ? 100 : (100 * bytesDone) / bytesTotal;
}
