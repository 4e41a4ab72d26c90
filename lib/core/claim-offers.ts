import { encodeMessage, InboxAction, WireStatus } from './codec.js';
import { RecentMap } from './recent-map.js';
import type { WorkerTask } from './worker-task.js';

/** What the offers need from their worker. */
export interface OfferingWorker {
  readonly host: string;
  readonly clientId: string;
  /** Tasks running and queued here. */
  readonly load: number;
  readonly isClosing: boolean;
  send(topic: string, payload: string): void;
}

const PENDING_OFFERS = 1024;

/**
 * Claim mode, for brokers without shared subscriptions: every member hears
 * every task, each member offers to take it on the caller's inbox,
 * stating its load (a full member too), and the caller assigns it to one
 * offer of each group (see ClaimAssigner). Offers not taken are forgotten
 * oldest first.
 */
export class ClaimOffers {
  private readonly offers = new RecentMap<WorkerTask>(PENDING_OFFERS);

  constructor(private readonly worker: OfferingWorker) {}

  /**
   * Offers at once, with this worker's load: a full worker offers too, so
   * that the caller need not wait for its silence, and picks it only when
   * every member is as busy (the task then waits in this worker's queue).
   */
  offer(task: WorkerTask, inbox: string): void {
    if (this.worker.isClosing) {
      return;
    }

    this.offers.set(task.tid, task);
    const offer = encodeMessage({
      host: this.worker.host,
      client: this.worker.clientId,
      action: InboxAction.Offer,
      status: WireStatus.Available,
      progress: 0,
      data: { load: this.worker.load },
      group: task.group,
    });
    this.worker.send(inbox, offer);
  }

  /**
   * The task its caller assigned to this worker, once. An assign from any
   * other client (its payload names the sender) takes nothing.
   */
  take(tid: string, callerId: string): WorkerTask | undefined {
    const task = this.offers.get(tid);
    if (task?.request.client !== callerId) {
      return undefined;
    }

    this.offers.delete(tid);
    return task;
  }
}
