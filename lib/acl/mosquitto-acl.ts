import { InvalidNameError, InvalidOptionsError } from '../core/errors.js';
import {
  TaskAction,
  assertTopicLevel,
  getInboxFilter,
  getOfflineFilter,
  getOfflineTopic,
  getOnlineTopic,
  getTaskFilter,
} from '../core/topics.js';
import type { TaskAddress } from '../core/topics.js';
import type { AclDescription } from './acl.types.js';

export type { AclDescription, AclUser, TaskGrant } from './acl.types.js';

const ANY_LEVEL = '+';
const EVERY = '*';
const CLIENT_ID = '%c';

type Role = 'caller' | 'worker';
type Access = 'read' | 'write';

/** One validated grant: a user's role on one task address. */
interface Grant {
  user: string;
  role: Role;
  address: TaskAddress;
}

/**
 * Writes a Mosquitto `acl_file` that gives each user exactly the topics
 * its callers and workers use. Accepts one description or one per union;
 * a user named in several gets one block holding all its rights.
 * Throws `InvalidNameError` or `InvalidOptionsError` for a bad description.
 */
export function createMosquittoAcl(
  description: AclDescription | readonly AclDescription[],
): string {
  const grants = readGrants(description);
  const unions = getSortedSet(grants.map((grant) => grant.address.union));
  const users = getSortedSet(grants.map((grant) => grant.user));

  const lines = [...createHeader(unions), ...createPatternLines(unions)];
  const isMultiUnion = unions.length > 1;
  for (const user of users) {
    const own = grants.filter((grant) => grant.user === user);
    lines.push('', ...createUserBlock(user, own, isMultiUnion));
  }

  return `${lines.join('\n')}\n`;
}

function createHeader(unions: string[]): string[] {
  return [
    `# Mosquitto acl_file for AetherMagic, union${plural(unions)} ` +
      `${unions.join(', ')}.`,
    '# Generated from a description (aethermagic-acl): change the',
    '# description and generate again rather than editing this file.',
    '# docs/access-rights.md explains every line.',
    '',
  ];
}

// Mosquitto applies pattern lines to every client, wherever they stand in
// the file, so they are written once here rather than in each user block.
function createPatternLines(unions: string[]): string[] {
  const lines = [
    '# Every client, whatever its user: read its own inbox, publish its',
    '# own will. %c is the client id, so no client reads the inbox of',
    '# another (these apply to all users, wherever they stand).',
  ];

  for (const union of unions) {
    lines.push(
      `pattern read ${getInboxFilter(union, CLIENT_ID)}`,
      `pattern write ${getOfflineTopic(union, CLIENT_ID)}`,
    );
  }

  return lines;
}

function createUserBlock(
  user: string,
  grants: Grant[],
  isMultiUnion: boolean,
): string[] {
  const lines = [`user ${user}`];
  const unions = getSortedSet(grants.map((grant) => grant.address.union));

  for (const union of unions) {
    const inUnion = grants.filter((grant) => grant.address.union === union);
    for (const grant of inUnion) {
      lines.push(describeGrant(grant, isMultiUnion));
      lines.push(...getRoleRules(grant).map(formatTopicLine));
    }

    lines.push(`# inbox, wills and presence of ${user} in union ${union}`);
    lines.push(...getUnionRules(union).map(formatTopicLine));
  }

  return lines;
}

function describeGrant(grant: Grant, isMultiUnion: boolean): string {
  const { union, job, task, context } = grant.address;
  const taskName = task === ANY_LEVEL ? EVERY : task;
  const where = context === ANY_LEVEL ? '' : `, context ${context}`;
  const inUnion = isMultiUnion ? ` (union ${union})` : '';
  return `# ${grant.role} ${grant.user}: ${job}/${taskName}${where}${inUnion}`;
}

/**
 * A caller sends perform and hears Python workers on status and complete;
 * a worker hears perform and answers on the others. Replies of Nest peers
 * go through the inbox instead (see getUnionRules).
 */
function getRoleRules(grant: Grant): Array<[Access, string]> {
  const filter = (action: TaskAction) => getTaskFilter(grant.address, action);

  if (grant.role === 'caller') {
    return [
      ['write', filter(TaskAction.Perform)],
      ['read', filter(TaskAction.Status)],
      ['read', filter(TaskAction.Complete)],
    ];
  }

  return [
    ['read', filter(TaskAction.Perform)],
    ['write', filter(TaskAction.Status)],
    ['write', filter(TaskAction.Complete)],
    ['write', filter(TaskAction.Idle)],
  ];
}

/**
 * What both roles need once per union: write to any inbox (replies,
 * offers, assign and cancel), hear wills (a caller notices a lost worker,
 * a worker aborts the tasks of a vanished caller), announce itself online.
 */
function getUnionRules(union: string): Array<[Access, string]> {
  return [
    ['write', getInboxFilter(union, ANY_LEVEL)],
    ['read', getOfflineFilter(union)],
    ['write', getOnlineTopic(union, ANY_LEVEL, ANY_LEVEL)],
  ];
}

function formatTopicLine([access, filter]: [Access, string]): string {
  return `topic ${access} ${filter}`;
}

function readGrants(
  description: AclDescription | readonly AclDescription[],
): Grant[] {
  const descriptions: unknown[] = Array.isArray(description)
    ? description
    : [description];
  if (descriptions.length === 0) {
    throw new InvalidOptionsError(
      'description',
      'the list is empty; give at least one { union, users }',
    );
  }

  const grants = descriptions.flatMap((item, index) =>
    readDescription(item, Array.isArray(description) ? `[${index}]` : ''),
  );
  return removeDuplicates(grants);
}

