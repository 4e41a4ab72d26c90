import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';

import { createMosquittoAcl } from '../../lib/acl/mosquitto-acl.js';
import type { AclDescription } from '../../lib/acl/mosquitto-acl.js';
import { AetherErrorCode } from '../../lib/core/errors.js';
import {
  TaskAction,
  getInboxTopic,
  getOfflineTopic,
  getOnlineTopic,
  getTaskTopic,
} from '../../lib/core/topics.js';

const CLI = fileURLToPath(
  new URL('../../scripts/aethermagic-acl.js', import.meta.url),
);

const shop: AclDescription = {
  union: 'shop',
  users: {
    alice: { calls: [{ job: 'worker', task: 'collect' }] },
    bob: { performs: [{ job: 'worker', task: 'collect' }] },
  },
};

const SHOP_COLLECT = {
  union: 'shop',
  job: 'worker',
  task: 'collect',
  context: 'x',
};

// The client id the patterns are checked with in these tests.
const TEST_CLIENT_ID = 'test-client';

const EXPECTED_SHOP = `\
# Every client, whatever its user: read its own inbox, publish its
# own will. %c is the client id, so no client reads the inbox of
# another (these apply to all users, wherever they stand).
pattern read shop/inbox/%c/+
pattern write shop/system/offline/%c

user alice
# caller alice: worker/collect
topic write shop/worker/collect/+/+/perform
topic read shop/worker/collect/+/+/status
topic read shop/worker/collect/+/+/complete
# inbox, wills and presence of alice in union shop
topic write shop/inbox/+/+
topic read shop/system/offline/+
topic write shop/system/online/+/+/online

user bob
# worker bob: worker/collect
topic read shop/worker/collect/+/+/perform
topic write shop/worker/collect/+/+/status
topic write shop/worker/collect/+/+/complete
topic write shop/worker/collect/+/+/idle
# inbox, wills and presence of bob in union shop
topic write shop/inbox/+/+
topic read shop/system/offline/+
topic write shop/system/online/+/+/online
`;

const NAME = AetherErrorCode.InvalidName;
const OPTIONS = AetherErrorCode.InvalidOptions;
const task = (grant: object) => ({
  union: 'u',
  users: { a: { calls: [grant] } },
});

