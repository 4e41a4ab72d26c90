import type { IClientOptions } from 'mqtt';

/**
 * How the workers of a group share tasks.
 *
 * - `shared`: one MQTT shared subscription (`$share/<group>/...`) per
 *   pattern; the broker hands each task to one member. Needs a broker with
 *   shared subscriptions (Mosquitto, EMQX, HiveMQ, VerneMQ).
 * - `claim`: every member receives every task and offers to take it,
 *   stating its load; the caller collects the offers of each group and
 *   assigns the task to the least loaded member, ties at random (see
 *   ClaimAssigner). Works on any broker (aedes, RabbitMQ, NATS) at the cost
 *   of one offer per member and one assign message per task, and a round
 *   trip of latency.
 * - `auto`: `shared`, unless the broker says it has no shared
 *   subscriptions (MQTT 5 CONNACK or SUBACK 0x9E), then `claim`.
 */
export type GroupMode = 'auto' | 'shared' | 'claim';

/** MQTT.js options passed through as they are (TLS, keepalive, auth...). */
export type PassThroughMqttOptions = Omit<
  IClientOptions,
  'protocolVersion' | 'clientId' | 'will' | 'clean' | 'manualConnect'
>;

/** Options that the client and the server share. */
export interface AetherConnectionOptions extends PassThroughMqttOptions {
  /**
   * The broker: `mqtt://`, `mqtts://`, `ws://` or `wss://`.
   * @default process.env.MQTT_URL, else 'mqtt://127.0.0.1:1883'
   */
  url?: string;

  /**
   * The project: the first topic level of every message, so that a broker
   * ACL can keep projects apart.
   * @default 'default'
   */
  union?: string;

  /**
   * The AetherMagic context level used when a pattern names none.
   * @default 'x'
   */
  context?: string;

  /**
   * MQTT protocol version: 5, or 4 for MQTT 3.1.1. When left unset and the
   * broker refuses MQTT 5, the connection falls back to 3.1.1 once.
   * @default 5
   */
  protocolVersion?: 4 | 5;

  /**
   * The MQTT client id. It names this client's inbox topic, so an ACL can
   * grant the inbox to this client alone with `%c`. Must be one topic
   * level and unique among connected clients.
   * @default '<role>-<8 random hex digits>'
   */
  clientId?: string;

  /**
   * QoS of everything this transport publishes. QoS 1 lets the broker say
   * "no subscribers" and "not authorised" (MQTT 5) and survives a lost
   * packet; QoS 0 is faster and is what Python peers use.
   * @default 1
   */
  qos?: 0 | 1;

  /**
   * The largest packet the broker takes, for MQTT 3.1.1 brokers that cannot
   * say so. With MQTT 5 the broker's CONNACK value is used instead.
   * @default undefined (no check)
   */
  maxPacketSize?: number;
}

/** Options of the caller side, `AetherClient`. */
export interface AetherClientOptions extends AetherConnectionOptions {
  /**
   * The longest a task may take, from send to completion, in ms.
   * Overridable per call with `AetherRecord`.
   * @default 30000
   */
  timeout?: number;

  /**
   * How long to wait for a worker to take a task (its receipt, first
   * status or completion) before failing with AETHER_NO_WORKER, in ms.
   * @default 5000
   */
  receiptTimeout?: number;

  /**
   * How long a call waits for a worker to appear when none is there,
   * re-sending the task meanwhile, in ms. 0 fails at once.
   * Overridable per call with `AetherRecord`.
   * @default 0
   */
  waitForWorker?: number;

  /**
   * How many times a task is sent again when no worker took it or its
   * worker was lost. Only for tasks that are safe to run again.
   * Overridable per call with `AetherRecord`.
   * @default 0
   */
  retries?: number;

  /**
   * The first pause before a retry, in ms; it doubles on every retry.
   * @default 200
   */
  retryDelay?: number;
}

/** Options of the worker side, `AetherServer`. */
export interface AetherServerOptions extends AetherConnectionOptions {
  /**
   * How the workers of a group share tasks; see `GroupMode`.
   * @default 'auto'
   */
  groupMode?: GroupMode;

  /**
   * The most tasks this worker runs at once. Tasks past it wait in a local
   * queue (MQTT.js cannot hold back a PUBACK without stalling the whole
   * connection, so the broker cannot be asked to hold them).
   * @default 64
   */
  concurrency?: number;

  /**
   * How long a task may run before its receipt status (progress 0) is
   * sent, in ms. A task that completes sooner sends only its completion.
   * Keep it well below the callers' receiptTimeout.
   * @default 50
   */
  receiptDelay?: number;

  /**
   * QoS of a task's status and completion messages; `qos` covers the rest
   * (announcements, offers). At QoS 0, as Nest's own MQTT replies and
   * Python peers, a reply costs no PUBACK at either end: a quarter fewer
   * packets per task, and statuses past the broker's receive maximum need
   * not wait. A reply in a socket lost with its connection is made good
   * without it: the worker repeats its last status after a reconnect, and
   * a caller that reconnects, or hears the worker's will, asks again
   * until the worker answers (it keeps its last 2048 results for that).
   * @default 0
   */
  replyQos?: 0 | 1;

  /**
   * On close(), how long running tasks may still finish before they are
   * completed as failed with AETHER_SHUTDOWN, in ms.
   * @default 5000
   */
  shutdownGrace?: number;

  /**
   * How many recent task ids are remembered, so that a task sent twice
   * (a retry, a resend after a reconnect) never runs twice here.
   * @default 10000
   */
  dedupWindow?: number;
}

// The defaults the TSDoc above names, in one place for the code that
// applies them.
export const DEFAULT_URL = 'mqtt://127.0.0.1:1883';
export const DEFAULT_UNION = 'default';
export const DEFAULT_CONTEXT = 'x';
export const DEFAULT_PROTOCOL_VERSION = 5;
export const DEFAULT_QOS = 1;
export const DEFAULT_REPLY_QOS = 0;
/** MQTT.js's own default, kept here. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 30_000;
export const DEFAULT_TIMEOUT_MS = 30_000;
export const DEFAULT_RECEIPT_TIMEOUT_MS = 5000;
export const DEFAULT_RETRY_DELAY_MS = 200;
export const DEFAULT_GROUP_MODE = 'auto';
export const DEFAULT_CONCURRENCY = 64;
export const DEFAULT_RECEIPT_DELAY_MS = 50;
export const DEFAULT_SHUTDOWN_GRACE_MS = 5000;
export const DEFAULT_DEDUP_WINDOW = 10_000;
