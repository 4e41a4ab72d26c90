import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { decodeMessage, toWireProgress } from '../../lib/core/codec.js';
import { parsePattern } from '../../lib/core/pattern.js';
import {
  getDefaultGroup,
  getSharedFilter,
  getTaskFilter,
  getTaskTopic,
  parseTaskTopic,
  TaskAction,
} from '../../lib/core/topics.js';
import { AetherErrorCode } from '../../lib/index.js';

const six = {
  host: 'h',
  client: 'c',
  action: 'perform',
  status: 'initialized',
  progress: 0,
  data: {},
};

describe('decodeMessage', () => {
  it('accepts the six AetherMagic fields and ignores unknown ones', () => {
    const payload = JSON.stringify({ ...six, job: '', tid: '', extra: 1 });
    const decoded = decodeMessage(Buffer.from(payload));
    assert.equal(decoded.ok, true);
  });

  const broken: Array<[string, string]> = [
    ['{', 'invalid JSON'],
    ['[1]', 'not a JSON object'],
    ['null', 'not a JSON object'],
    [JSON.stringify({ ...six, host: 1 }), '"host"'],
    [JSON.stringify({ ...six, progress: '5' }), '"progress"'],
    [JSON.stringify({ ...six, data: undefined }), '"data" is missing'],
    [JSON.stringify({ ...six, reply: 3 }), '"reply"'],
  ];
  for (const [payload, reason] of broken) {
    it(`names what is wrong with ${payload.slice(0, 30)}`, () => {
      const decoded = decodeMessage(payload);
      assert.equal(decoded.ok, false);
      assert.ok(!decoded.ok && decoded.reason.includes(reason));
    });
  }

  it('survives deeply nested JSON', () => {
    const deep = '['.repeat(200_000) + ']'.repeat(200_000);
    assert.equal(decodeMessage(deep).ok, false);
  });
});

describe('toWireProgress', () => {
  it('rounds and clamps to an integer from 0 to 100', () => {
    assert.deepEqual(
      [-5, 0, 33.4, 66.6, 100, 250, Number.NaN, Infinity, -Infinity].map(
        toWireProgress,
      ),
      [0, 0, 33, 67, 100, 100, 0, 100, 0],
    );
  });
});

describe('topics', () => {
  const address = { union: 'u', job: 'j', task: 't', context: 'x' };

  it('builds the AetherMagic task topics and shared filter', () => {
    assert.equal(
      getTaskTopic(address, 'ab12', TaskAction.Perform),
      'u/j/t/x/ab12/perform',
    );
    assert.equal(
      getSharedFilter(
        getDefaultGroup('u', 'j'),
        getTaskFilter(address, TaskAction.Perform),
      ),
      '$share/u_j_workgroup/u/j/t/x/+/perform',
    );
  });

  it('parses only topics of six levels', () => {
    assert.deepEqual(parseTaskTopic('u/j/t/x/ab12/status'), {
      ...address,
      tid: 'ab12',
      action: 'status',
    });
    assert.equal(parseTaskTopic('u/j/t/x/status'), undefined);
    assert.equal(parseTaskTopic('u/j/t/x/a/b/status'), undefined);
    assert.equal(parseTaskTopic('u/j//x/a/status'), undefined);
  });
});

describe('parsePattern', () => {
  it('reads strings, objects and the JSON Nest makes of objects', () => {
    const expected = { union: 'u', job: 'j', task: 't', context: 'x' };
    assert.deepEqual(parsePattern('j/t', 'u', 'x'), expected);
    assert.deepEqual(parsePattern({ job: 'j', task: 't' }, 'u', 'x'), expected);
    assert.deepEqual(
      parsePattern('{"context":"c","job":"j","task":"t"}', 'u', 'x'),
      { ...expected, context: 'c' },
    );
  });

  for (const pattern of ['j', 'j/t/c', 42, null, { job: 'j' }]) {
    it(`refuses ${JSON.stringify(pattern)} with a clear error`, () => {
      assert.throws(
        () => parsePattern(pattern, 'u', 'x'),
        (error: { code?: string; message: string }) =>
          error.code === AetherErrorCode.InvalidPattern &&
          error.message.includes("'job/task'"),
      );
    });
  }

  const brokerBreakers = [
    'a\u0085',
    'a\u009f',
    'a\uffff',
    'a\ud800',
    '\udc00a',
  ];
  for (const name of ['a+b', 'a#', 'a/b', '', ...brokerBreakers]) {
    it(`refuses the job name "${showCodePoints(name)}"`, () => {
      assert.throws(
        () => parsePattern({ job: name, task: 't' }, 'u', 'x'),
        (error: { code?: string }) =>
          error.code === AetherErrorCode.InvalidName ||
          error.code === AetherErrorCode.InvalidPattern,
      );
    });
  }

  it('takes names in any script, and characters beyond the BMP', () => {
    for (const job of ['проверка', '検査', 'a\u00a0b', 'emoji\u{1f600}']) {
      assert.equal(parsePattern({ job, task: 't' }, 'u', 'x').job, job);
    }
  });
});

/** Test titles: characters beyond printable ASCII as \u{...}. */
function showCodePoints(name: string): string {
  return [...name]
    .map((char) => {
      const code = char.codePointAt(0) ?? 0;
      return code >= 0x20 && code < 0x7f ? char : `\\u{${code.toString(16)}}`;
    })
    .join('');
}
