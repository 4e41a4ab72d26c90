import type { MqttConnection } from './connection.js';
import type { PendingCall } from './pending-call.js';

/** What the watch needs from its caller. */
export interface WatchedCaller {
  readonly connection: MqttConnection;
  readonly isClosed: boolean;
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
