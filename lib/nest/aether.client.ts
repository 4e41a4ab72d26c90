import { Logger } from '@nestjs/common';
import {
  ClientProxy,
  type ReadPacket,
  type WritePacket,
} from '@nestjs/microservices';
import type { MqttClient } from 'mqtt';
import { Observable } from 'rxjs';

import { TaskCaller } from '../core/caller.js';
import { NotConnectedError } from '../core/errors.js';
import type { AetherClientOptions } from '../core/options.js';
import type { TaskPattern } from '../core/pattern.js';
import type { AetherEvent } from '../core/pending-call.js';
import { unwrapRecord } from './aether.record.js';
import { StatusEmitter, type AetherStatusEvents } from './status-emitter.js';

/** `'job/task'` or `{ job, task, context? }`. */
export type AetherPattern = string | TaskPattern;

/**
 * The caller side as a Nest ClientProxy. `send()` returns the task's
 * events: status and progress, then one completion; `emit()` hands a task
 * to event handlers without waiting.
 */
// Status stays `string`, as in Nest's own clients: a narrower type makes
// `customClass: AetherClient` fail to type-check in ClientsModule.register.
export class AetherClient extends ClientProxy<AetherStatusEvents, string> {
  private readonly logger = new Logger(AetherClient.name);
  private readonly caller: TaskCaller;
  private readonly events = new StatusEmitter();

  constructor(options: AetherClientOptions = {}) {
    super();
    this.caller = new TaskCaller(options, this.logger, (status) => {
      this._status$.next(status);
      this.events.emit(status);
    });
  }

  /** This client's MQTT client id: its inbox is named after it. */
  get clientId(): string {
    return this.caller.clientId;
  }

  /** Tasks sent and not yet ended. */
  get inFlight(): number {
    return this.caller.inFlight;
  }

  /**
   * Nest's send() waits for connect() before it publishes, through a
   * promise and two operators per call, and its wait is bounded only by
   * connectTimeout. Here the caller connects on its first call itself,
   * within that call's timeout, and close() ends the wait: the same
   * packet, dispatch hook and events, without the cost.
   */
  override send<TResult = AetherEvent, TInput = unknown>(
    pattern: AetherPattern,
    data: TInput,
  ): Observable<TResult> {
    // Nest's send() answers these with InvalidMessageException: keep it.
    if (pattern == null || data == null) {
      return super.send<TResult, TInput>(pattern, data);
    }

    return new Observable<TResult>((observer) => {
      const callback = this.createObserver(observer);
      return this.publish(this.createPacket(pattern, data), callback);
    });
  }

  // Overridden only to type the pattern as an AetherPattern.
  override emit<TResult = void, TInput = unknown>(
    pattern: AetherPattern,
    data: TInput,
  ): Observable<TResult> {
    return super.emit<TResult, TInput>(pattern, data);
  }

  /** Connects once; Nest calls it before every send() and emit(). */
  async connect(): Promise<MqttClient> {
    await this.caller.connect();
    return this.unwrap();
  }

  protected publish(
    packet: ReadPacket,
    callback: (packet: WritePacket) => void,
  ): () => void {
    try {
      const { input, options } = unwrapRecord(packet.data);
      const address = this.caller.resolveAddress(packet.pattern);
      return this.caller.call(address, input, options, {
        next: (event) => callback({ response: event }),
        error: (err) => callback({ err }),
        complete: () => callback({ isDisposed: true }),
      });
    } catch (err) {
      callback({ err });
      return () => {};
    }
  }

  protected async dispatchEvent<T = void>(packet: ReadPacket): Promise<T> {
    const { input } = unwrapRecord(packet.data);
    const address = this.caller.resolveAddress(packet.pattern);
    await this.caller.emit(address, input);
    return undefined as T;
  }

  override on<K extends keyof AetherStatusEvents>(
    event: K,
    callback: AetherStatusEvents[K],
  ): void {
    this.events.on(event, callback);
  }

  unwrap<T = MqttClient>(): T {
    const client = this.caller.connection.unwrap();
    if (!client) {
      throw new NotConnectedError(
        'AetherClient.unwrap()',
        'call it after connect()',
      );
    }

    return client as T;
  }

  /** Ends tasks in flight with AETHER_CONNECTION_CLOSED; safe twice. */
  async close(): Promise<void> {
    await this.caller.close();
  }
}
