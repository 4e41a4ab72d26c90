import { HttpException, HttpStatus, type MessageEvent } from '@nestjs/common';

import {
  AetherError,
  AetherErrorCode,
  AetherFailureCode,
} from '../../lib/index.js';
import { ScanErrorCode } from '../scanner/scan-errors.js';

/** What every error answer of the gateway carries. */
export interface ScanErrorBody {
  statusCode: number;
  code: string;
  message: string;
}

export const GATEWAY_ERROR_CODE = 'GATEWAY_ERROR';

// Codes a worker puts in a failed completion, and the transport's own.
// Unknown codes are the workers' business: 502, a bad answer upstream.
const STATUS_BY_CODE: Record<string, HttpStatus> = {
  [ScanErrorCode.InvalidInput]: HttpStatus.BAD_REQUEST,
  [ScanErrorCode.NotFound]: HttpStatus.NOT_FOUND,
  [ScanErrorCode.NotADirectory]: HttpStatus.BAD_REQUEST,
  [ScanErrorCode.TooManyFiles]: HttpStatus.UNPROCESSABLE_ENTITY,
  [ScanErrorCode.TooDeep]: HttpStatus.UNPROCESSABLE_ENTITY,
  [AetherFailureCode.Cancelled]: HttpStatus.SERVICE_UNAVAILABLE,
  [AetherFailureCode.Shutdown]: HttpStatus.SERVICE_UNAVAILABLE,
  [AetherErrorCode.NoWorker]: HttpStatus.SERVICE_UNAVAILABLE,
  [AetherErrorCode.ConnectionClosed]: HttpStatus.SERVICE_UNAVAILABLE,
  [AetherErrorCode.ConnectionRefused]: HttpStatus.SERVICE_UNAVAILABLE,
  [AetherErrorCode.Timeout]: HttpStatus.GATEWAY_TIMEOUT,
  [AetherErrorCode.PayloadTooLarge]: HttpStatus.PAYLOAD_TOO_LARGE,
};

/** A failed completion's data, `{ code, message }`, as an HTTP error. */
export function describeFailedScan(data: unknown): ScanErrorBody {
  const fields = (data ?? {}) as { code?: unknown; message?: unknown };
  const code =
    typeof fields.code === 'string' ? fields.code : ScanErrorCode.Failed;
  const message =
    typeof fields.message === 'string'
      ? fields.message
      : 'The worker failed the scan without saying why.';
  return toBody(code, message, HttpStatus.BAD_GATEWAY);
}

/** An error of the transport (or of the gateway itself) as an HTTP error. */
export function describeCallError(error: unknown): ScanErrorBody {
  if (error instanceof AetherError) {
    return toBody(error.code, error.message, HttpStatus.BAD_GATEWAY);
  }

  if (error instanceof HttpException) {
    const message = error.message;
    return toBody(GATEWAY_ERROR_CODE, message, error.getStatus());
  }

  return toBody(
    GATEWAY_ERROR_CODE,
    'The gateway failed to run the scan; its log has the details.',
    HttpStatus.INTERNAL_SERVER_ERROR,
  );
}

export function toHttpException(body: ScanErrorBody): HttpException {
  return new HttpException(body, body.statusCode);
}

/** On an SSE stream the headers are out already: the error is an event. */
export function toErrorEvent(body: ScanErrorBody): MessageEvent {
  return { type: 'error', data: body };
}

function toBody(
  code: string,
  message: string,
  fallbackStatus: HttpStatus,
): ScanErrorBody {
  const statusCode = STATUS_BY_CODE[code] ?? fallbackStatus;
  return { statusCode, code, message };
}
