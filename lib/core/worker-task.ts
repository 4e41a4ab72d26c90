import {
  describeError,
  encodeMessage,
  toWireProgress,
  WireStatus,
  type WireMessage,
} from './codec.js';
import { AetherFailureCode, type FailureData } from './errors.js';
import { getTaskTopic, TaskAction, type TaskAddress } from './topics.js';

const UNENCODABLE =
  'The handler returned a value JSON.stringify cannot encode ' +
  '(a cycle or a BigInt). Return plain data.';

/** Where a worker sends a task's status and completion. */
export interface ReplyTarget {
  /** Topic of status messages: the caller's inbox or the tid topic. */
  statusTopic: string;
  completeTopic: string;
}

/** What a task needs from the worker that runs it. */
export interface TaskOwner {
  readonly host: string;
  readonly clientId: string;
  /** Calls `task.sendReceipt()` after the receipt delay. */
  scheduleReceipt(task: WorkerTask): void;
  /**
   * Sends a status or completion, at the replies' QoS; an urgent one (a
   * task's first reply) before others held back by flow control.
   */
  sendReply(topic: string, payload: string, isUrgent?: boolean): void;
  /** Checks the size; returns a failure to report instead, or null. */
  findSizeProblem(topic: string, payload: string): FailureData | null;
  /** Something a handler did wrong that its task survives. */
  warnHandlerMisuse(message: string): void;
  /** `wasQueued`: it ended before it ran (cancelled, or shut down). */
  onTaskEnd(task: WorkerTask, wasQueued: boolean): void;
}

export const enum TaskPhase {
  Queued = 'queued',
  Running = 'running',
  Done = 'done',
}

/**
 * One task at one worker: its replies, in order, and its end. Everything a
 * handler does after the end (a late status, a second result) is ignored,
 * so a caller never sees two completions for one task.
 */
export class WorkerTask {
  phase = TaskPhase.Queued;
  /** The last value the handler produced: the output so far. */
  output?: unknown;
  /** The topic and payload of the completion, once sent. */
  completion?: [string, string];

  // Made only when a handler reads its signal or the task is aborted:
  // most tasks are neither, and one controller per task shows in profiles.
  private controller?: AbortController;
  private abortListener?: () => void;
  private hasReplied = false;
  private lastStatus?: string;

  constructor(
    private readonly owner: TaskOwner,
    readonly tid: string,
    readonly address: TaskAddress,
    readonly request: WireMessage,
    readonly group: string,
    readonly isEvent: boolean,
    private readonly target: ReplyTarget,
  ) {}

  get input(): unknown {
    return this.request.data;
  }

  get workerId(): string {
    return this.owner.clientId;
  }

  get signal(): AbortSignal {
    this.controller ??= new AbortController();
    return this.controller.signal;
  }

  /** Calls `listener` once if the task is aborted (one listener). */
  whenAborted(listener: () => void): void {
    this.abortListener = listener;
  }

  /** The receipt waits a little: a fast task needs only its completion. */
  scheduleReceipt(): void {
    if (this.isEvent) {
      return;
    }

    this.owner.scheduleReceipt(this);
  }

  /** Streams progress (clamped to 0-100, integer) and partial data. */
  status(progress: number, data: unknown = {}): void {
    if (this.phase === TaskPhase.Done || this.isEvent) {
      return;
    }

    this.sendReceipt();
    this.sendStatus(toWireProgress(progress), data);
  }

  succeed(output: unknown): void {
    this.complete(true, output === undefined ? {} : output);
  }

  fail(error: unknown): void {
    this.complete(false, error);
  }

  /** Ends the task as failed with a transport reason, and aborts it. */
  abort(code: AetherFailureCode, message: string): void {
    if (this.phase === TaskPhase.Done) {
      return;
    }

    this.controller ??= new AbortController();
    this.controller.abort(new Error(message));
    this.abortListener?.();
    this.fail({ code, message });
  }