/** `at` is where the description stands: '' alone, `[2]` in a list. */
function readDescription(input: unknown, at: string): Grant[] {
  const fields = ['union', 'users'];
  const description = readRecord(input, at || 'description', fields);
  const unionAt = joinPath(at, 'union');
  const union = readName(description.union, 'union', unionAt);
  assertNotWildcard(union, unionAt);

  const usersAt = joinPath(at, 'users');
  const users = readRecord(description.users, usersAt);
  const names = Object.keys(users);
  if (names.length === 0) {
    throw new InvalidOptionsError(
      usersAt,
      'it names no user; give each broker user its calls and performs',
    );
  }

  return names.flatMap((user) =>
    readUser(user, users[user], union, `${usersAt}${getKeyPath(user)}`),
  );
}

function readUser(
  user: string,
  input: unknown,
  union: string,
  at: string,
): Grant[] {
  assertUserName(user, at);
  const rights = readRecord(input, at, ['calls', 'performs']);
  const calls = readList(rights.calls, `${at}.calls`);
  const performs = readList(rights.performs, `${at}.performs`);
  if (calls.length === 0 && performs.length === 0) {
    throw new InvalidOptionsError(
      at,
      'it has no calls and no performs; give at least one task, or ' +
        'leave the user out (Mosquitto then denies it every task topic)',
    );
  }

  const read = (role: Role, list: unknown[], key: string) =>
    list.map((item, index) => {
      const address = readGrant(item, union, `${at}.${key}[${index}]`);
      return { user, role, address };
    });
  return [
    ...read('caller', calls, 'calls'),
    ...read('worker', performs, 'performs'),
  ];
}

function readGrant(input: unknown, union: string, at: string): TaskAddress {
  const grant = readRecord(input, at, ['job', 'task', 'context']);
  const job = readName(grant.job, 'job', `${at}.job`);
  assertNotWildcard(job, `${at}.job`);

  return {
    union,
    job,
    task: readLevelOrAny(grant.task, 'task', `${at}.task`),
    context:
      grant.context === undefined
        ? ANY_LEVEL
        : readLevelOrAny(grant.context, 'context', `${at}.context`),
  };
}

function readLevelOrAny(input: unknown, what: string, at: string): string {
  return input === EVERY ? ANY_LEVEL : readName(input, what, at);
}

/**
 * A topic level that an acl_file can hold: Mosquitto substitutes `%` in
 * pattern lines, and white space or a line break would end the line or
 * start another, granting rights nobody asked for.
 */
function readName(input: unknown, what: string, at: string): string {
  if (typeof input !== 'string') {
    const why =
      input === undefined ? 'it is missing' : `it is ${typeOf(input)}`;
    throw new InvalidOptionsError(at, `${why}; give the ${what} as a string`);
  }

  const label = what === at ? what : `${what} (${at})`;
  const name = assertTopicLevel(input, label);
  if (/[\s%]/.test(name)) {
    throw new InvalidNameError(
      label,
      name,
      'it holds white space or "%", which an acl_file cannot hold safely',
    );
  }

  return name;
}

function assertUserName(user: string, at: string): void {
  // A line break in a name would start a line of the caller's choosing.
  if (user.length === 0 || /\s/.test(user)) {
    const why = user.length === 0 ? 'is empty' : 'holds white space';
    throw new InvalidOptionsError(
      at,
      `the user name ${why}; use the name exactly as in the password file`,
    );
  }
}

function assertNotWildcard(name: string, at: string): void {
  if (name === EVERY) {
    throw new InvalidOptionsError(
      at,
      '"*" stands for every task or context only; name the union and job',
    );
  }
}

function readRecord(
  input: unknown,
  at: string,
  knownKeys?: string[],
): Record<string, unknown> {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new InvalidOptionsError(
      at,
      `it must be an object, not ${typeOf(input)}`,
    );
  }

  const record = input as Record<string, unknown>;
  const unknown = Object.keys(record).find(
    (key) => knownKeys && !knownKeys.includes(key),
  );
  if (unknown !== undefined) {
    throw new InvalidOptionsError(
      `${at}${getKeyPath(unknown)}`,
      `it is not a known field; use ${knownKeys?.join(', ')}`,
    );
  }

  return record;
}

function readList(input: unknown, at: string): unknown[] {
  if (input === undefined) {
    return [];
  }

  if (!Array.isArray(input)) {
    throw new InvalidOptionsError(
      at,
      `it must be a list of { job, task, context? }, not ${typeOf(input)}`,
    );
  }

  return input;
}

function removeDuplicates(grants: Grant[]): Grant[] {
  const seen = new Set<string>();
  return grants.filter((grant) => {
    const { union, job, task, context } = grant.address;
    const key = [grant.user, grant.role, union, job, task, context].join('/');
    const isNew = !seen.has(key);
    seen.add(key);
    return isNew;
  });
}

function joinPath(at: string, key: string): string {
  return at ? `${at}.${key}` : key;
}

function getKeyPath(key: string): string {
  return /^[A-Za-z_][\w-]*$/.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`;
}

// Sorted by code unit, not locale, so the file is the same on every host.
function getSortedSet(values: string[]): string[] {
  return [...new Set(values)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

function typeOf(input: unknown): string {
  if (input === null) return 'null';
  if (Array.isArray(input)) return 'a list';
  const type = typeof input;
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`;
}

function plural(items: unknown[]): string {
  return items.length === 1 ? '' : 's';
}
