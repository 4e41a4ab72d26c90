import { hostname } from 'node:os';
import type { IPublishPacket } from 'mqtt';

import { checkServerOptions } from './check-options.js';
import {
  decodeMessage,
  encodeMessage,
  InboxAction,
  WireStatus,
  type WireMessage,
} from './codec.js';
import { MqttConnection, type ConnectionStatus } from './connection.js';
import {
  AetherFailureCode,
  describeFailure,
  type FailureData,
} from './errors.js';
import { FixedDelayQueue } from './fixed-delay-queue.js';
import { ThrottledWarning, type AetherLogger } from './logger.js';
import { WILL_CONFIRM_MS } from './lost-worker-watch.js';
import {
  DEFAULT_CONCURRENCY,
  DEFAULT_CONTEXT,
  DEFAULT_DEDUP_WINDOW,
  DEFAULT_GROUP_MODE,
  DEFAULT_QOS,
  DEFAULT_RECEIPT_DELAY_MS,
  DEFAULT_REPLY_QOS,
  DEFAULT_SHUTDOWN_GRACE_MS,
  DEFAULT_UNION,
  type AetherServerOptions,
} from './options.js';
import { RecentMap } from './recent-map.js';
import {
  assertTopicLevel,
  getInboxFilter,
  getInboxPrefix,
  getOfflineFilter,
  getOfflinePrefix,
  getOfflineTopic,
  getOnlineTopic,
  getTaskTopic,
  isInboxTopic,
  parseTaskTopic,
  readLastLevelUnder,
  TaskAction,
} from './topics.js';
import { ClaimOffers, type OfferingWorker } from './claim-offers.js';
import { RouteTable, type WorkerRoute } from './worker-routes.js';
import {
  getReplyTarget,
  TaskPhase,
  WorkerTask,
  type TaskOwner,
} from './worker-task.js';

// Results kept for callers that ask again after a reconnect: the last
// ones, since a broker restart loses at most those in flight.
const RECENT_COMPLETIONS = 2048;
const RESEND_AGAIN_MS = 1000;
// A will is acted on after this long, once it is clear that the broker
// itself did not go away (it sends every will when it shuts down).

/**
 * The worker side, framework-free: subscribes each route as its group
 * wants, takes each task once, queues past its concurrency, answers where
 * the caller listens, and stops without leaving a caller waiting.
 */
export class TaskWorker implements TaskOwner, OfferingWorker {
  readonly host = hostname();
  readonly union: string;
  readonly defaultContext: string;
  readonly connection: MqttConnection;

  private readonly inboxPrefix: string;
  private readonly offlinePrefix: string;
  private readonly routes: RouteTable;
  private readonly active = new Map<string, WorkerTask>();
  private readonly queue: WorkerTask[] = [];
  private readonly seen: RecentMap<true>;
  private readonly completions = new RecentMap<[string, string]>(
    RECENT_COMPLETIONS,
  );
  private readonly offers = new ClaimOffers(this);
  private readonly receipts: FixedDelayQueue<WorkerTask>;
  // One throttle per kind of problem, so that a flood of one kind does
  // not hide the first report of another.
  private readonly malformed: ThrottledWarning;
  private readonly droppedTasks: ThrottledWarning;
  private readonly handlerMisuse: ThrottledWarning;
  private running = 0;
  isClosing = false;
  private drained?: () => void;
  private closing?: Promise<void>;

  constructor(
    private readonly options: AetherServerOptions,
    private readonly logger: AetherLogger,
    onStatus: (status: ConnectionStatus) => void,
  ) {
    checkServerOptions(options);
    this.union = assertTopicLevel(options.union ?? DEFAULT_UNION, 'union');
    this.defaultContext = assertTopicLevel(
      options.context ?? DEFAULT_CONTEXT,
      'context',
    );
    this.receipts = new FixedDelayQueue(
      options.receiptDelay ?? DEFAULT_RECEIPT_DELAY_MS,
      (task) => task.sendReceipt(),
    );
    this.seen = new RecentMap(options.dedupWindow ?? DEFAULT_DEDUP_WINDOW);
    this.inboxPrefix = getInboxPrefix(this.union);
    this.offlinePrefix = getOfflinePrefix(this.union);
    this.malformed = new ThrottledWarning(logger);
    this.droppedTasks = new ThrottledWarning(logger);
    this.handlerMisuse = new ThrottledWarning(logger);
    this.routes = new RouteTable(
      options.groupMode ?? DEFAULT_GROUP_MODE,
      logger,
    );
    this.connection = new MqttConnection(options, 'worker', logger, {
      onMessage: (topic, payload, packet) =>
        this.handleMessage(topic, payload, packet),
      onStatus,
      onConnect: (isFirst) => {
        this.announce();
        if (!isFirst) {
          this.resendStatuses();
          setTimeout(() => this.resendStatuses(), RESEND_AGAIN_MS);
        }
      },
    });
  }