  /** Tells a caller that asks again (after a reconnect) where it stands. */
  resendStatus(): void {
    if (this.phase === TaskPhase.Done || this.isEvent) {
      return;
    }

    if (this.lastStatus) {
      this.owner.sendReply(this.target.statusTopic, this.lastStatus);
      return;
    }

    // Nothing reached the caller yet: send the receipt as a first reply,
    // ahead of anything held back by flow control.
    this.hasReplied = false;
    this.sendReceipt();
  }

  /** Tells the caller a worker took the task, unless it knows already. */
  sendReceipt(): void {
    if (this.hasReplied || this.phase === TaskPhase.Done) {
      return;
    }

    this.sendStatus(0, {});
  }

  private sendStatus(progress: number, data: unknown): void {
    const payload = this.encodeStatus(progress, data);
    this.lastStatus = payload;
    this.sendReply(this.target.statusTopic, payload);
  }

  /**
   * A task's first reply (its receipt, or a completion that comes before
   * one) stops its caller's receipt timer: it goes before the replies of
   * other tasks held back by flow control.
   */
  private sendReply(topic: string, payload: string): void {
    const isFirst = !this.hasReplied;
    this.hasReplied = true;
    this.owner.sendReply(topic, payload, isFirst);
  }

  /**
   * A status whose data cannot be encoded, or would be larger than the
   * broker takes, goes out with empty data: the progress still counts.
   * Sent as it is, an oversized packet makes the broker drop this worker's
   * connection, and MQTT.js sends it again after every reconnect.
   */
  private encodeStatus(progress: number, data: unknown): string {
    let problem: string;
    try {
      const fields = { progress, data };
      const payload = this.encode(
        TaskAction.Status,
        WireStatus.Progress,
        fields,
      );
      const tooLarge = this.owner.findSizeProblem(
        this.target.statusTopic,
        payload,
      );
      if (!tooLarge) {
        return payload;
      }

      problem = tooLarge.message;
    } catch (error) {
      problem = describeError(error);
    }

    this.owner.warnHandlerMisuse(
      `Sent a status of task ${this.tid} without its data: ${problem}. ` +
        `Give ctx.status() plain data the broker takes.`,
    );
    const empty = { progress, data: {} };
    return this.encode(TaskAction.Status, WireStatus.Progress, empty);
  }

  private complete(success: boolean, data: unknown): void {
    if (this.phase === TaskPhase.Done) {
      return;
    }

    const wasQueued = this.phase === TaskPhase.Queued;
    this.phase = TaskPhase.Done;
    if (!this.isEvent) {
      this.sendCompletion(success, data);
    }

    this.owner.onTaskEnd(this, wasQueued);
  }

  private sendCompletion(success: boolean, data: unknown): void {
    const status = success ? WireStatus.Succeed : WireStatus.Failed;
    const topic = this.target.completeTopic;
    let payload = this.encodeCompletion(status, data);

    const problem = payload
      ? this.owner.findSizeProblem(topic, payload)
      : { code: AetherFailureCode.HandlerFailed, message: UNENCODABLE };
    if (problem || !payload) {
      payload = this.encodeCompletion(WireStatus.Failed, problem) as string;
    }

    this.completion = [topic, payload];
    this.sendReply(topic, payload);
  }

  private encodeCompletion(status: WireStatus, data: unknown) {
    try {
      return this.encode(TaskAction.Complete, status, { progress: 100, data });
    } catch {
      return undefined;
    }
  }

  private encode(
    action: TaskAction,
    status: WireStatus,
    fields: { progress: number; data: unknown },
  ): string {
    return encodeMessage({
      host: this.owner.host,
      client: this.owner.clientId,
      action,
      status,
      progress: fields.progress,
      data: fields.data,
      group: this.group,
    });
  }
}

/** Nest callers name their inbox; Python callers read the tid topics. */
export function getReplyTarget(
  address: TaskAddress,
  tid: string,
  inbox: string | undefined,
): ReplyTarget {
  if (inbox) {
    return { statusTopic: inbox, completeTopic: inbox };
  }

  return {
    statusTopic: getTaskTopic(address, tid, TaskAction.Status),
    completeTopic: getTaskTopic(address, tid, TaskAction.Complete),
  };
}