const BAD_DESCRIPTIONS: Array<[string, unknown, string, RegExp]> = [
  ['an empty list', [], OPTIONS, /"description".*list is empty/],
  ['a missing union', { users: {} }, OPTIONS, /"union".*missing/],
  ['a union with "/"', { union: 'a/b', users: {} }, NAME, /union "a\/b"/],
  ['a union with "%"', { union: '%c', users: {} }, NAME, /"%"/],
  ['a union "*"', { union: '*', users: {} }, OPTIONS, /"union"/],
  ['no users', { union: 'u', users: {} }, OPTIONS, /"users".*no user/],
  [
    'a user name with a line break',
    { union: 'u', users: { 'a\ntopic #': { calls: [] } } },
    OPTIONS,
    /white space/,
  ],
  [
    'a user without grants',
    { union: 'u', users: { a: {} } },
    OPTIONS,
    /"users\.a".*no calls and no performs/,
  ],
  [
    'a misspelt field',
    { union: 'u', users: { a: { perform: [] } } },
    OPTIONS,
    /"users\.a\.perform".*not a known field/,
  ],
  [
    'calls that are not a list',
    { union: 'u', users: { a: { calls: { job: 'j', task: 't' } } } },
    OPTIONS,
    /"users\.a\.calls".*list/,
  ],
  [
    'a job with "+"',
    task({ job: 'j+', task: 't' }),
    NAME,
    /job \(users\.a\.calls\[0\]\.job\) "j\+"/,
  ],
  ['a job "*"', task({ job: '*', task: 't' }), OPTIONS, /\.job"/],
  ['a missing task', task({ job: 'j' }), OPTIONS, /\.task".*missing/],
  ['a task with "#"', task({ job: 'j', task: '#' }), NAME, /task/],
  [
    'a context with a space',
    task({ job: 'j', task: 't', context: 'e u' }),
    NAME,
    /context.*white space/,
  ],
  [
    'a bad grant in a list of unions',
    [shop, task({ job: 'j', task: 5 })],
    OPTIONS,
    /"\[1\]\.users\.a\.calls\[0\]\.task".*a number/,
  ],
];

describe('createMosquittoAcl', () => {
  test('writes one commented block per user, patterns once', () => {
    const acl = createMosquittoAcl(shop);

    assert.equal(getBody(acl), EXPECTED_SHOP);
    assert.match(acl, /^# Mosquitto acl_file for AetherMagic, union shop\./);
    assert.ok(acl.endsWith('\n'));
  });

  test('puts patterns before any user line, topics after one', () => {
    const lines = createMosquittoAcl(shop).split('\n');
    const firstUser = lines.findIndex((line) => line.startsWith('user '));

    const patterns = lines.flatMap((line, index) =>
      line.startsWith('pattern ') ? [index] : [],
    );
    const topics = lines.flatMap((line, index) =>
      line.startsWith('topic ') ? [index] : [],
    );
    assert.ok(patterns.every((index) => index < firstUser));
    assert.ok(topics.every((index) => index > firstUser));
  });

  test('grants the caller the topics the transport uses', () => {
    const rules = getRules(createMosquittoAcl(shop), 'alice');
    const address = SHOP_COLLECT;

    const perform = getTaskTopic(address, 'a1b2', TaskAction.Perform);
    assert.ok(isAllowed(rules, 'write', perform));
    assert.ok(isAllowed(rules, 'read', getTask(address, TaskAction.Status)));
    assert.ok(isAllowed(rules, 'read', getTask(address, TaskAction.Complete)));
    assert.ok(isAllowed(rules, 'write', getInboxTopic('shop', 'w-1', 't')));
    assert.ok(isAllowed(rules, 'read', getOfflineTopic('shop', 'w-1')));
    assert.ok(isAllowed(rules, 'write', getOnlineTopic('shop', 'h', 'c')));

    const other = { ...address, task: 'resize' };
    assert.ok(!isAllowed(rules, 'write', getTask(other, TaskAction.Perform)));
    assert.ok(!isAllowed(rules, 'read', getTask(address, TaskAction.Perform)));
    assert.ok(!isAllowed(rules, 'write', getTask(address, TaskAction.Status)));
    assert.ok(!isAllowed(rules, 'read', getInboxTopic('shop', 'w-1', 't')));
    const ownInbox = getInboxTopic('shop', TEST_CLIENT_ID, 't');
    assert.ok(isAllowed(rules, 'read', ownInbox));
  });

  test('grants the worker the topics the transport uses', () => {
    const rules = getRules(createMosquittoAcl(shop), 'bob');
    const address = SHOP_COLLECT;

    assert.ok(isAllowed(rules, 'read', getTask(address, TaskAction.Perform)));
    for (const action of [
      TaskAction.Status,
      TaskAction.Complete,
      TaskAction.Idle,
    ]) {
      assert.ok(isAllowed(rules, 'write', getTask(address, action)));
    }
    assert.ok(isAllowed(rules, 'read', getOfflineTopic('shop', 'caller-1')));
    assert.ok(!isAllowed(rules, 'write', getTask(address, TaskAction.Perform)));
  });

  test('keeps each union to its own first level', () => {
    const acl = createMosquittoAcl(shop);
    const filters = acl
      .split('\n')
      .filter((line) => /^(topic|pattern) /.test(line))
      .map((line) => line.split(' ')[2]);

    assert.ok(filters.length > 0);
    assert.ok(filters.every((filter) => filter.startsWith('shop/')));
  });

  test('reads "*" as every task and keeps a given context', () => {
    const acl = createMosquittoAcl({
      union: 'u',
      users: {
        carol: {
          calls: [{ job: 'mail', task: '*' }],
          performs: [{ job: 'img', task: 'resize', context: 'eu' }],
        },
        dave: { calls: [{ job: 'img', task: 'resize', context: '*' }] },
      },
    });

    assert.match(acl, /^# caller carol: mail\/\*$/m);
    assert.match(acl, /^topic write u\/mail\/\+\/\+\/\+\/perform$/m);
    assert.match(acl, /^# worker carol: img\/resize, context eu$/m);
    assert.match(acl, /^topic read u\/img\/resize\/eu\/\+\/perform$/m);
    assert.match(acl, /^topic write u\/img\/resize\/\+\/\+\/perform$/m);
  });

  test('gives a caller and worker one block, union lines once', () => {
    const acl = createMosquittoAcl({
      union: 'u',
      users: {
        erin: {
          calls: [{ job: 'a', task: 'b' }],
          performs: [{ job: 'c', task: 'd' }],
        },
      },
    });

    assert.equal(count(acl, /^user erin$/gm), 1);
    assert.equal(count(acl, /^topic write u\/inbox\/\+\/\+$/gm), 1);
    assert.equal(count(acl, /^topic read u\/system\/offline\/\+$/gm), 1);
  });

  test('is the same whatever the order of users, and drops repeats', () => {
    const grant = { job: 'worker', task: 'collect' };
    const forward = createMosquittoAcl({
      union: 'shop',
      users: { alice: { calls: [grant, grant] }, bob: { performs: [grant] } },
    });
    const backward = createMosquittoAcl({
      union: 'shop',
      users: { bob: { performs: [grant] }, alice: { calls: [grant] } },
    });

    assert.equal(forward, backward);
    assert.equal(forward, createMosquittoAcl(shop));
  });

  test('merges a list of unions, one block per user', () => {
    const acl = createMosquittoAcl([
      { union: 'b', users: { frank: { calls: [{ job: 'j', task: 't' }] } } },
      { union: 'a', users: { frank: { performs: [{ job: 'j', task: 't' }] } } },
    ]);

    assert.equal(count(acl, /^user frank$/gm), 1);
    assert.match(acl, /^# Mosquitto acl_file for AetherMagic, unions a, b\./);
    assert.match(acl, /^# caller frank: j\/t \(union b\)$/m);
    assert.match(acl, /^# worker frank: j\/t \(union a\)$/m);
    for (const union of ['a', 'b']) {
      assert.equal(count(acl, new RegExp(`^pattern .* ${union}/`, 'gm')), 2);
    }
  });

  for (const [name, description, code, message] of BAD_DESCRIPTIONS) {
    test(`refuses ${name}`, () => {
      assert.throws(() => createMosquittoAcl(description as AclDescription), {
        code,
        message,
      });
    });
  }
});

describe('aethermagic-acl', () => {
  let dir: string;
  before(() => (dir = mkdtempSync(join(tmpdir(), 'aethermagic-acl-'))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('prints the acl_file of a description file', () => {
    const file = writeDescription(dir, 'shop.json', shop);
    const result = runCli([file]);

    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.stdout, createMosquittoAcl(shop));
    assert.equal(result.stderr, '');
  });

  test('reads the description from standard input with "-"', () => {
    const result = runCli(['-'], JSON.stringify([shop]));

    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.stdout, createMosquittoAcl([shop]));
  });

  test('prints its usage with --help', () => {
    const result = runCli(['--help']);

    assert.equal(result.status, 0);
    assert.match(result.stdout, /^Usage: aethermagic-acl /);
  });

  test('names the wrong field of a bad description, exit 2', () => {
    const bad = { union: 'shop', users: { alice: { calls: [{ job: 'a' }] } } };
    const file = writeDescription(dir, 'bad.json', bad);
    const result = runCli([file]);

    assert.equal(result.status, 2);
    assert.equal(result.stdout, '');
    assert.match(result.stderr, /bad\.json/);
    assert.match(result.stderr, /users\.alice\.calls\[0\]\.task/);
    assert.match(result.stderr, /AETHER_INVALID_OPTIONS/);
  });

  test('exits 2 on a file that is not JSON', () => {
    const file = join(dir, 'broken.json');
    writeFileSync(file, '{ "union": ');
    const result = runCli([file]);

    assert.equal(result.status, 2);
    assert.match(result.stderr, /broken\.json" is not valid JSON/);
  });

  test('exits 2 on a missing file or missing argument', () => {
    const missing = runCli([join(dir, 'nowhere.json')]);
    assert.equal(missing.status, 2);
    assert.match(missing.stderr, /cannot read .*nowhere\.json.*ENOENT/);

    const none = runCli([]);
    assert.equal(none.status, 2);
    assert.match(none.stderr, /give the description file/);

    const extra = runCli(['--verbose']);
    assert.equal(extra.status, 2);
    assert.match(extra.stderr, /unexpected argument "--verbose"/);
  });
});

type Rule = { access: string; filter: string };

/** The rules one user gets: the patterns (with %c) and its own block. */
function getRules(acl: string, user: string): Rule[] {
  const rules: Rule[] = [];
  let current: string | undefined;
  for (const line of acl.split('\n')) {
    const [keyword, access, filter] = line.split(' ');
    if (keyword === 'user') current = access;
    if (keyword === 'pattern') rules.push({ access, filter });
    if (keyword === 'topic' && current === user) rules.push({ access, filter });
  }
  return rules;
}

function isAllowed(rules: Rule[], access: string, topic: string): boolean {
  return rules.some(
    (rule) =>
      (rule.access === access || rule.access === 'readwrite') &&
      matchesFilter(rule.filter.replaceAll('%c', TEST_CLIENT_ID), topic),
  );
}

/** MQTT filter matching, enough for `+` and a trailing `#`. */
function matchesFilter(filter: string, topic: string): boolean {
  const filterLevels = filter.split('/');
  const topicLevels = topic.split('/');
  for (const [index, level] of filterLevels.entries()) {
    if (level === '#') return true;
    if (index >= topicLevels.length) return false;
    if (level !== '+' && level !== topicLevels[index]) return false;
  }
  return filterLevels.length === topicLevels.length;
}

function getTask(
  address: { union: string; job: string; task: string; context: string },
  action: TaskAction,
): string {
  return getTaskTopic(address, 'f00d', action);
}

function getBody(acl: string): string {
  return acl.slice(acl.indexOf('# Every client'));
}

function count(text: string, pattern: RegExp): number {
  return text.match(pattern)?.length ?? 0;
}

function writeDescription(dir: string, name: string, value: unknown) {
  const file = join(dir, name);
  writeFileSync(file, JSON.stringify(value, null, 2));
  return file;
}

function runCli(args: string[], input?: string) {
  return spawnSync(process.execPath, [CLI, ...args], {
    input: input ?? '',
    encoding: 'utf8',
    timeout: 10_000,
  });
}
