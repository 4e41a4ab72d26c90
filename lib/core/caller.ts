import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';

import { checkClientOptions } from './check-options.js';
import {
  decodeMessage,
  describeError,
  encodeMessage,
  InboxAction,
  toWireProgress,
  WireStatus,
  type WireMessage,
} from './codec.js';
import {
  MqttConnection,
  PublishOutcome,
  type ConnectionStatus,
} from './connection.js';
import {
  AetherError,
  ConnectionClosedError,
  InvalidInputError,
  NoWorkerError,
  PublishFailedError,
  TaskTimeoutError,
  WorkerLostError,
} from './errors.js';
import { ThrottledWarning, type AetherLogger } from './logger.js';
import {
  DEFAULT_CONTEXT,
  DEFAULT_QOS,
  DEFAULT_UNION,
  type AetherClientOptions,
} from './options.js';
import { parsePattern } from './pattern.js';
import {
  PendingCall,
  resolveCallOptions,
  type CallObserver,
  type CallOptions,
} from './pending-call.js';
import { ClaimAssigner, type Offer } from './claim-assigner.js';
import { LostWorkerWatch, type WatchedCaller } from './lost-worker-watch.js';
import { RecentMap } from './recent-map.js';
import { TaskTopicListener } from './task-topic-listener.js';
import {
  assertTopicLevel,
  getInboxFilter,
  getInboxPrefix,
  getInboxTopic,
  getOfflineFilter,
  getOfflinePrefix,
  getOfflineTopic,
  getTaskTopic,
  isTopicLevel,
  parseTaskTopic,
  readLastLevelUnder,
  TaskAction,
  type TaskAddress,
} from './topics.js';

const RECENT_EVENTS = 1024;
const RECENT_CANCELS = 1024;
const RECENT_COMPLETIONS = 1024;
const RECENT_PATTERNS = 256;
// How often a call that waits for a worker sends its task again.
const WAIT_RESEND_MS = 500;
// After a reconnect: how soon to ask a worker whose inbox nobody reads
// yet (MQTT 5 says so) again.
const RESUME_RETRY_MS = 250;
const NO_SUBSCRIBER = 'the broker says nobody subscribes to its topic';

/**
 * The caller side, framework-free: sends tasks, follows each to its one
 * completion or a typed error within its bounds, and cancels what its
 * caller no longer wants.
 */
export class TaskCaller implements WatchedCaller {
  readonly host = hostname();
  readonly union: string;
  readonly connection: MqttConnection;

  private readonly defaultContext: string;
  private readonly inboxPrefix: string;
  private readonly offlinePrefix: string;
  private readonly pending = new Map<string, PendingCall>();
  private readonly taskTopics: TaskTopicListener;
  private readonly events = new RecentMap<true>(RECENT_EVENTS);
  private readonly addresses = new RecentMap<TaskAddress>(RECENT_PATTERNS);
  private readonly assigner = new ClaimAssigner(
    (offer) => this.assignOffer(offer),
    (workerId) => this.countInFlight(workerId),
  );
  private readonly cancelled = new RecentMap<true>(RECENT_CANCELS);
  /** Per call that completed, the group of the worker it followed. */
  private readonly completedIn = new RecentMap<string>(RECENT_COMPLETIONS);
  private readonly malformed: ThrottledWarning;
  // Workers remember tids to run none twice, across all their callers: 48
  // random bits keep two callers' tids apart (24 met once in 16 million
  // pairs of callers).
  private readonly tidPrefix = randomBytes(6).toString('hex');
  private tidCounter = 0;
  private readonly watch = new LostWorkerWatch(this);
  private connecting?: Promise<void>;
  /** connect() has succeeded: a send need not wait for it. */
  isOpen = false;
  isClosed = false;

  constructor(
    private readonly options: AetherClientOptions,
    private readonly logger: AetherLogger,
    onStatus: (status: ConnectionStatus) => void,
  ) {
    checkClientOptions(options);
    this.union = assertTopicLevel(options.union ?? DEFAULT_UNION, 'union');
    this.defaultContext = assertTopicLevel(
      options.context ?? DEFAULT_CONTEXT,
      'context',
    );
    this.inboxPrefix = getInboxPrefix(this.union);
    this.offlinePrefix = getOfflinePrefix(this.union);
    this.malformed = new ThrottledWarning(logger);
    this.connection = new MqttConnection(options, 'caller', logger, {
      onMessage: (topic, payload) => this.handleMessage(topic, payload),
      onStatus,
      onConnect: (isFirst) => {
        if (!isFirst) {
          this.watch.askAfterOwnReconnect();
        }
      },
    });
    this.taskTopics = new TaskTopicListener(this.connection, this.qos, logger);
  }

