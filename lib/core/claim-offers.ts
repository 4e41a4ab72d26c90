import { encodeMessage, InboxAction, WireStatus } from './codec.js';
import { RecentMap } from './recent-map.js';
import type { WorkerTask } from './worker-task.js';

/** What the offers need from their worker. */
export interface OfferingWorker {
  readonly host: string;
  readonly clientId: string;
  readonly concurrency: number;
  /** Tasks running and queued here. */
  readonly load: number;
  readonly isClosing: boolean;
  send(topic: string, payload: string): void;
}

const PENDING_OFFERS = 1024;
// In ms: the longest a busy member holds back its offer, and the spread
// of the random part that breaks ties.
const OFFER_DELAY_CAP = 20;
const OFFER_JITTER_MS = 8;

/**
 * Claim mode, for brokers without shared subscriptions: every member hears
 * every task, each member with room offers to take it on the caller's
 * inbox, and the caller assigns it to the first offer of each group.
 */
export class ClaimOffers {
  private readonly offers = new RecentMap<WorkerTask>(PENDING_OFFERS);
  private offering = 0;

  constructor(private readonly worker: OfferingWorker) {}

  offer(task: WorkerTask, inbox: string): void {
    const load = this.worker.load + this.offering;
    if (load >= this.worker.concurrency) {
      return;
    }

    // The first offer wins, so a busier member waits longer. Offers fired
    // in one tick reach the broker in one batch, and timers round down to
    // whole ms: the jitter keeps the member that subscribed first from
    // winning every tie.
    const jitter = Math.floor(Math.random() * OFFER_JITTER_MS);
    const delay = Math.min(load, OFFER_DELAY_CAP) + jitter;
    this.offering += 1;
    setTimeout(() => {
      this.offering -= 1;
      this.sendOffer(task, inbox);
    }, delay);
  }

  /** The task the caller assigned to this worker, once. */
  take(tid: string): WorkerTask | undefined {
    const task = this.offers.get(tid);
    this.offers.delete(tid);
    return task;
  }

  private sendOffer(task: WorkerTask, inbox: string): void {
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
      data: {},
      group: task.group,
    });
    this.worker.send(inbox, offer);
  }
}
