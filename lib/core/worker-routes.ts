import { SUBACK_FAILURE, type MqttConnection } from './connection.js';
import { InvalidOptionsError, NotAuthorizedError } from './errors.js';
import type { AetherLogger } from './logger.js';
import type { GroupMode } from './options.js';
import { getAddressKey } from './pattern.js';
import {
  getSharedFilter,
  getTaskFilter,
  TaskAction,
  type TaskAddress,
} from './topics.js';
import type { WorkerTask } from './worker-task.js';

/** One handler the worker serves. */
export interface WorkerRoute {
  address: TaskAddress;
  group: string;
  isEvent: boolean;
  perform(task: WorkerTask): void;
}

const SHARED_SUBSCRIPTIONS_NOT_SUPPORTED = 0x9e;

/**
 * The worker's routes, each with the group mode the broker allowed it:
 * `$share` where the broker distributes, the plain filter in claim mode.
 */
export class RouteTable {
  private readonly routes = new Map<string, WorkerRoute>();
  private readonly modes = new Map<string, GroupMode>();

  constructor(
    private readonly requestedMode: GroupMode,
    private readonly logger: AetherLogger,
  ) {}

  add(route: WorkerRoute): void {
    const key = getAddressKey(route.address);
    if (this.routes.has(key)) {
      this.logger.warn(`Two handlers serve ${key}; the last one wins.`);
    }

    this.routes.set(key, route);
  }

  get(address: TaskAddress): WorkerRoute | undefined {
    return this.routes.get(getAddressKey(address));
  }

  isClaimed(address: TaskAddress): boolean {
    return this.modes.get(getAddressKey(address)) === 'claim';
  }

  values(): IterableIterator<WorkerRoute> {
    return this.routes.values();
  }

  /** The filters subscribed, to unsubscribe on shutdown. */
  getFilters(): string[] {
    return [...this.routes.entries()].map(([key, route]) =>
      this.getFilter(route, this.modes.get(key) ?? 'shared'),
    );
  }

  async subscribe(connection: MqttConnection, qos: 0 | 1): Promise<void> {
    for (const [key, route] of this.routes) {
      const mode = this.chooseMode(connection);
      const filter = this.getFilter(route, mode);
      const [code] = await connection.subscribe([filter], qos);
      const settled = await this.confirmMode(
        connection,
        route,
        mode,
        code,
        qos,
      );
      this.modes.set(key, settled);
    }

    this.logRoutes();
  }

  private chooseMode(connection: MqttConnection): GroupMode {
    if (this.requestedMode !== 'auto') {
      return this.requestedMode;
    }

    return connection.sharedSubscriptionAvailable ? 'shared' : 'claim';
  }

  /**
   * A broker that refuses `$share` (SUBACK 0x9E) gets claim mode in
   * `auto`; asked for `shared`, the worker cannot serve there at all.
   */
  private async confirmMode(
    connection: MqttConnection,
    route: WorkerRoute,
    mode: GroupMode,
    code: number,
    qos: 0 | 1,
  ): Promise<GroupMode> {
    const hasNoShare = code === SHARED_SUBSCRIPTIONS_NOT_SUPPORTED;
    if (hasNoShare && this.requestedMode === 'auto') {
      this.logger.warn(
        `The broker has no shared subscriptions; ` +
          `${getAddressKey(route.address)} uses claim mode.`,
      );
      const plain = this.getFilter(route, 'claim');
      await connection.subscribeAll([plain], qos);
      return 'claim';
    }

    if (hasNoShare) {
      throw new InvalidOptionsError(
        'groupMode',
        `"shared", but the broker has no shared subscriptions ` +
          `(SUBACK 0x9E); set it to "auto" or "claim"`,
      );
    }

    if (code >= SUBACK_FAILURE) {
      throw new NotAuthorizedError('subscribe', this.getFilter(route, mode));
    }

    return mode;
  }

  private getFilter(route: WorkerRoute, mode: GroupMode): string {
    const filter = getTaskFilter(route.address, TaskAction.Perform);
    return mode === 'claim' ? filter : getSharedFilter(route.group, filter);
  }

  private logRoutes(): void {
    for (const [key, route] of this.routes) {
      const kind = route.isEvent ? 'event' : 'task';
      this.logger.log(
        `Serving ${kind} ${key} in group ${route.group} ` +
          `(${this.modes.get(key)} mode)`,
      );
    }
  }
}