  get clientId(): string {
    return this.connection.clientId;
  }

  get inFlight(): number {
    return this.pending.size;
  }

  /** Connects once; later calls share the same promise. */
  connect(): Promise<void> {
    this.connecting ??= this.openConnection().catch((error: unknown) => {
      this.connecting = undefined;
      throw error;
    });
    return this.connecting;
  }

  private async openConnection(): Promise<void> {
    const will = encodeMessage({
      host: this.host,
      client: this.clientId,
      action: InboxAction.Offline,
      status: WireStatus.Disconnected,
      progress: 100,
      data: {},
    });
    await this.connection.connect({
      topic: getOfflineTopic(this.union, this.clientId),
      payload: will,
    });

    const filters = [
      getInboxFilter(this.union, this.clientId),
      getOfflineFilter(this.union),
    ];
    await this.connection.subscribeAll(filters, this.qos);
    this.isOpen = true;
  }

  private get qos(): 0 | 1 {
    return this.options.qos ?? DEFAULT_QOS;
  }

  /** Nest hands over every pattern as a string, and apps use a few. */
  resolveAddress(pattern: unknown): TaskAddress {
    if (typeof pattern !== 'string') {
      return parsePattern(pattern, this.union, this.defaultContext);
    }

    let address = this.addresses.get(pattern);
    if (!address) {
      address = parsePattern(pattern, this.union, this.defaultContext);
      this.addresses.set(pattern, address);
    }

    return address;
  }

  /**
   * Sends one task and reports its events to `observer`. Returns the
   * teardown: called before the end, it cancels the task at its worker.
   */
  call(
    address: TaskAddress,
    input: unknown,
    overrides: Partial<CallOptions>,
    observer: CallObserver,
  ): () => void {
    const tid = this.createTid();
    if (this.isClosed) {
      // Connecting again would make a client that close() cannot end.
      observer.error(new ConnectionClosedError(tid, true));
      return () => {};
    }

    const payload = this.encodePerform(tid, input, false);
    const topic = getTaskTopic(address, tid, TaskAction.Perform);
    const inbox = getInboxTopic(this.union, this.clientId, tid);
    this.connection.assertFits(topic, payload, inbox);

    const call = new PendingCall(
      tid,
      topic,
      payload,
      resolveCallOptions(
        this.options,
        overrides,
        this.connection.protocolVersion,
      ),
      observer,
      (error) => this.retryOrFail(call, error),
    );
    this.pending.set(tid, call);
    if (this.isOpen) {
      this.sendWhenListening(call, address);
    } else {
      // The call's timeout and close() bound the connect too.
      this.connect()
        .then(() => {
          // The broker's packet limit is known only now.
          this.connection.assertFits(topic, payload, inbox);
          this.sendWhenListening(call, address);
        })
        .catch((error: unknown) => this.finish(call, error as Error));
    }

    return () => this.abandon(call);
  }

  private sendWhenListening(call: PendingCall, address: TaskAddress): void {
    const listening = this.taskTopics.listen(address);
    if (!listening) {
      this.sendTask(call);
      return;
    }

    listening.then(
      () => this.sendTask(call),
      (error: unknown) => this.finish(call, error as Error),
    );
  }

  /** Publishes a task for event handlers; nobody answers it. */
  async emit(address: TaskAddress, input: unknown): Promise<void> {
    const tid = this.createTid();
    if (this.isClosed) {
      throw new ConnectionClosedError(tid, true);
    }

    const payload = this.encodePerform(tid, input, true);
    const topic = getTaskTopic(address, tid, TaskAction.Perform);
    this.connection.assertFits(topic, payload);

    // Claim-mode workers offer to take events too: remember the event's
    // tid, so that their offers are answered and one worker of each group
    // runs it.
    this.events.set(tid, true);
    await this.connection.publish(topic, payload, { qos: this.qos });
  }

  private createTid(): string {
    this.tidCounter += 1;
    return this.tidPrefix + this.tidCounter.toString(36);
  }

  /** Throws InvalidInputError for input JSON cannot carry. */
  private encodePerform(tid: string, input: unknown, isEvent: boolean) {
    const message: WireMessage = {
      host: this.host,
      client: this.clientId,
      action: TaskAction.Perform,
      status: WireStatus.Initialized,
      progress: 0,
      data: input === undefined ? {} : input,
      reply: getInboxTopic(this.union, this.clientId, tid),
    };
    if (isEvent) {
      message.event = true;
    }

    try {
      return encodeMessage(message);
    } catch (error) {
      throw new InvalidInputError((error as Error).message);
    }
  }

  /** Sends the task to its topic: nobody there is AETHER_NO_WORKER. */
  private sendTask(call: PendingCall): void {
    this.publishTask(call, call.topic, () =>
      this.retryOrFail(call, new NoWorkerError(call.tid, NO_SUBSCRIBER)),
    );
  }

