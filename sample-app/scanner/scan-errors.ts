/** Stable codes of the scanner's errors, as callers and HTTP clients see them. */
export enum ScanErrorCode {
  InvalidInput = 'SCAN_INVALID_INPUT',
  NotFound = 'SCAN_NOT_FOUND',
  NotADirectory = 'SCAN_NOT_A_DIRECTORY',
  TooManyFiles = 'SCAN_TOO_MANY_FILES',
  TooDeep = 'SCAN_TOO_DEEP',
  Aborted = 'SCAN_ABORTED',
  /** Anything else: a bug, or the system failing; see the worker's log. */
  Failed = 'SCAN_FAILED',
}

/** A scan that cannot start or cannot go on; `code` says which. */
export class ScanError extends Error {
  constructor(
    readonly code: ScanErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

/**
 * The scan stopped because its signal was aborted. Named `AbortError`, as
 * fetch and streams name theirs, so that callers can test for any abort
 * the same way; the signal's reason is kept as the cause.
 */
export class ScanAbortedError extends ScanError {
  constructor(root: string, reason: unknown) {
    super(
      ScanErrorCode.Aborted,
      `The scan of ${root} was aborted before it finished. ` +
        `Nothing needs to be done unless the abort was unexpected.`,
      { cause: reason },
    );
    this.name = 'AbortError';
  }
}

/** A file or folder that could not be read; the scan goes on without it. */
export interface ScanFileError {
  /** Relative to the root, with `/` separators. */
  path: string;
  /** The system error code (`EACCES`, `ENOENT`...) or `UNKNOWN`. */
  code: string;
  message: string;
}

export function toScanFileError(path: string, error: unknown): ScanFileError {
  const code = (error as { code?: unknown } | null)?.code;
  return {
    path,
    code: typeof code === 'string' ? code : 'UNKNOWN',
    message: error instanceof Error ? error.message : String(error),
  };
}
