import { randomBytes } from 'node:crypto';
import mqtt from 'mqtt';
import type {
  IClientOptions,
  IClientPublishOptions,
  IPublishPacket,
  MqttClient,
  Packet,
} from 'mqtt';

import { describeError } from './codec.js';
import {
  describeSilence,
  isUnsupportedProtocol,
  readRefusal,
} from './connect-failures.js';
import {
  ConnectionClosedError,
  NotConnectedError,
  NotAuthorizedError,
  PayloadTooLargeError,
} from './errors.js';
import type { AetherLogger } from './logger.js';
import {
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_PROTOCOL_VERSION,
  DEFAULT_URL,
  type AetherConnectionOptions,
} from './options.js';
import { assertTopicLevel } from './topics.js';

export enum ConnectionStatus {
  Connected = 'connected',
  Disconnected = 'disconnected',
  Reconnecting = 'reconnecting',
  Closed = 'closed',
}

/** What the broker said to one QoS 1 publish. */
export const enum PublishOutcome {
  Accepted = 'accepted',
  NoSubscribers = 'no-subscribers',
}

export interface ConnectionHooks {
  onMessage(topic: string, payload: Buffer, packet: IPublishPacket): void;
  onStatus(status: ConnectionStatus): void;
  /** After every CONNACK, the first one included. */
  onConnect(isFirst: boolean): void;
}

export interface Will {
  topic: string;
  payload: string;
}

const NO_MATCHING_SUBSCRIBERS = 0x10;
const NOT_AUTHORIZED = 0x87;
/** SUBACK codes from here up refuse the subscription. */
export const SUBACK_FAILURE = 0x80;
const GRACEFUL_END_MS = 2000;
const END_POLL_MS = 20;
// MQTT 5 (3.1.2.11.3): absent from CONNACK, the receive maximum is 65,535.
const DEFAULT_RECEIVE_MAXIMUM = 65_535;
// Fixed header, topic length, packet id, and the lengths and ids of the
// properties (a perform's expiry and response topic: about 21 bytes).
const PUBLISH_OVERHEAD = 64;

/**
 * One MQTT connection, framework-free: connects (falling back to 3.1.1
 * once when MQTT 5 is refused and no version was asked for), sets
 * TCP_NODELAY on every socket, reads what the broker's CONNACK tells, and
 * turns PUBACK and SUBACK reason codes into typed errors or outcomes.
 */
export class MqttConnection {
  readonly clientId: string;
  readonly url: string;

  /** From the MQTT 5 CONNACK, else the maxPacketSize option. */
  maximumPacketSize?: number;
  /** False when the MQTT 5 CONNACK says the broker has no `$share`. */
  sharedSubscriptionAvailable = true;
  /** QoS 1 publishes the broker takes unacknowledged (MQTT 5 CONNACK). */
  receiveMaximum = DEFAULT_RECEIVE_MAXIMUM;
  protocolVersion: 4 | 5;

  /**
   * Counts status changes. Mosquitto sends every client's will when it
   * shuts down, so a will is only news if the epoch did not move since.
   */
  epoch = 0;

  private client?: MqttClient;
  private status = ConnectionStatus.Disconnected;
  private hasConnected = false;
  private isClosing = false;
  private lastError?: string;
  private readonly noSubscriberIds = new Set<number>();
  private inFlight = 0;
  private isHoldingWrites = false;
  /** While the first connect is under way: ends it, as closed. */
  private stopConnecting?: () => void;
  private closing?: Promise<void>;
  private readonly waiting: Array<() => void> = [];

  constructor(
    private readonly options: AetherConnectionOptions,
    role: string,
    private readonly logger: AetherLogger,
    private readonly hooks: ConnectionHooks,
  ) {
    this.url = options.url ?? process.env.MQTT_URL ?? DEFAULT_URL;
    this.clientId = assertTopicLevel(
      options.clientId ?? `${role}-${randomBytes(4).toString('hex')}`,
      'clientId',
    );
    this.protocolVersion = options.protocolVersion ?? DEFAULT_PROTOCOL_VERSION;
    this.maximumPacketSize = options.maxPacketSize;
  }