  /**
   * Asks the call's worker where the task stands: the same perform, sent
   * to the worker's inbox, which it answers with its last status or its
   * completion. Nobody there is no failure: after a reconnect the worker
   * may not have subscribed again yet, so it is asked again until it has,
   * or the call ends (its timeout, or the worker's will).
   */
  askWorker(call: PendingCall): void {
    const inbox = this.getWorkerInbox(call);
    if (!inbox) {
      return;
    }

    this.publishTask(call, inbox, () => {
      const askAgain = () => {
        if (this.getWorkerInbox(call) === inbox) {
          this.askWorker(call);
        }
      };
      setTimeout(askAgain, RESUME_RETRY_MS);
    });
  }

  private publishTask(
    call: PendingCall,
    topic: string,
    onNobodyThere: () => void,
  ): void {
    if (call.isDone) {
      return;
    }

    const options = {
      qos: this.qos,
      properties: this.getPublishProperties(call),
    };
    this.connection.publish(topic, call.payload, options).then(
      (outcome) => {
        if (outcome === PublishOutcome.NoSubscribers) {
          onNobodyThere();
        }
      },
      (error: unknown) => this.finish(call, toAetherError(call.tid, error)),
    );
  }

  /**
   * MQTT 5: the response topic names the inbox in the standard way, and the
   * broker drops a task still queued once its caller has given up on it.
   */
  private getPublishProperties(call: PendingCall) {
    if (this.connection.protocolVersion !== 5) {
      return undefined;
    }

    return {
      responseTopic: getInboxTopic(this.union, this.clientId, call.tid),
      messageExpiryInterval: Math.ceil(call.timeoutMs / 1000),
    };
  }

  private handleMessage(topic: string, payload: Buffer): void {
    const decoded = decodeMessage(payload);
    if (!decoded.ok) {
      this.malformed.warn(
        `Dropped a malformed reply on ${topic}: ${decoded.reason}.`,
      );
      return;
    }

    const message = decoded.message;
    const tid = readLastLevelUnder(topic, this.inboxPrefix);
    if (tid !== undefined) {
      this.handleInbox(tid, message);
      return;
    }

    const offlineClient = readLastLevelUnder(topic, this.offlinePrefix);
    if (offlineClient !== undefined) {
      this.watch.handleWill(offlineClient);
      return;
    }

    this.handleTaskTopic(topic, message);
  }

  private handleInbox(tid: string, message: WireMessage): void {
    const call = this.pending.get(tid);
    if (message.action === InboxAction.Offer) {
      this.handleOffer(tid, call, message);
      return;
    }

    if (!call) {
      this.cancelStray(tid, message);
      return;
    }

    this.handleReply(call, message);
  }

  private handleTaskTopic(topic: string, message: WireMessage): void {
    const parsed = parseTaskTopic(topic);
    const call = parsed && this.pending.get(parsed.tid);
    if (call) {
      this.handleReply(call, message);
    }
  }

  /**
   * The call follows one worker: the one assigned first (claim mode), else
   * the first to answer, of any group. Replies of other workers are
   * dropped (see stopDuplicateRun).
   */
  private handleReply(call: PendingCall, message: WireMessage): void {
    if (call.workerId === undefined) {
      call.bindWorker(message.client, message.group ?? '');
    }

    if (call.workerId !== message.client) {
      this.stopDuplicateRun(call, message);
      return;
    }

    call.lastHeardAt = Date.now();

    if (message.action === TaskAction.Status) {
      call.next({
        type: 'status',
        tid: call.tid,
        progress: toWireProgress(message.progress),
        data: message.data,
      });
      return;
    }

    if (message.action === TaskAction.Complete) {
      call.next({
        type: 'complete',
        tid: call.tid,
        success: message.status === WireStatus.Succeed,
        data: message.data,
      });
      this.finish(call);
    }
  }

  /**
   * A second worker of the followed worker's group sending a status (the
   * task was sent again) is told to stop. A worker of another group runs
   * its own copy, which this call leaves to run (see cancelStray).
   */
  private stopDuplicateRun(call: PendingCall, message: WireMessage): void {
    const isSameGroup = call.group === (message.group ?? '');
    if (isSameGroup && message.action === TaskAction.Status) {
      this.sendControl(message.client, call.tid, InboxAction.Cancel);
    }
  }

  /**
   * Claim mode: hands each offer to the assigner, which gives the task to
   * the least loaded member of each group, ties at random.
   */
  private handleOffer(
    tid: string,
    call: PendingCall | undefined,
    message: WireMessage,
  ): void {
    if (!call && !this.events.has(tid)) {
      return;
    }

    const load = (message.data as { load?: unknown } | null)?.load;
    this.assigner.handleOffer({
      tid,
      group: message.group ?? '',
      workerId: message.client,
      load: typeof load === 'number' ? load : 0,
    });
  }

