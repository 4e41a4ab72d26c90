import {
  BadRequestException,
  Body,
  Controller,
  HttpCode,
  HttpStatus,
  Inject,
  Logger,
  Post,
  Query,
  Sse,
  type MessageEvent,
} from '@nestjs/common';
import {
  catchError,
  filter,
  lastValueFrom,
  map,
  of,
  type Observable,
} from 'rxjs';

import type {
  AetherClient,
  AetherEvent,
  CompleteEvent,
} from '../../lib/index.js';
import { ScanErrorCode } from '../scanner/scan-errors.js';
import {
  AETHER_CLIENT,
  SCAN_PATTERN,
  type ScanInput,
  type ScanResult,
} from '../shared/scan.contract.js';
import {
  describeCallError,
  describeFailedScan,
  GATEWAY_ERROR_CODE,
  toErrorEvent,
  toHttpException,
} from './scan-http-errors.js';

/**
 * HTTP in front of the scan workers: `GET /scan?path=` streams a scan as
 * server-sent events, `POST /scan` answers with its summary.
 */
@Controller('scan')
export class ScanController {
  private readonly logger = new Logger(ScanController.name);

  constructor(@Inject(AETHER_CLIENT) private readonly aether: AetherClient) {}

  /**
   * One `status` event per progress message, then one `complete` event.
   * A client that disconnects unsubscribes, which cancels the task.
   */
  @Sse()
  stream(@Query('path') path: unknown): Observable<MessageEvent> {
    const input = toScanInput(path);
    this.logger.log(`SSE scan of ${input.path}`);

    return this.sendScan(input).pipe(
      map(toMessageEvent),
      catchError((error: unknown) => of(toErrorEvent(this.describe(error)))),
    );
  }

  @Post()
  @HttpCode(HttpStatus.OK)
  async scan(@Body() body: unknown): Promise<ScanResult> {
    const input = toScanInput((body as { path?: unknown } | null)?.path);
    this.logger.log(`Scan of ${input.path}`);

    const completion = await lastValueFrom(
      this.sendScan(input).pipe(filter(isCompleteEvent)),
    ).catch((error: unknown) => {
      throw toHttpException(this.describe(error));
    });

    if (!completion.success) {
      throw toHttpException(describeFailedScan(completion.data));
    }

    return completion.data as ScanResult;
  }

  private sendScan(input: ScanInput): Observable<AetherEvent> {
    return this.aether.send<AetherEvent, ScanInput>(SCAN_PATTERN, input);
  }

  private describe(error: unknown) {
    const body = describeCallError(error);
    if (body.code === GATEWAY_ERROR_CODE) {
      this.logger.error('Scan call failed in the gateway', error);
    } else {
      this.logger.warn(`Scan call failed: ${body.code}: ${body.message}`);
    }

    return body;
  }
}

// Checked here, not only by the worker, to answer 400 before any task.
function toScanInput(path: unknown): ScanInput {
  if (typeof path === 'string' && path.trim() !== '') {
    return { path };
  }

  throw new BadRequestException({
    statusCode: HttpStatus.BAD_REQUEST,
    code: ScanErrorCode.InvalidInput,
    message: 'Give the folder to scan as "path", e.g. /scan?path=/srv/data.',
  });
}

function toMessageEvent(event: AetherEvent): MessageEvent {
  if (event.type === 'status') {
    const { tid, progress, data } = event;
    return { type: 'status', data: { tid, progress, data } };
  }

  const { tid, success, data } = event;
  return { type: 'complete', data: { tid, success, data } };
}

function isCompleteEvent(event: AetherEvent): event is CompleteEvent {
  return event.type === 'complete';
}
