import type { MqttConnection } from './connection.js';
import type { PendingCall } from './pending-call.js';

/** What the watch needs from its caller. */
export interface WatchedCaller {
  readonly connection: MqttConnection;
  readonly isClosed: boolean;
  pendingCalls(): Iterable<PendingCall>;
  callsOf(workerId: string): Iterable<PendingCall>;
  /** Asks the worker where the call stands (a resend to its inbox). */
  askWorker(call: PendingCall): void;
  /** Ends or retries the call: its worker is gone. */
  failWorkerLost(call: PendingCall, workerId: string): void;
}

// How long after a will (or a reconnect) the caller looks again, and how
// long a worker has to answer when asked after a broker restart.
/** How long a will waits to be confirmed (shared with the worker). */
export const WILL_CONFIRM_MS = 500;
const RESUME_GRACE_MS = 2000;
// After the caller's own reconnect: when to ask silent workers again.
const ASK_AGAIN_MS = [1000, 3000];

/**
 * Turns workers' wills into lost calls. A will says a client vanished, but
 * Mosquitto also sends every client's will when it shuts down. So a will
 * counts, after WILL_CONFIRM_MS, only if the caller stayed connected. If
 * it did not, the broker went away: once back, the caller asks the worker
 * where each task stands, and only a worker that stays silent after that
 * is lost.
 */
export class LostWorkerWatch {
  constructor(private readonly caller: WatchedCaller) {}

  /**
   * After the caller's own reconnect, each call whose worker is known asks
   * it where the task stands: replies may have been lost with the broker.
   * A call with no worker yet is not sent to the task topic again: MQTT.js
   * re-sends an unacknowledged perform itself, a second copy would go to
   * a second worker, and a copy the broker lost ends in AETHER_NO_WORKER
   * (retried when the call allows) at its receipt timeout, which starts
   * anew so that a worker that has the task can say so once it is back.
   */
  askAfterOwnReconnect(): void {
    const reconnectedAt = Date.now();
    for (const call of this.caller.pendingCalls()) {
      if (call.workerId) {
        this.caller.askWorker(call);
      } else {
        call.restartReceiptTimer();
      }
    }

    // The worker may not have subscribed its inbox again yet, and on MQTT
    // 3.1.1 nothing says so: ask the silent ones again a little later.
    for (const delayMs of ASK_AGAIN_MS) {
      setTimeout(() => this.askSilentSince(reconnectedAt), delayMs);
    }
  }

  private askSilentSince(since: number): void {
    if (this.caller.isClosed) {
      return;
    }

    for (const call of this.caller.pendingCalls()) {
      if (call.workerId && call.lastHeardAt < since) {
        this.caller.askWorker(call);
      }
    }
  }

  handleWill(workerId: string): void {
    const willAt = Date.now();
    const epoch = this.caller.connection.epoch;
    setTimeout(() => {
      if (epoch === this.caller.connection.epoch) {
        this.loseSilentCalls(workerId, willAt);
      } else {
        this.askAfterReconnect(workerId, willAt);
      }
    }, WILL_CONFIRM_MS);
  }

  private askAfterReconnect(workerId: string, willAt: number): void {
    setTimeout(() => {
      const hasSilentCalls = this.getSilentCalls(workerId, willAt).length > 0;
      if (this.caller.isClosed || !hasSilentCalls) {
        return;
      }

      if (!this.caller.connection.isConnected) {
        this.askAfterReconnect(workerId, willAt);
        return;
      }

      for (const call of this.getSilentCalls(workerId, willAt)) {
        this.caller.askWorker(call);
      }

      const check = () => this.loseSilentCalls(workerId, willAt);
      setTimeout(check, RESUME_GRACE_MS);
    }, WILL_CONFIRM_MS);
  }

  private getSilentCalls(workerId: string, willAt: number): PendingCall[] {
    return [...this.caller.callsOf(workerId)].filter(
      (call) => call.lastHeardAt < willAt,
    );
  }

  private loseSilentCalls(workerId: string, willAt: number): void {
    for (const call of this.getSilentCalls(workerId, willAt)) {
      this.caller.failWorkerLost(call, workerId);
    }
  }
}