  private assignOffer(offer: Offer): void {
    const call = this.pending.get(offer.tid);
    if (!call && !this.events.has(offer.tid)) {
      return;
    }

    if (call && call.workerId === undefined) {
      call.bindWorker(offer.workerId, offer.group);
    }

    this.sendControl(offer.workerId, offer.tid, InboxAction.Assign);
  }

  private countInFlight(workerId: string): number {
    let count = 0;
    for (const call of this.pending.values()) {
      count += call.workerId === workerId ? 1 : 0;
    }

    return count;
  }

  /**
   * A status for a call nobody waits for: its worker should stop. But a
   * worker of another group than the one that completed the call runs its
   * group's own copy of the task, which is not this caller's to stop.
   */
  private cancelStray(tid: string, message: WireMessage): void {
    const isStatus = message.action === TaskAction.Status;
    if (!isStatus || this.cancelled.has(tid)) {
      return;
    }

    const completedIn = this.completedIn.get(tid);
    if (completedIn !== undefined && completedIn !== message.group) {
      return;
    }

    this.cancelled.set(tid, true);
    this.sendControl(message.client, tid, InboxAction.Cancel);
  }

  pendingCalls(): Iterable<PendingCall> {
    return this.pending.values();
  }

  *callsOf(workerId: string): Iterable<PendingCall> {
    for (const call of this.pending.values()) {
      if (call.workerId === workerId) {
        yield call;
      }
    }
  }

  failWorkerLost(call: PendingCall, workerId: string): void {
    this.logger.warn(`Worker ${workerId} went offline during ${call.tid}`);
    this.retryOrFail(call, new WorkerLostError(call.tid, workerId));
  }

  private sendControl(workerId: string, tid: string, action: InboxAction) {
    // The worker id comes from a peer's payload: a forged one holding "/"
    // or "#" would send this outside that worker's inbox.
    if (!isTopicLevel(workerId)) {
      this.malformed.warn(
        `Sent no ${action} for ${tid}: the worker id in its reply is not ` +
          `a topic level.`,
      );
      return;
    }

    const payload = encodeMessage({
      host: this.host,
      client: this.clientId,
      action,
      status:
        action === InboxAction.Cancel
          ? WireStatus.Cancelled
          : WireStatus.Assigned,
      progress: 0,
      data: {},
    });
    const topic = getInboxTopic(this.union, workerId, tid);
    this.connection
      .publish(topic, payload, { qos: this.qos })
      .catch((error: unknown) =>
        this.logger.error(`Could not send ${action} for ${tid}`, error),
      );
  }

  /**
   * No worker took the task, or its worker was lost: send it again while
   * the call may wait or retry, else end it with that error.
   */
  private retryOrFail(call: PendingCall, error: Error): void {
    if (call.isDone) {
      return;
    }

    const delay = call.nextResendDelay(error, WAIT_RESEND_MS);
    if (delay === undefined) {
      this.finish(call, error);
      return;
    }

    this.logger.debug?.(`Sending ${call.tid} again in ${delay} ms`);
    this.assigner.forget(call.tid);
    call.resendAfter(delay, () => this.sendTask(call));
  }

  private getWorkerInbox(call: PendingCall): string | undefined {
    return call.workerId
      ? getInboxTopic(this.union, call.workerId, call.tid)
      : undefined;
  }

  private abandon(call: PendingCall): void {
    if (call.isDone) {
      return;
    }

    this.finish(call);
    if (call.workerId) {
      this.sendControl(call.workerId, call.tid, InboxAction.Cancel);
    }
  }

  private finish(call: PendingCall, error?: Error): void {
    if (call.isDone) {
      return;
    }

    this.pending.delete(call.tid);
    call.end(error);
    if (!error && call.group !== undefined) {
      this.completedIn.set(call.tid, call.group);
    }

    if (error instanceof TaskTimeoutError && call.workerId) {
      this.sendControl(call.workerId, call.tid, InboxAction.Cancel);
    }
  }

  /**
   * Ends every call in flight with ConnectionClosedError, then closes. A
   * second call resolves when the first has finished.
   */
  close(): Promise<void> {
    if (!this.isClosed) {
      this.isClosed = true;
      for (const call of [...this.pending.values()]) {
        this.finish(call, new ConnectionClosedError(call.tid));
      }
    }

    return this.connection.close();
  }
}

function toAetherError(tid: string, error: unknown): AetherError {
  return error instanceof AetherError
    ? error
    : new PublishFailedError(tid, describeError(error));
}