  get isConnected(): boolean {
    return this.status === ConnectionStatus.Connected;
  }

  unwrap(): MqttClient | undefined {
    return this.client;
  }

  /** Resolves on the first CONNACK; rejects on a refusal or no answer. */
  connect(will: Will): Promise<void> {
    if (this.isClosing) {
      return Promise.reject(new ConnectionClosedError());
    }

    return new Promise((resolve, reject) => {
      const connectTimeout =
        this.options.connectTimeout ?? DEFAULT_CONNECT_TIMEOUT_MS;
      const timer = setTimeout(
        () => fail(describeSilence(this.url, connectTimeout, this.lastError)),
        connectTimeout,
      );

      const settle = () => {
        clearTimeout(timer);
        this.stopConnecting = undefined;
      };
      const fail = (error: Error) => {
        settle();
        this.client?.end(true);
        this.setStatus(ConnectionStatus.Closed);
        reject(error);
      };

      this.stopConnecting = () => fail(new ConnectionClosedError());
      const succeed = () => {
        settle();
        resolve();
      };
      this.start(will, succeed, fail);
    });
  }

  private start(
    will: Will,
    onFirstConnect: () => void,
    onRefused: (error: Error) => void,
  ): void {
    const client = mqtt.connect(this.url, this.createClientOptions(will));
    this.client = client;

    client.on('packetreceive', (packet) => {
      this.batchWrites();
      this.watchPuback(packet);
    });
    client.on('message', (topic, payload, packet) =>
      this.hooks.onMessage(topic, payload, packet),
    );

    client.on('connect', (connack) => {
      this.lastError = undefined;
      this.setNoDelay(client);
      this.readConnack(connack.properties);
      this.setStatus(ConnectionStatus.Connected);

      const isFirst = !this.hasConnected;
      this.hasConnected = true;
      this.hooks.onConnect(isFirst);
      if (isFirst) {
        onFirstConnect();
      }
    });

    client.on('error', (error: Error & { code?: unknown }) => {
      const code = typeof error.code === 'number' ? error.code : undefined;
      if (this.canFallBack(code)) {
        this.logger.warn(
          `The broker at ${this.url} refused MQTT 5; retrying with 3.1.1.`,
        );
        client.removeAllListeners();
        client.end(true);
        this.protocolVersion = 4;
        this.start(will, onFirstConnect, onRefused);
        return;
      }

      const refusal = readRefusal(this.url, code, error.message);
      if (refusal) {
        this.logger.error(refusal.message);
        onRefused(refusal);
        return;
      }

      this.noteError(error);
    });

    client.on('reconnect', () => this.setStatus(ConnectionStatus.Reconnecting));
    client.on('offline', () => this.setStatus(ConnectionStatus.Disconnected));
    client.on('close', () => {
      if (!this.isClosing && this.status === ConnectionStatus.Connected) {
        this.setStatus(ConnectionStatus.Disconnected);
      }
    });
  }

  private createClientOptions(will: Will): IClientOptions {
    const {
      url: _url,
      union: _union,
      context: _context,
      ...rest
    } = this.options;
    (void _url, _union, _context);

    return {
      reconnectPeriod: 1000,
      ...rest,
      protocolVersion: this.protocolVersion,
      clientId: this.clientId,
      clean: true,
      will: {
        topic: will.topic,
        payload: Buffer.from(will.payload),
        qos: 1,
        retain: false,
      },
    };
  }

  /** Only when no version was asked for, and before any success. */
  private canFallBack(code: number | undefined): boolean {
    return (
      isUnsupportedProtocol(code) &&
      this.options.protocolVersion === undefined &&
      this.protocolVersion === 5 &&
      !this.hasConnected
    );
  }

