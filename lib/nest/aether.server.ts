import { Logger } from '@nestjs/common';
import {
  Server,
  type CustomTransportStrategy,
  type MessageHandler,
  type WritePacket,
} from '@nestjs/microservices';
import type { MqttClient } from 'mqtt';
import { isObservable, Observable, takeUntil } from 'rxjs';

import type { ConnectionStatus } from '../core/connection.js';
import {
  AetherFailureCode,
  describeFailure,
  NotConnectedError,
} from '../core/errors.js';
import type { AetherServerOptions } from '../core/options.js';
import { parsePattern } from '../core/pattern.js';
import { assertTopicLevel, getDefaultGroup } from '../core/topics.js';
import { TaskWorker } from '../core/worker.js';
import type { WorkerTask } from '../core/worker-task.js';
import { AetherContext } from './aether.context.js';
import { StatusEmitter, type AetherStatusEvents } from './status-emitter.js';

/** What `@MessagePattern(pattern, extras)` may carry for this transport. */
export interface AetherHandlerExtras {
  /** The worker group; defaults to AetherMagic's `<union>_<job>_workgroup`. */
  group?: string;
}

/**
 * The worker side as a Nest transport strategy: each `@MessagePattern` and
 * `@EventPattern` handler serves its task in its worker group, through
 * Nest's request pipeline (guards, pipes, interceptors, filters).
 */
export class AetherServer
  extends Server<AetherStatusEvents, ConnectionStatus>
  implements CustomTransportStrategy
{
  protected override readonly logger = new Logger(AetherServer.name);

  private readonly worker: TaskWorker;
  private readonly events = new StatusEmitter();

  constructor(options: AetherServerOptions = {}) {
    super();
    this.worker = new TaskWorker(options, this.logger, (status) => {
      this._status$.next(status);
      this.events.emit(status);
    });
  }

  /** This worker's MQTT client id, as callers see it in receipts. */
  get clientId(): string {
    return this.worker.clientId;
  }

  listen(callback: (error?: unknown) => void): void {
    try {
      this.addRoutes();
    } catch (error) {
      callback(error);
      return;
    }

    this.worker.listen().then(
      () => callback(),
      (error: unknown) => callback(error),
    );
  }

  private addRoutes(): void {
    for (const [pattern, handler] of this.messageHandlers) {
      const address = parsePattern(
        pattern,
        this.worker.union,
        this.worker.defaultContext,
      );
      const extras = (handler.extras ?? {}) as AetherHandlerExtras;
      const group = assertTopicLevel(
        extras.group ?? getDefaultGroup(address.union, address.job),
        'group',
      );
      const isEvent = handler.isEventHandler === true;

      this.worker.addRoute({
        address,
        group,
        isEvent,
        perform: (task) => this.perform(pattern, handler, task),
      });
    }
  }

  private perform(
    pattern: string,
    handler: MessageHandler,
    task: WorkerTask,
  ): void {
    const context = new AetherContext(task);
    if (task.isEvent) {
      this.performEvent(pattern, task, context);
      return;
    }

    const produce = async () => {
      const result = await handler(task.input, context);
      const result$ = this.transformToObservable(result) as Observable<unknown>;
      return isObservable(result) ? stopWhenAborted(result$, task) : result$;
    };

    const handled = this.handleRequest(context, produce, (packet) =>
      this.respond(task, packet),
    ) as unknown;
    Promise.resolve(handled).catch((error: unknown) =>
      task.fail(describeFailure(error, AetherFailureCode.HandlerFailed)),
    );
  }

  private performEvent(
    pattern: string,
    task: WorkerTask,
    context: AetherContext,
  ): void {
    const packet = { pattern, data: task.input };
    this.handleEvent(pattern, packet, context).then(
      () => task.succeed(undefined),
      (error: unknown) =>
        task.fail(describeFailure(error, AetherFailureCode.HandlerFailed)),
    );
  }

  /**
   * Nest sends one packet per value, then `isDisposed` merged into the
   * last; the task completes with the last value, as AetherMagic has one
   * output per task.
   */
  private respond(task: WorkerTask, packet: WritePacket): void {
    if (packet.err !== undefined) {
      task.fail(describeFailure(packet.err, AetherFailureCode.HandlerFailed));
      return;
    }

    if ('response' in packet) {
      task.output = packet.response;
    }

    if (packet.isDisposed) {
      task.succeed(task.output);
    }
  }

  on<K extends keyof AetherStatusEvents>(
    event: K,
    callback: AetherStatusEvents[K],
  ): void {
    this.events.on(event, callback);
  }

  unwrap<T = MqttClient>(): T {
    const client = this.worker.connection.unwrap();
    if (!client) {
      throw new NotConnectedError(
        'AetherServer.unwrap()',
        'call it after listen()',
      );
    }

    return client as T;
  }

  /**
   * Stops taking tasks, fails queued ones at once, gives running ones
   * `shutdownGrace` ms to finish, then fails the rest with
   * AETHER_SHUTDOWN. Safe to call twice.
   */
  async close(): Promise<void> {
    await this.worker.close();
  }
}

/**
 * A cancel unsubscribes a handler's stream, so a handler that returns an
 * Observable stops without reading its signal. A value or a promise needs
 * nothing: the task's end already ignores what comes after it.
 */
function stopWhenAborted(
  result$: Observable<unknown>,
  task: WorkerTask,
): Observable<unknown> {
  const aborted$ = new Observable<void>((subscriber) =>
    task.whenAborted(() => subscriber.next()),
  );
  return result$.pipe(takeUntil(aborted$));
}
