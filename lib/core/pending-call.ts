import { NoWorkerError, TaskTimeoutError, WorkerLostError } from './errors.js';
import {
  DEFAULT_RECEIPT_TIMEOUT_MS,
  DEFAULT_RETRY_DELAY_MS,
  DEFAULT_TIMEOUT_MS,
  type AetherClientOptions,
} from './options.js';

export interface StatusEvent {
  type: 'status';
  tid: string;
  /** 0 to 100; 0 with empty data is the receipt: a worker took the task. */
  progress: number;
  data: unknown;
}

export interface CompleteEvent {
  type: 'complete';
  tid: string;
  /** True for AetherMagic's `succeed`, false for `failed`. */
  success: boolean;
  /** The output, or on failure the error: `{ message, code? }`. */
  data: unknown;
}

/** What `send()` emits: any number of status events, then one completion. */
export type AetherEvent = StatusEvent | CompleteEvent;

export interface CallObserver {
  next(event: AetherEvent): void;
  error(error: Error): void;
  complete(): void;
}

/** The bounds of one call, resolved from the client and the record. */
export interface CallOptions {
  timeout: number;
  receiptTimeout: number;
  waitForWorker: number;
  retries: number;
  retryDelay: number;
  /** Said after "no receipt": what else may have happened. */
  noReceiptHint: string;
}

// MQTT 3.1.1 has no way to say "not authorised" to a publish.
const SILENT_DROP_HINT =
  '. On MQTT 3.1.1 the broker also drops without a word a task this ' +
  'client may not publish, and one the workers may not read: check both ' +
  'rights in its ACL';

/** The bounds of one call: the record's, else the client's, else defaults. */
export function resolveCallOptions(
  options: AetherClientOptions,
  overrides: Partial<CallOptions>,
  protocolVersion: 4 | 5,
): CallOptions {
  return {
    timeout: overrides.timeout ?? options.timeout ?? DEFAULT_TIMEOUT_MS,
    receiptTimeout: options.receiptTimeout ?? DEFAULT_RECEIPT_TIMEOUT_MS,
    waitForWorker: overrides.waitForWorker ?? options.waitForWorker ?? 0,
    retries: overrides.retries ?? options.retries ?? 0,
    retryDelay: options.retryDelay ?? DEFAULT_RETRY_DELAY_MS,
    noReceiptHint: protocolVersion === 5 ? '' : SILENT_DROP_HINT,
  };
}

/**
 * One task in flight at the caller, with its timers. Two at most run at
 * once: the whole task's timeout, and either the receipt's (until a
 * worker answers) or the resend's (while it waits to send again).
 */
export class PendingCall {
  workerId?: string;
  group?: string;
  isDone = false;
  /** When the worker last answered: a will older than that is stale. */
  lastHeardAt = Date.now();

  private readonly startedAt = Date.now();
  private retriesUsed = 0;
  private readonly taskTimer: NodeJS.Timeout;
  private receiptTimer?: NodeJS.Timeout;
  private resendTimer?: NodeJS.Timeout;

  constructor(
    readonly tid: string,
    readonly topic: string,
    readonly payload: string,
    private readonly options: CallOptions,
    private readonly observer: CallObserver,
    private readonly onExpired: (error: Error) => void,
  ) {
    this.taskTimer = setTimeout(
      () => onExpired(new TaskTimeoutError(tid, options.timeout)),
      options.timeout,
    );
    this.startReceiptTimer();
  }

  /** After a reconnect, a worker gets its full time to answer again. */
  restartReceiptTimer(): void {
    if (!this.isDone && this.workerId === undefined) {
      this.startReceiptTimer();
    }
  }

  private startReceiptTimer(): void {
    clearTimeout(this.receiptTimer);
    this.receiptTimer = setTimeout(() => {
      const why =
        `no receipt within ${this.options.receiptTimeout} ms` +
        this.options.noReceiptHint;
      this.onExpired(new NoWorkerError(this.tid, why));
    }, this.options.receiptTimeout);
  }

  get timeoutMs(): number {
    return this.options.timeout;
  }

  bindWorker(workerId: string, group: string): void {
    this.workerId = workerId;
    this.group = group;
    this.lastHeardAt = Date.now();
    clearTimeout(this.receiptTimer);
  }

  next(event: AetherEvent): void {
    if (!this.isDone) {
      this.observer.next(event);
    }
  }

  /**
   * How long to wait before sending the task again after `error`, or
   * undefined when the call must end with it.
   */
  nextResendDelay(error: Error, waitStepMs: number): number | undefined {
    const waited = Date.now() - this.startedAt;
    const canWait = waited < this.options.waitForWorker;
    if (error instanceof NoWorkerError && canWait) {
      return Math.min(waitStepMs, this.options.waitForWorker - waited);
    }

    const isRetryable =
      error instanceof NoWorkerError || error instanceof WorkerLostError;
    if (!isRetryable || this.retriesUsed >= this.options.retries) {
      return undefined;
    }

    this.retriesUsed += 1;
    return this.options.retryDelay * 2 ** (this.retriesUsed - 1);
  }

  /** Forgets the worker and sends again; the receipt timer starts anew. */
  resendAfter(delayMs: number, send: () => void): void {
    this.workerId = undefined;
    this.group = undefined;
    clearTimeout(this.receiptTimer);
    clearTimeout(this.resendTimer);

    this.resendTimer = setTimeout(() => {
      this.startReceiptTimer();
      send();
    }, delayMs);
  }

  end(error?: Error): void {
    if (this.isDone) {
      return;
    }

    this.isDone = true;
    clearTimeout(this.taskTimer);
    clearTimeout(this.receiptTimer);
    clearTimeout(this.resendTimer);

    if (error) {
      this.observer.error(error);
    } else {
      this.observer.complete();
    }
  }
}
