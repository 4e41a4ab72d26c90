import { describeError } from './codec.js';
import { SUBACK_FAILURE, type MqttConnection } from './connection.js';
import type { AetherLogger } from './logger.js';
import { getAddressKey } from './pattern.js';
import { getTaskFilter, TaskAction, type TaskAddress } from './topics.js';

/**
 * Python workers answer on the tid topics, not on the caller's inbox. One
 * subscription per task address, made before its first task is sent,
 * catches all their replies; none is made per task.
 */
export class TaskTopicListener {
  private readonly subscribed = new Map<string, Promise<void>>();
  // Addresses whose SUBACK came: their tasks go out without a promise hop.
  private readonly ready = new Set<string>();

  constructor(
    private readonly connection: MqttConnection,
    private readonly qos: 0 | 1,
    private readonly logger: AetherLogger,
  ) {}

  /** Resolves once subscribed; undefined when that happened already. */
  listen(address: TaskAddress): Promise<void> | undefined {
    const key = getAddressKey(address);
    if (this.ready.has(key)) {
      return undefined;
    }

    let subscribed = this.subscribed.get(key);
    if (!subscribed) {
      const filters = [
        getTaskFilter(address, TaskAction.Status),
        getTaskFilter(address, TaskAction.Complete),
      ];
      subscribed = this.connection.subscribe(filters, this.qos).then(
        (codes) => {
          this.ready.add(key);
          this.warnIfRefused(filters, codes);
        },
        (error: unknown) => this.forget(key, filters, error),
      );
      this.subscribed.set(key, subscribed);
    }

    return subscribed;
  }

  // Sent while the broker was away, a SUBSCRIBE fails: the task still goes
  // out (Nest workers answer on the inbox), and the next task tries again.
  private forget(key: string, filters: string[], error: unknown): void {
    this.subscribed.delete(key);
    this.logger.warn(
      `Could not subscribe to ${filters.join(' and ')} ` +
        `(${describeError(error)}); will try again with the next task.`,
    );
  }

  // Only Python workers answer there, so a refusal is no reason to fail:
  // Nest workers still answer on the inbox.
  private warnIfRefused(filters: string[], codes: number[]): void {
    if (codes.some((code) => code >= SUBACK_FAILURE)) {
      this.logger.warn(
        `The broker refused ${filters.join(' and ')}: replies of Python ` +
          `workers will not reach this client. Grant read on them if ` +
          `Python workers serve this task.`,
      );
    }
  }
}