  get clientId(): string {
    return this.connection.clientId;
  }

  get concurrency(): number {
    return this.options.concurrency ?? DEFAULT_CONCURRENCY;
  }

  get load(): number {
    return this.running + this.queue.length;
  }

  addRoute(route: WorkerRoute): void {
    this.routes.add(route);
  }

  async listen(): Promise<void> {
    const offline = this.createPresence(
      InboxAction.Offline,
      WireStatus.Disconnected,
    );
    await this.connection.connect({
      topic: getOfflineTopic(this.union, this.clientId),
      payload: offline,
    });

    await this.subscribeRoutes();
  }

  private async subscribeRoutes(): Promise<void> {
    const qos = this.options.qos ?? DEFAULT_QOS;
    // The wills of callers too: a task whose caller vanished is aborted.
    const inbox = getInboxFilter(this.union, this.clientId);
    const wills = getOfflineFilter(this.union);
    await this.connection.subscribeAll([inbox, wills], qos);
    await this.routes.subscribe(this.connection, qos);
  }

  /** AetherMagic announces every connect, and each handler as idle. */
  private announce(): void {
    const online = this.createPresence(
      InboxAction.Online,
      WireStatus.Connected,
    );
    this.send(getOnlineTopic(this.union, this.host, this.clientId), online);

    const idle = this.createPresence(TaskAction.Idle, WireStatus.Online);
    for (const route of this.routes.values()) {
      this.send(
        getTaskTopic(route.address, this.clientId, TaskAction.Idle),
        idle,
      );
    }
  }

  /**
   * Replies sent while the broker was away may be lost with it: tell each
   * caller where its running task stands (the connect hook calls this at
   * once and again a little later, for a caller that reconnects after this
   * worker). Callers that know their worker ask too (LostWorkerWatch).
   */
  private resendStatuses(): void {
    for (const task of this.active.values()) {
      task.resendStatus();
    }
  }

  private createPresence(action: string, status: WireStatus): string {
    return encodeMessage({
      host: this.host,
      client: this.clientId,
      action,
      status,
      progress: 100,
      data: {},
    });
  }

  private handleMessage(
    topic: string,
    payload: Buffer,
    packet: IPublishPacket,
  ): void {
    const decoded = decodeMessage(payload);
    if (!decoded.ok) {
      this.rejectMalformed(topic, payload, decoded.reason);
      return;
    }

    const message = decoded.message;
    const responseTopic = packet.properties?.responseTopic;
    if (responseTopic && !message.reply) {
      message.reply = responseTopic;
    }

    const tid = readLastLevelUnder(topic, this.inboxPrefix);
    if (tid !== undefined) {
      this.handleInbox(tid, message);
      return;
    }

    const offlineClient = readLastLevelUnder(topic, this.offlinePrefix);
    if (offlineClient !== undefined) {
      this.handleOffline(offlineClient);
      return;
    }

    this.handlePerform(topic, message);
  }

  private handlePerform(topic: string, message: WireMessage): void {
    const parsed = parseTaskTopic(topic);
    const route = parsed && this.routes.get(parsed);
    if (!parsed || !route || message.action !== TaskAction.Perform) {
      this.droppedTasks.warn(
        `Dropped a message on ${topic}: not a perform of a served task ` +
          `(action "${message.action}").`,
      );
      return;
    }

    if (this.answerRepeatedTask(parsed.tid, message) || this.isClosing) {
      return;
    }

    if (message.reply && !isInboxTopic(message.reply, this.union, parsed.tid)) {
      this.droppedTasks.warn(
        `Dropped task ${parsed.tid}: its reply topic is not this task's ` +
          `inbox topic (${this.union}/inbox/<client id>/${parsed.tid}).`,
      );
      return;
    }

    const task = this.createTask(route, parsed.tid, message);
    if (this.routes.isClaimed(parsed)) {
      this.offer(task);
      return;
    }

    this.accept(task);
  }

