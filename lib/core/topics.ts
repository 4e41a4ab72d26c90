import { InvalidNameError } from './errors.js';

/**
 * The topic layout of the AetherMagic wire protocol, plus the few topics
 * this transport adds (an inbox per client and a will per worker). Every
 * topic starts with the union, so a broker ACL can keep projects apart by
 * their first level.
 *
 *   <union>/<job>/<task>/<context>/<tid>/<action>   AetherMagic task topics
 *   <union>/inbox/<clientId>/<tid>                  replies and control
 *   <union>/system/online/<host>/<clientId>/online  AetherMagic presence
 *   <union>/system/offline/<clientId>               a worker's will
 */

/** The actions of the task topics, as AetherMagic names them. */
export const enum TaskAction {
  Perform = 'perform',
  Status = 'status',
  Complete = 'complete',
  Idle = 'idle',
}

/** Where one task lives: the first four levels of its topics. */
export interface TaskAddress {
  union: string;
  job: string;
  task: string;
  context: string;
}

/** A task address with the id of one task, as parsed from a topic. */
export interface TaskTopic extends TaskAddress {
  tid: string;
  action: string;
}

/** The group name AetherMagic for Python gives every worker of a job. */
export function getDefaultGroup(union: string, job: string): string {
  return `${union}_${job}_workgroup`;
}

/**
 * Throws when a name given to the API cannot stand as one topic level.
 * AetherMagic never escapes names, so a `/` would shift every level after
 * it and a wildcard would subscribe to more than was meant.
 */
export function assertTopicLevel(name: unknown, what: string): string {
  if (typeof name !== 'string' || name.length === 0) {
    throw new InvalidNameError(what, String(name), 'it is empty');
  }

  if (!isTopicLevel(name)) {
    throw new InvalidNameError(
      what,
      name,
      'it holds "/", "+", "#", a control character, or is over ' +
        `${MAX_LEVEL_LENGTH} characters`,
    );
  }

  return name;
}

// Wildcards, control characters (C0 and C1), non-characters and lone
// surrogates make a broker drop the connection (MQTT 5.0, 1.5.4 and
// 4.7.3; Mosquitto does), and MQTT.js then re-sends the same packet
// forever. A lone surrogate would also reach the broker as U+FFFD, a
// name no worker serves.
const UNSAFE_CHARACTERS =
  '/+#\\u0000-\\u001f\\u007f-\\u009f\\ufdd0-\\ufdef\\ufffe\\uffff';
const LONE_HIGH_SURROGATE = '[\\ud800-\\udbff](?![\\udc00-\\udfff])';
const LONE_LOW_SURROGATE = '(?<![\\ud800-\\udbff])[\\udc00-\\udfff]';
const UNSAFE_IN_LEVEL = new RegExp(
  `[${UNSAFE_CHARACTERS}]|${LONE_HIGH_SURROGATE}|${LONE_LOW_SURROGATE}`,
);
const MAX_LEVEL_LENGTH = 256;

export function isTopicLevel(name: string): boolean {
  return (
    name.length > 0 &&
    name.length <= MAX_LEVEL_LENGTH &&
    !UNSAFE_IN_LEVEL.test(name)
  );
}

export function assertTaskAddress(address: TaskAddress): TaskAddress {
  assertTopicLevel(address.union, 'union');
  assertTopicLevel(address.job, 'job');
  assertTopicLevel(address.task, 'task');
  assertTopicLevel(address.context, 'context');
  return address;
}

function getTaskPrefix(address: TaskAddress): string {
  const { union, job, task, context } = address;
  return `${union}/${job}/${task}/${context}`;
}

export function getTaskTopic(
  address: TaskAddress,
  tid: string,
  action: TaskAction,
): string {
  return `${getTaskPrefix(address)}/${tid}/${action}`;
}

/** The filter for every task of one address and action, any tid. */
export function getTaskFilter(address: TaskAddress, action: TaskAction) {
  return `${getTaskPrefix(address)}/+/${action}`;
}

export function getSharedFilter(group: string, filter: string): string {
  return `$share/${group}/${filter}`;
}

export function getInboxTopic(union: string, clientId: string, tid: string) {
  return `${union}/inbox/${clientId}/${tid}`;
}

/**
 * True for `<union>/inbox/<client id>/<tid>` of this task and nothing else:
 * a reply topic comes from the sender, and a worker must not publish where
 * a peer points it, or on a topic the broker would refuse.
 */
export function isInboxTopic(topic: string, union: string, tid: string) {
  const levels = topic.split('/');
  return (
    levels.length === 4 &&
    levels[0] === union &&
    levels[1] === 'inbox' &&
    isTopicLevel(levels[2]) &&
    levels[3] === tid
  );
}

export function getInboxFilter(union: string, clientId: string): string {
  return `${union}/inbox/${clientId}/+`;
}

export function getOnlineTopic(union: string, host: string, id: string) {
  return `${union}/system/online/${host}/${id}/online`;
}

export function getOfflineTopic(union: string, clientId: string): string {
  return `${union}/system/offline/${clientId}`;
}

export function getOfflineFilter(union: string): string {
  return `${union}/system/offline/+`;
}

/**
 * Parses `<union>/<job>/<task>/<context>/<tid>/<action>`; returns
 * undefined for any other shape, so that a stray publish on a task filter
 * is dropped rather than misread.
 */
export function parseTaskTopic(topic: string): TaskTopic | undefined {
  const levels = topic.split('/');
  if (levels.length !== 6 || levels.some((level) => level.length === 0)) {
    return undefined;
  }

  const [union, job, task, context, tid, action] = levels;
  return { union, job, task, context, tid, action };
}

/** What every inbox topic of the union starts with. */
export function getInboxPrefix(union: string): string {
  return `${union}/inbox/`;
}

/** What every offline topic (will) of the union starts with. */
export function getOfflinePrefix(union: string): string {
  return getOfflineTopic(union, '');
}

/**
 * The last level of an inbox or offline topic under `prefix`, a tid or a
 * client id; undefined for any other topic. Those topics have four
 * levels and task topics six: a prefix alone would take the perform of a
 * job named `inbox` or `system` for an inbox message or a will.
 */
export function readLastLevelUnder(
  topic: string,
  prefix: string,
): string | undefined {
  if (!topic.startsWith(prefix) || !hasFourLevels(topic)) {
    return undefined;
  }

  return topic.slice(topic.lastIndexOf('/') + 1);
}

function hasFourLevels(topic: string): boolean {
  let slashes = 0;
  for (
    let at = topic.indexOf('/');
    at !== -1;
    at = topic.indexOf('/', at + 1)
  ) {
    slashes += 1;
    if (slashes > 3) {
      return false;
    }
  }

  return slashes === 3;
}
