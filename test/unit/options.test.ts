import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
  AetherClient,
  AetherErrorCode,
  AetherRecord,
  AetherServer,
  type AetherClientOptions,
  type AetherServerOptions,
} from '../../lib/index.js';

// A wrong option value is refused where it is given, naming the option and
// the values it takes, instead of showing later as tasks that never run.

const BAD_SERVER_OPTIONS: Array<[string, unknown, RegExp]> = [
  ['concurrency', 0, /whole number of 1 or more/],
  ['concurrency', 2.5, /whole number/],
  ['groupMode', 'bogus', /"bogus" is not one of "auto", "shared", "claim"/],
  ['receiptDelay', -1, /number of ms from 0/],
  ['shutdownGrace', Number.NaN, /NaN is not a number of ms/],
  ['dedupWindow', 0, /whole number of 1 or more/],
  ['protocolVersion', 3, /3 is not one of 4, 5/],
  ['qos', 2, /2 is not one of 0, 1/],
  ['replyQos', 2, /2 is not one of 0, 1/],
];

const BAD_CLIENT_OPTIONS: Array<[string, unknown, RegExp]> = [
  ['timeout', -5, /-5 is not a number of ms from 1/],
  ['timeout', 'soon', /"soon" is not a number of ms/],
  ['timeout', 2 ** 31, /to 2147483647/],
  ['receiptTimeout', 0, /from 1/],
  ['retries', -1, /whole number of 0 or more/],
  ['waitForWorker', Infinity, /Infinity is not a number of ms/],
  ['maxPacketSize', 0, /whole number of 1 or more/],
];

function assertRefused(make: () => unknown, name: string, why: RegExp) {
  assert.throws(make, (error: Error & { code?: string }) => {
    assert.equal(error.code, AetherErrorCode.InvalidOptions);
    assert.match(error.message, new RegExp(`"${name}" is wrong`));
    assert.match(error.message, why);
    return true;
  });
}

describe('option checks', () => {
  for (const [name, value, why] of BAD_SERVER_OPTIONS) {
    it(`AetherServer refuses ${name}: ${String(value)}`, () => {
      const options = { [name]: value } as AetherServerOptions;
      assertRefused(() => new AetherServer(options), name, why);
    });
  }

  for (const [name, value, why] of BAD_CLIENT_OPTIONS) {
    it(`AetherClient refuses ${name}: ${String(value)}`, () => {
      const options = { [name]: value } as AetherClientOptions;
      assertRefused(() => new AetherClient(options), name, why);
    });
  }

  it('AetherRecord refuses a bound that is no bound', () => {
    const options = { timeout: 0 };
    assertRefused(() => new AetherRecord({}, options), 'timeout', /from 1/);
  });

  it('takes every default and every good value', () => {
    new AetherServer({ concurrency: 1, groupMode: 'claim', receiptDelay: 0 });
    new AetherServer({ replyQos: 1, qos: 0 });
    new AetherClient({ timeout: 1, retries: 0, qos: 0, protocolVersion: 4 });
    new AetherRecord({}, { timeout: 60_000, waitForWorker: 0, retries: 3 });
  });
});