  private createTask(
    route: WorkerRoute,
    tid: string,
    message: WireMessage,
  ): WorkerTask {
    const isEvent = route.isEvent || message.event === true;
    const target = getReplyTarget(route.address, tid, message.reply);
    return new WorkerTask(
      this,
      tid,
      route.address,
      message,
      route.group,
      isEvent,
      target,
    );
  }

  /** A tid seen before: answer where it stands, never run it again. */
  private answerRepeatedTask(tid: string, request: WireMessage): boolean {
    // Running counts even past the dedup window: one run per tid at once.
    const running = this.active.get(tid);
    if (running) {
      running.resendStatus();
      return true;
    }

    if (!this.seen.has(tid)) {
      return false;
    }

    const completion = this.completions.get(tid);
    if (completion) {
      this.sendReply(completion[0], completion[1]);
    } else if (request.reply && isInboxTopic(request.reply, this.union, tid)) {
      this.replyResultLost(tid, request.reply);
    }

    return true;
  }

  /**
   * A caller asks again (its completion was lost with a connection) for
   * a task done so long ago that its result is gone: say so, rather than
   * leave the caller to its timeout.
   */
  private replyResultLost(tid: string, inbox: string): void {
    const message =
      `Task ${tid} ran here, but its result is gone: more than ` +
      `${RECENT_COMPLETIONS} tasks completed since. Send it again if it ` +
      `may run twice.`;
    const payload = encodeMessage({
      host: this.host,
      client: this.clientId,
      action: TaskAction.Complete,
      status: WireStatus.Failed,
      progress: 100,
      data: { code: AetherFailureCode.ResultLost, message },
    });
    this.sendReply(inbox, payload);
  }

  private offer(task: WorkerTask): void {
    const inbox = task.request.reply;
    if (inbox) {
      this.offers.offer(task, inbox);
      return;
    }

    this.droppedTasks.warn(
      `Dropped task ${task.tid}: in claim mode a task can only be taken ` +
        `through an offer, and its caller (a Python peer?) takes none. ` +
        `Use a broker with shared subscriptions for such callers.`,
    );
  }

  private handleInbox(tid: string, message: WireMessage): void {
    switch (message.action) {
      case InboxAction.Assign:
        this.takeOffer(tid, message.client);
        return;
      case InboxAction.Cancel:
        this.cancel(tid, message.client);
        return;
      case TaskAction.Perform:
        this.answerRepeatedTask(tid, message);
        return;
      default:
        this.malformed.warn(
          `Dropped an inbox message with action "${message.action}".`,
        );
    }
  }

  private takeOffer(tid: string, callerId: string): void {
    const task = this.offers.take(tid, callerId);
    if (task && !this.isClosing && !this.seen.has(tid)) {
      this.accept(task);
    }
  }

  private accept(task: WorkerTask): void {
    this.seen.set(task.tid, true);
    this.active.set(task.tid, task);
    task.scheduleReceipt();

    if (this.running < this.concurrency) {
      this.start(task);
      return;
    }

    this.queue.push(task);
  }

  private start(task: WorkerTask): void {
    this.running += 1;
    task.phase = TaskPhase.Running;
    const route = this.routes.get(task.address);

    try {
      route?.perform(task);
    } catch (error) {
      task.fail(describeFailure(error, AetherFailureCode.HandlerFailed));
    }
  }

  /** Only a will heard while this worker stayed connected is news. */
  private handleOffline(callerId: string): void {
    const epoch = this.connection.epoch;
    setTimeout(() => {
      if (epoch === this.connection.epoch && !this.isClosing) {
        this.abortTasksOf(callerId);
      }
    }, WILL_CONFIRM_MS);
  }

  private abortTasksOf(callerId: string): void {
    const orphans = [...this.active.values()].filter(
      (task) => task.request.client === callerId,
    );
    if (orphans.length === 0) {
      return;
    }

    this.logger.log(
      `Caller ${callerId} went offline: aborting its ${orphans.length} ` +
        `task(s)`,
    );
    for (const task of orphans) {
      this.logger.debug?.(`Aborting ${task.tid}: its caller went offline`);
      task.abort(AetherFailureCode.Cancelled, 'The caller went offline.');
    }
  }

