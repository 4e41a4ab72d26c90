import { EventEmitter } from 'node:events';

import type { ConnectionStatus } from '../core/connection.js';

/** `on(event, callback)` of the client and the server: one per status. */
export type AetherStatusEvents = Record<`${ConnectionStatus}`, () => void>;

/** Turns status changes into events, as Nest's transports offer them. */
export class StatusEmitter {
  private readonly emitter = new EventEmitter();

  on(event: string, callback: () => void): void {
    this.emitter.on(event, callback);
  }

  emit(status: ConnectionStatus): void {
    this.emitter.emit(status);
  }
}
