import { InvalidOptionsError } from './errors.js';
import type {
  AetherClientOptions,
  AetherConnectionOptions,
  AetherServerOptions,
} from './options.js';

/**
 * Option values are checked where they are given, as a wrong one is a bug
 * in the app's setup that would otherwise show far away: a concurrency of
 * 0 runs no task and says nothing, a negative timeout ends every task at
 * once, and Node turns a delay past 2^31 - 1 ms into 1 ms.
 */

const GROUP_MODES = ['auto', 'shared', 'claim'];
// The longest delay setTimeout keeps (about 24.8 days).
const MAX_DELAY_MS = 2 ** 31 - 1;

type Checked = Record<string, unknown>;

export function checkConnectionOptions(options: AetherConnectionOptions) {
  const values = options as Checked;
  checkOneOf(values, 'protocolVersion', [4, 5]);
  checkOneOf(values, 'qos', [0, 1]);
  checkCount(values, 'maxPacketSize', 1, 'the largest packet in bytes');
  checkDelay(values, 'connectTimeout', 1);
}

export function checkClientOptions(options: AetherClientOptions): void {
  checkConnectionOptions(options);
  checkCallBounds(options);
  const values = options as Checked;
  checkDelay(values, 'receiptTimeout', 1);
  checkDelay(values, 'retryDelay', 0);
}

/** The bounds a call may also take from an AetherRecord. */
export function checkCallBounds(options: object): void {
  const values = options as Checked;
  checkDelay(values, 'timeout', 1);
  checkDelay(values, 'waitForWorker', 0);
  checkCount(values, 'retries', 0, 'how often to send a task again');
}

export function checkServerOptions(options: AetherServerOptions): void {
  checkConnectionOptions(options);
  const values = options as Checked;
  checkOneOf(values, 'groupMode', GROUP_MODES);
  checkOneOf(values, 'replyQos', [0, 1]);
  checkCount(values, 'concurrency', 1, 'the most tasks run at once');
  checkDelay(values, 'receiptDelay', 0);
  checkDelay(values, 'shutdownGrace', 0);
  checkCount(values, 'dedupWindow', 1, 'how many task ids to remember');
}

function checkDelay(values: Checked, name: string, least: number): void {
  const value = values[name];
  if (value === undefined) {
    return;
  }

  const isDelay =
    typeof value === 'number' && value >= least && value <= MAX_DELAY_MS;
  if (!isDelay) {
    throw new InvalidOptionsError(
      name,
      `${describe(value)} is not a number of ms from ${least} to ` +
        `${MAX_DELAY_MS}; leave it out for the default`,
    );
  }
}

function checkCount(
  values: Checked,
  name: string,
  least: number,
  meaning: string,
): void {
  const value = values[name];
  if (value === undefined) {
    return;
  }

  if (!Number.isInteger(value) || (value as number) < least) {
    throw new InvalidOptionsError(
      name,
      `${describe(value)} is not a whole number of ${least} or more ` +
        `(${meaning}); leave it out for the default`,
    );
  }
}

function checkOneOf(values: Checked, name: string, allowed: unknown[]) {
  const value = values[name];
  if (value !== undefined && !allowed.includes(value)) {
    const choices = allowed.map(describe).join(', ');
    throw new InvalidOptionsError(
      name,
      `${describe(value)} is not one of ${choices}`,
    );
  }
}

function describe(value: unknown): string {
  return typeof value === 'string' ? `"${value}"` : String(value);
}