  /** Only the task's own caller may cancel it, as its payload names it. */
  private cancel(tid: string, callerId: string): void {
    const task = this.active.get(tid);
    if (!task || task.request.client !== callerId) {
      return;
    }

    this.logger.debug?.(`Task ${tid} cancelled by its caller`);
    task.abort(AetherFailureCode.Cancelled, 'The caller cancelled the task.');
  }

  onTaskEnd(task: WorkerTask, wasQueued: boolean): void {
    this.active.delete(task.tid);
    if (task.completion) {
      this.completions.set(task.tid, task.completion);
    }

    // Only a cancel or a shutdown ends a queued task: rare enough to scan.
    if (wasQueued) {
      this.queue.splice(this.queue.indexOf(task), 1);
      return;
    }

    this.running -= 1;
    const next = this.queue.shift();
    if (next) {
      this.start(next);
    }

    if (this.running === 0) {
      this.drained?.();
    }
  }

  scheduleReceipt(task: WorkerTask): void {
    this.receipts.add(task);
  }

  sendReply(topic: string, payload: string, isUrgent = false): void {
    this.publish(
      topic,
      payload,
      this.options.replyQos ?? DEFAULT_REPLY_QOS,
      isUrgent,
    );
  }

  send(topic: string, payload: string): void {
    this.publish(topic, payload, this.options.qos ?? DEFAULT_QOS);
  }

  private publish(
    topic: string,
    payload: string,
    qos: 0 | 1,
    isUrgent = false,
  ): void {
    this.connection
      .publish(topic, payload, { qos }, isUrgent)
      .catch((error: unknown) =>
        this.logger.error(`Could not publish on ${topic}`, error),
      );
  }

  warnHandlerMisuse(message: string): void {
    this.handlerMisuse.warn(message);
  }

  findSizeProblem(topic: string, payload: string): FailureData | null {
    try {
      this.connection.assertFits(topic, payload);
      return null;
    } catch (error) {
      return describeFailure(error, AetherFailureCode.HandlerFailed);
    }
  }

  private rejectMalformed(topic: string, payload: Buffer, why: string): void {
    this.malformed.warn(
      `Dropped a malformed message on ${topic} (${payload.length} bytes): ` +
        `${why}. Senders must follow the AetherMagic payload format.`,
    );
  }

  /**
   * Stops taking tasks, fails the queued ones at once, gives the running
   * ones `shutdownGrace` ms, then fails what is left. Safe to call twice:
   * a second call resolves when the first has finished.
   */
  close(): Promise<void> {
    this.closing ??= this.shutDown();
    return this.closing;
  }

  private async shutDown(): Promise<void> {
    this.isClosing = true;
    const graceMs = this.options.shutdownGrace ?? DEFAULT_SHUTDOWN_GRACE_MS;
    this.logger.log(
      `${this.clientId} shutting down: ${this.queue.length} queued ` +
        `task(s) fail now, ${this.running} running get ${graceMs} ms`,
    );
    await this.stopTaking();
    for (const task of [...this.queue]) {
      task.abort(AetherFailureCode.Shutdown, 'The worker is shutting down.');
    }

    await this.waitForRunning(graceMs);
    const cutOff = [...this.active.values()];
    if (cutOff.length > 0) {
      this.logger.warn(
        `${cutOff.length} task(s) still ran after ${graceMs} ms: ` +
          `failed with AETHER_SHUTDOWN`,
      );
    }

    for (const task of cutOff) {
      task.abort(
        AetherFailureCode.Shutdown,
        'The worker shut down before the task ended.',
      );
    }

    this.receipts.clear();
    await this.connection.close();
  }

  private async stopTaking(): Promise<void> {
    if (this.connection.isConnected) {
      await this.connection.unsubscribe(this.routes.getFilters());
    }
  }

  private waitForRunning(graceMs: number): Promise<void> {
    if (this.running === 0) {
      return Promise.resolve();
    }

    return new Promise((resolve) => {
      const timer = setTimeout(resolve, graceMs);
      this.drained = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
}
