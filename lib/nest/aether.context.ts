import { BaseRpcContext } from '@nestjs/microservices';

import type { WorkerTask } from '../core/worker-task.js';

/**
 * What a handler gets with `@Ctx()`: the task's identity, a way to stream
 * progress back to the caller, and the signal of a cancel.
 */
export class AetherContext extends BaseRpcContext<[WorkerTask]> {
  constructor(task: WorkerTask) {
    super([task]);
  }

  private get task(): WorkerTask {
    return this.args[0];
  }

  /** The task id, unique per caller. */
  get tid(): string {
    return this.task.tid;
  }

  get union(): string {
    return this.task.address.union;
  }

  get job(): string {
    return this.task.address.job;
  }

  /** The task name (the AetherMagic `task` level of the pattern). */
  get taskName(): string {
    return this.task.address.task;
  }

  get context(): string {
    return this.task.address.context;
  }

  /** The client id of the caller, as its payload names it. */
  get callerId(): string {
    return this.task.request.client;
  }

  get callerHost(): string {
    return this.task.request.host;
  }

  /** The client id of this worker, as the caller sees it in replies. */
  get workerId(): string {
    return this.task.workerId;
  }

  /** The worker group this handler serves the task for. */
  get group(): string {
    return this.task.group;
  }

  /**
   * Aborted when the caller cancels (it unsubscribed or timed out), when
   * the caller goes offline, or when the worker shuts down past its grace
   * period. Pass it on to fetch, streams and child processes, or check it
   * between steps.
   */
  get signal(): AbortSignal {
    return this.task.signal;
  }

  /**
   * Sends progress (0-100, rounded and clamped) with optional partial data.
   * Returns at once, the status queued for sending; never rejects, and
   * does nothing once the task has ended.
   */
  async status(progress: number, data?: unknown): Promise<void> {
    this.task.status(progress, data);
  }
}