  // MQTT.js never sets TCP_NODELAY: without it a QoS 1 round trip waits
  // for Nagle twice (measured here: 88 ms a round trip, 0.25 ms without).
  private setNoDelay(client: MqttClient): void {
    const socket = client.stream as { setNoDelay?: (on: boolean) => void };
    socket.setNoDelay?.(true);
  }

  private readConnack(properties?: {
    maximumPacketSize?: number;
    sharedSubscriptionAvailable?: boolean;
    receiveMaximum?: number;
  }): void {
    if (properties?.receiveMaximum) {
      this.receiveMaximum = properties.receiveMaximum;
    }

    if (properties?.maximumPacketSize) {
      this.maximumPacketSize = properties.maximumPacketSize;
    }

    if (properties?.sharedSubscriptionAvailable === false) {
      this.sharedSubscriptionAvailable = false;
    }
  }

  /**
   * Holds this turn of the event loop's writes back and sends them in one
   * writev. MQTT.js writes each packet on its own tick, and a task's
   * PUBACK, reply and next request come from promise callbacks a tick
   * apart: one system call per packet was a fifth of the CPU at 64 tasks
   * in flight (docs/benchmarks.md). setImmediate always runs within the
   * same turn, after the I/O and its microtasks, so nothing waits longer.
   */
  private batchWrites(): void {
    const stream = this.client?.stream;
    if (this.isHoldingWrites || !stream || !('cork' in stream)) {
      return;
    }

    this.isHoldingWrites = true;
    stream.cork();
    setImmediate(() => {
      this.isHoldingWrites = false;
      stream.uncork();
    });
  }

  // MQTT.js reports PUBACK 0x10 as plain success; the packet itself is only
  // seen here, just before the publish callback runs for the same id.
  private watchPuback(packet: Packet): void {
    if (
      packet.cmd === 'puback' &&
      packet.reasonCode === NO_MATCHING_SUBSCRIBERS &&
      packet.messageId !== undefined
    ) {
      this.noSubscriberIds.add(packet.messageId);
    }
  }

  private noteError(error: Error): void {
    const message = describeError(error);
    if (message !== this.lastError) {
      this.logger.warn(`MQTT connection to ${this.url}: ${message}`);
    }

    this.lastError = message;
  }

  private setStatus(status: ConnectionStatus): void {
    if (status === this.status) {
      return;
    }

    this.status = status;
    this.epoch += 1;
    const log = status === ConnectionStatus.Connected ? 'log' : 'warn';
    if (!this.isClosing) {
      this.logger[log](`${this.clientId} ${status} (${this.url})`);
    }

    this.hooks.onStatus(status);
  }

  /**
   * Throws PayloadTooLargeError when the broker would refuse the packet.
   * Sent anyway, it makes the broker drop the connection, and MQTT.js
   * sends it again after every reconnect.
   */
  assertFits(topic: string, payload: string, responseTopic = ''): void {
    const limit = this.maximumPacketSize;
    if (limit === undefined) {
      return;
    }

    const bytes =
      Buffer.byteLength(payload) +
      Buffer.byteLength(topic) +
      Buffer.byteLength(responseTopic) +
      PUBLISH_OVERHEAD;
    if (bytes > limit) {
      throw new PayloadTooLargeError(bytes, limit);
    }
  }

  /**
   * Publishes and resolves with what the broker said. A PUBACK over 0x80
   * rejects; 0x87 as NotAuthorizedError. QoS 0 resolves once written.
   */
  publish(
    topic: string,
    payload: string,
    options: IClientPublishOptions,
    isUrgent = false,
  ): Promise<PublishOutcome> {
    return new Promise((resolve, reject) => {
      const send = () => this.send(topic, payload, options, resolve, reject);
      if (options.qos === 0 || this.inFlight < this.receiveMaximum) {
        send();
        return;
      }

      // MQTT.js does not hold back past the broker's receive maximum, and
      // a broker may disconnect a client that exceeds it (MQTT 5, 4.9).
      // An urgent packet (a task's first reply, which a caller's receipt
      // timer waits for) goes before the others held back.
      if (isUrgent) {
        this.waiting.unshift(send);
      } else {
        this.waiting.push(send);
      }
    });
  }

