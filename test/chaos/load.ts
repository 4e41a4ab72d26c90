import {
  AetherClient,
  AetherError,
  AetherRecord,
  type AetherEvent,
} from '../../lib/index.js';
import { CHAOS_PATTERN, type ChaosInput } from './shared.js';

export interface LoadOptions {
  /** Tasks kept in flight over all callers. */
  inFlight: number;
  /** The client's own timeout, for tasks sent without a record. */
  clientTimeout: number;
  /** How late past its timeout a task may end and still count as ended. */
  marginMs: number;
}

/** One send, followed from its start to its one end. */
export interface TrackedSend {
  key: string;
  caller: number;
  /** The transport's task id, once an event has named it. */
  tid?: string;
  startedAt: number;
  /** The task's own bound: its timeout, from the record or the client. */
  timeout: number;
  retries: number;
  shouldFail: boolean;
  endedAt?: number;
  /** `success` or `failed` completion, or `error` (the observable's). */
  outcome?: 'success' | 'failed' | 'error';
  /** The error's code, or the code in a failed completion's data. */
  code?: string;
  isTyped: boolean;
  completions: number;
  eventsAfterEnd: number;
  /** A completion whose data names another task. */
  isCrossed: boolean;
}

/**
 * Keeps `inFlight` tasks going over the callers, half of them with an
 * AetherRecord asking for retries and their own timeout, until stopped.
 */
export class LoadDriver {
  readonly sends: TrackedSend[] = [];
  readonly live = new Set<TrackedSend>();
  private counter = 0;
  private running = 0;
  private isStopped = false;
  private whenIdle?: () => void;

  constructor(
    private readonly callers: AetherClient[],
    private readonly options: LoadOptions,
  ) {}

  get inFlight(): number {
    return this.running;
  }

  start(): void {
    for (let slot = 0; slot < this.options.inFlight; slot += 1) {
      this.sendNext();
    }
  }

  /** Stops sending; resolves when every send has ended or its bound. */
  async stop(): Promise<void> {
    this.isStopped = true;
    if (this.running === 0) {
      return;
    }

    let latest = Date.now();
    for (const send of this.live) {
      latest = Math.max(latest, this.deadline(send));
    }

    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, latest - Date.now() + 50);
      this.whenIdle = () => (clearTimeout(timer), resolve());
    });
  }

  deadline(send: TrackedSend): number {
    return send.startedAt + send.timeout + this.options.marginMs;
  }

  private sendNext(): void {
    if (this.isStopped) {
      return;
    }

    this.counter += 1;
    const send = this.createSend(this.counter);
    const input: ChaosInput = {
      key: send.key,
      workMs: 2 + Math.floor(Math.random() * 40),
      shouldFail: send.shouldFail,
    };
    const data =
      send.retries > 0
        ? new AetherRecord(input, {
            retries: send.retries,
            timeout: send.timeout,
          })
        : input;

    this.sends.push(send);
    this.live.add(send);
    this.running += 1;
    const caller = this.callers[send.caller];
    caller.send<AetherEvent>(CHAOS_PATTERN, data).subscribe({
      next: (event) => this.handleEvent(send, event),
      error: (error: unknown) => this.handleError(send, error),
      complete: () => this.handleEnd(send),
    });
  }

  private createSend(counter: number): TrackedSend {
    const hasRecord = counter % 2 === 0;
    return {
      key: `k${counter}`,
      caller: counter % this.callers.length,
      startedAt: Date.now(),
      timeout: hasRecord
        ? 2500 + Math.floor(Math.random() * 2500)
        : this.options.clientTimeout,
      retries: hasRecord ? 2 : 0,
      shouldFail: counter % 10 === 3,
      isTyped: true,
      completions: 0,
      eventsAfterEnd: 0,
      isCrossed: false,
    };
  }

  private handleEvent(send: TrackedSend, event: AetherEvent): void {
    send.tid ??= event.tid;
    if (send.endedAt !== undefined || send.completions > 0) {
      send.eventsAfterEnd += 1;
    }

    if (event.type !== 'complete') {
      return;
    }

    send.completions += 1;
    send.outcome = event.success ? 'success' : 'failed';
    const data = event.data as { key?: unknown; code?: unknown } | null;
    if (event.success && data?.key !== send.key) {
      send.isCrossed = true;
    }

    if (!event.success && typeof data?.code === 'string') {
      send.code = data.code;
    }
  }

  private handleError(send: TrackedSend, error: unknown): void {
    send.outcome = 'error';
    send.isTyped = error instanceof AetherError;
    send.code =
      error instanceof AetherError ? error.code : describeUntyped(error);
    this.handleEnd(send);
  }

  private handleEnd(send: TrackedSend): void {
    if (send.endedAt !== undefined) {
      send.eventsAfterEnd += 1;
      return;
    }

    send.endedAt = Date.now();
    this.live.delete(send);
    this.running -= 1;
    if (this.running === 0 && this.isStopped) {
      this.whenIdle?.();
    }

    // A new task starts on the next turn, not inside this call's stack.
    setImmediate(() => this.sendNext());
  }
}

function describeUntyped(error: unknown): string {
  if (error instanceof Error) {
    return `untyped ${error.name}: ${error.message}`;
  }

  return `untyped ${JSON.stringify(error)}`;
}
