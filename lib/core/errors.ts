/**
 * Every error this transport raises, each with a stable code. The table in
 * docs/errors.md lists them with what to do; keep the two in step.
 */

export enum AetherErrorCode {
  InvalidName = 'AETHER_INVALID_NAME',
  InvalidPattern = 'AETHER_INVALID_PATTERN',
  InvalidInput = 'AETHER_INVALID_INPUT',
  InvalidOptions = 'AETHER_INVALID_OPTIONS',
  Timeout = 'AETHER_TIMEOUT',
  NoWorker = 'AETHER_NO_WORKER',
  WorkerLost = 'AETHER_WORKER_LOST',
  NotAuthorized = 'AETHER_NOT_AUTHORIZED',
  PayloadTooLarge = 'AETHER_PAYLOAD_TOO_LARGE',
  ConnectionClosed = 'AETHER_CONNECTION_CLOSED',
  ConnectionRefused = 'AETHER_CONNECTION_REFUSED',
  PublishFailed = 'AETHER_PUBLISH_FAILED',
  NotConnected = 'AETHER_NOT_CONNECTED',
}

/** Codes a worker puts in the data of a `failed` completion. */
export enum AetherFailureCode {
  Cancelled = 'AETHER_CANCELLED',
  Shutdown = 'AETHER_SHUTDOWN',
  /** Asked again for a task it completed whose result it has dropped. */
  ResultLost = 'AETHER_RESULT_LOST',
  HandlerFailed = 'AETHER_HANDLER_FAILED',
}

export class AetherError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

export class InvalidNameError extends AetherError {
  constructor(what: string, name: string, why: string) {
    super(
      AetherErrorCode.InvalidName,
      `The ${what} "${name}" cannot be used because ${why}. ` +
        `Each name is one MQTT topic level: use letters, digits, "-", "_" ` +
        `or ".".`,
    );
  }
}

export class InvalidPatternError extends AetherError {
  constructor(pattern: unknown) {
    super(
      AetherErrorCode.InvalidPattern,
      `The pattern ${describe(pattern)} is not a task. Write it as ` +
        `'job/task' or as { job, task, context? }.`,
    );
  }
}

export class InvalidInputError extends AetherError {
  constructor(why: string) {
    super(
      AetherErrorCode.InvalidInput,
      `The task input cannot be sent: ${why}. Pass a value that ` +
        `JSON.stringify can encode (no cycles, no BigInt).`,
    );
  }
}

export class InvalidOptionsError extends AetherError {
  constructor(option: string, why: string) {
    super(
      AetherErrorCode.InvalidOptions,
      `The option "${option}" is wrong: ${why}.`,
    );
  }
}

export class TaskTimeoutError extends AetherError {
  constructor(tid: string, timeoutMs: number) {
    super(
      AetherErrorCode.Timeout,
      `Task ${tid} did not complete within ${timeoutMs} ms. Raise the ` +
        `timeout (client option or AetherRecord) if the work is slow, or ` +
        `check the worker's logs.`,
    );
  }
}

export class NoWorkerError extends AetherError {
  constructor(tid: string, why: string) {
    super(
      AetherErrorCode.NoWorker,
      `No worker took task ${tid}: ${why}. Start a worker for this job ` +
        `and task, or ask the call to wait for one ` +
        `(AetherRecord option waitForWorker).`,
    );
  }
}

export class WorkerLostError extends AetherError {
  constructor(tid: string, workerId: string) {
    super(
      AetherErrorCode.WorkerLost,
      `Worker ${workerId} went offline while performing task ${tid}. ` +
        `The task may be retried (AetherRecord option retries) if it is ` +
        `safe to run again.`,
    );
  }
}

export class NotAuthorizedError extends AetherError {
  constructor(what: string, topic: string) {
    super(
      AetherErrorCode.NotAuthorized,
      `The broker refused to let this client ${what} on "${topic}". ` +
        `Grant the right in the broker's ACL (see docs/access-rights.md).`,
    );
  }
}

export class PayloadTooLargeError extends AetherError {
  constructor(bytes: number, limit: number) {
    super(
      AetherErrorCode.PayloadTooLarge,
      `The message is ${bytes} bytes but the broker accepts at most ` +
        `${limit}. Send a reference to the data (a path or URL) instead, ` +
        `or raise the broker's max_packet_size.`,
    );
  }
}

export class ConnectionClosedError extends AetherError {
  /**
   * Without a tid: the connect() that close() cut short. `isLate`: the
   * task was sent after close().
   */
  constructor(tid?: string, isLate = false) {
    super(AetherErrorCode.ConnectionClosed, describeClosed(tid, isLate));
  }
}

function describeClosed(tid: string | undefined, isLate: boolean): string {
  if (tid === undefined) {
    return (
      `The client was closed before the broker answered its connect. ` +
      `Close clients only after connect() has settled.`
    );
  }

  return isLate
    ? `Task ${tid} was sent after its client was closed. Send tasks ` +
        `before close(), or through a new client.`
    : `Task ${tid} was still in flight when its client was closed. ` +
        `Close clients only after their tasks end.`;
}

/** Something that needs the MQTT connection was asked for before it. */
export class NotConnectedError extends AetherError {
  constructor(what: string, whenReady: string) {
    super(
      AetherErrorCode.NotConnected,
      `${what} needs the MQTT connection, which is not open yet: ` +
        `${whenReady}.`,
    );
  }
}

/** What to check after a broker said no to the client id. */
export const CHECK_CLIENT_ID =
  'Check the clientId option: one topic level, not used by another ' +
  'connected client, at most 23 characters for strict MQTT 3.1.1 brokers.';

/** What to check after a broker said no to these credentials. */
export const CHECK_CREDENTIALS =
  'Check the username, password or certificate in the options; this ' +
  'client will not retry a refusal.';

export class ConnectionRefusedError extends AetherError {
  /**
   * A refusal by the broker, or with `nextStep` (what to check instead of
   * the credentials) a connect that no broker answered in time.
   */
  constructor(
    url: string,
    why: string,
    nextStep?: string,
    isRefusal = nextStep === undefined,
  ) {
    super(
      AetherErrorCode.ConnectionRefused,
      isRefusal
        ? `The broker at ${url} refused the connection: ${why}. ` +
            (nextStep ?? CHECK_CREDENTIALS)
        : `Could not connect to a broker at ${url}: ${why}. ${nextStep}`,
    );
  }
}

export class PublishFailedError extends AetherError {
  constructor(tid: string, why: string) {
    super(
      AetherErrorCode.PublishFailed,
      `Task ${tid} could not be sent: ${why}. The client was probably ` +
        `closed meanwhile; send it again from a connected client.`,
    );
  }
}

function describe(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/** What a `failed` completion carries: always a message, a code if known. */
export interface FailureData {
  message: string;
  code?: string;
  [field: string]: unknown;
}

/**
 * Turns whatever a handler threw (or a Nest exception filter produced) into
 * the data of a `failed` completion, keeping the code where one exists.
 */
export function describeFailure(
  error: unknown,
  fallbackCode: string,
): FailureData {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return {
      message: error.message,
      code: typeof code === 'string' ? code : fallbackCode,
    };
  }

  if (typeof error === 'object' && error !== null) {
    const fields = error as Record<string, unknown>;
    const message =
      typeof fields.message === 'string' ? fields.message : describe(error);
    return { ...fields, message };
  }

  return { message: String(error), code: fallbackCode };
}