  private send(
    topic: string,
    payload: string,
    options: IClientPublishOptions,
    resolve: (outcome: PublishOutcome) => void,
    reject: (error: Error) => void,
  ): void {
    const client = this.client;
    if (!client) {
      reject(new NotConnectedError('publish()', 'call connect() first'));
      return;
    }

    this.batchWrites();
    const isTracked = options.qos !== 0;
    if (isTracked) {
      this.inFlight += 1;
    }

    client.publish(topic, payload, options, (error, packet) => {
      if (isTracked) {
        this.inFlight -= 1;
        this.waiting.shift()?.();
      }

      if (error) {
        reject(this.toPublishError(error, topic));
        return;
      }

      const id = packet?.messageId;
      if (id !== undefined && this.noSubscriberIds.delete(id)) {
        resolve(PublishOutcome.NoSubscribers);
        return;
      }

      resolve(PublishOutcome.Accepted);
    });
  }

  private toPublishError(error: Error, topic: string): Error {
    const code = (error as { code?: unknown }).code;
    if (code === NOT_AUTHORIZED) {
      return new NotAuthorizedError('publish', topic);
    }

    return error;
  }

  /** Resolves with the SUBACK codes, one per filter, in order. */
  subscribe(filters: string[], qos: 0 | 1): Promise<number[]> {
    return new Promise((resolve, reject) => {
      const client = this.client;
      if (!client) {
        reject(new NotConnectedError('subscribe()', 'call connect() first'));
        return;
      }

      client.subscribe(filters, { qos }, (error, _granted, suback) => {
        // On a refusal MQTT.js still hands over the SUBACK with its codes.
        const codes = (suback as { granted?: number[] } | undefined)?.granted;
        if (codes?.length === filters.length) {
          resolve(codes);
          return;
        }

        reject(error ?? new Error(`No SUBACK for ${filters.join(', ')}`));
      });
    });
  }

  /** Subscribes, and throws NotAuthorizedError for a refused filter. */
  async subscribeAll(filters: string[], qos: 0 | 1): Promise<void> {
    const codes = await this.subscribe(filters, qos);
    const refused = codes.findIndex((code) => code >= SUBACK_FAILURE);
    if (refused >= 0) {
      throw new NotAuthorizedError('subscribe', filters[refused]);
    }
  }

  unsubscribe(filters: string[]): Promise<void> {
    return new Promise((resolve) => {
      if (!this.client || filters.length === 0) {
        resolve();
        return;
      }

      this.client.unsubscribe(filters, () => resolve());
    });
  }

  /** Ends the connection; a second call resolves when the first has. */
  close(): Promise<void> {
    this.closing ??= this.shutDown();
    return this.closing;
  }

  private async shutDown(): Promise<void> {
    this.isClosing = true;
    this.stopConnecting?.();
    const client = this.client;
    if (client) {
      await this.endClient(client);
    }

    this.setStatus(ConnectionStatus.Closed);
    this.logger.log(`${this.clientId} closed`);
  }

  /**
   * MQTT.js's graceful end waits for every QoS 1 acknowledgement with no
   * limit, and stops the reconnects that could bring them: with the broker
   * away it never returns, and a second end() is ignored. So wait here,
   * bounded, then end once, dropping what is still unacknowledged.
   */
  private async endClient(client: MqttClient): Promise<void> {
    const deadline = Date.now() + GRACEFUL_END_MS;
    const hasOutgoing = () => Object.keys(client.outgoing).length > 0;
    while (client.connected && hasOutgoing() && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, END_POLL_MS));
    }

    const force = !client.connected || hasOutgoing();
    await new Promise<void>((resolve) =>
      client.end(force, {}, () => resolve()),
    );
  }
}
