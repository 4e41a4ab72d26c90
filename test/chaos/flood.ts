import mqtt, { type MqttClient } from 'mqtt';

import { chooseKind, type MalformedKind } from './malformed.js';
import { CHAOS_UNION } from './shared.js';

const TASK_PREFIX = `${CHAOS_UNION}/chaos/work/x`;
const BATCH = 100;
const BATCH_TIMEOUT_MS = 5000;

/** A task in flight at a caller: its inbox and tid are fair targets. */
export interface LiveTask {
  callerId: string;
  tid: string;
}

export interface FloodTargets {
  kinds: MalformedKind[];
  workerIds: string[];
  callerIds: string[];
  getLiveTasks(): LiveTask[];
}

export interface FloodResult {
  sent: number;
  byKind: Map<string, number>;
  /** Publishes the broker refused or never acknowledged. */
  unacknowledged: number;
  /** Times the broker cut the flood client off. */
  disconnects: number;
  elapsedMs: number;
}

/**
 * Publishes `count` malformed messages with a raw MQTT.js client, in
 * batches of a hundred acknowledged ones (half QoS 1, half QoS 0), on the
 * task topics, the workers' and callers' inboxes, the callers' status and
 * complete filters, the offline topics and topics of the wrong length.
 */
export async function runFlood(
  url: string,
  count: number,
  targets: FloodTargets,
  deadlineMs: number,
): Promise<FloodResult> {
  const startedAt = Date.now();
  const result: FloodResult = {
    sent: 0,
    byKind: new Map(),
    unacknowledged: 0,
    disconnects: 0,
    elapsedMs: 0,
  };
  const client = await connectFloodClient(url, result);

  try {
    const stopAt = startedAt + deadlineMs;
    for (let first = 0; first < count && Date.now() < stopAt; first += BATCH) {
      const last = Math.min(first + BATCH, count);
      await publishBatch(client, first, last, targets, result);
    }
  } finally {
    await client.endAsync(true);
  }

  result.elapsedMs = Date.now() - startedAt;
  return result;
}

async function connectFloodClient(
  url: string,
  result: FloodResult,
): Promise<MqttClient> {
  const client = mqtt.connect(url, {
    clientId: `chaos-flood-${process.pid}`,
    protocolVersion: 5,
    reconnectPeriod: 200,
  });
  client.on('error', () => {});
  client.on('close', () => {
    // The close of endAsync() at the end is no cut-off.
    if (!client.disconnecting) {
      result.disconnects += 1;
    }
  });

  await new Promise<void>((resolve) => client.once('connect', () => resolve()));
  return client;
}

async function publishBatch(
  client: MqttClient,
  first: number,
  last: number,
  targets: FloodTargets,
  result: FloodResult,
): Promise<void> {
  const published: Promise<boolean>[] = [];
  for (let turn = first; turn < last; turn += 1) {
    const kind = chooseKind(turn, targets.kinds);
    const made = result.byKind.get(kind.name) ?? 0;
    result.byKind.set(kind.name, made + 1);

    const topic = chooseTopic(turn, kind, targets);
    const payload = kind.create(made);
    const responseTopic = kind.createResponseTopic?.(made);
    const isQos1 = Math.floor(turn / 32) % 2 === 0;
    published.push(publishOne(client, topic, payload, isQos1, responseTopic));
  }

  const outcomes = await Promise.all(published);
  result.sent += outcomes.length;
  result.unacknowledged += outcomes.filter((isAcked) => !isAcked).length;
}

function publishOne(
  client: MqttClient,
  topic: string,
  payload: string | Buffer,
  isQos1: boolean,
  responseTopic: string | undefined,
): Promise<boolean> {
  const options = {
    qos: isQos1 ? 1 : 0,
    properties: responseTopic ? { responseTopic } : undefined,
  } as const;
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), BATCH_TIMEOUT_MS);
    client.publish(topic, payload, options, (error) => {
      clearTimeout(timer);
      resolve(!error);
    });
  });
}

/**
 * Spreads the turns over every topic a transport peer listens on. Live
 * tids only ever get payloads the decoder refuses: a well-formed message
 * on a live tid would be a forgery, a different test.
 */
function chooseTopic(
  turn: number,
  kind: MalformedKind,
  targets: FloodTargets,
): string {
  const strangerTid = `flood${turn.toString(36)}`;
  const live = kind.isWellFormed ? undefined : pickLive(turn, targets);
  const tid = live?.tid ?? strangerTid;
  const worker = targets.workerIds[turn % targets.workerIds.length];
  const caller =
    live?.callerId ?? targets.callerIds[turn % targets.callerIds.length];

  // The kind follows turn % 4 (chooseKind); the topic follows the next
  // digit, so that every kind reaches every topic.
  switch (Math.floor(turn / 4) % 8) {
    case 0:
      return `${TASK_PREFIX}/${strangerTid}/perform`;
    case 1:
      return `${TASK_PREFIX}/${tid}/perform`;
    case 2:
      return `${CHAOS_UNION}/inbox/${worker}/${tid}`;
    case 3:
      return `${CHAOS_UNION}/inbox/${caller}/${tid}`;
    case 4:
      return `${TASK_PREFIX}/${tid}/status`;
    case 5:
      return `${TASK_PREFIX}/${tid}/complete`;
    case 6:
      return `${CHAOS_UNION}/system/offline/flood-${turn % 97}`;
    default:
      return chooseOddTopic(turn, tid, worker);
  }
}

function pickLive(turn: number, targets: FloodTargets): LiveTask | undefined {
  const live = targets.getLiveTasks();
  return live.length > 0 ? live[turn % live.length] : undefined;
}

/** Topics one level too many, one too few, or with an empty level. */
function chooseOddTopic(turn: number, tid: string, worker: string): string {
  const topics = [
    `${TASK_PREFIX}/${tid}/perform/extra`,
    `${TASK_PREFIX}/perform`,
    `${TASK_PREFIX}//perform`,
    `${CHAOS_UNION}/chaos/work/${tid}/perform`,
    `${CHAOS_UNION}/inbox/${worker}/${tid}/extra`,
    `${CHAOS_UNION}/inbox/${worker}`,
    `${CHAOS_UNION}/inbox/${worker}/`,
    `${CHAOS_UNION}/inbox`,
    `${CHAOS_UNION}/system/offline/`,
  ];
  return topics[Math.floor(turn / 32) % topics.length];
}
