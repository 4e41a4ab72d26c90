/**
 * The AetherMagic payload: a JSON object with six fields on every message
 * (host, client, action, status, progress, data). A Python receiver crashes
 * on a payload that lacks one of them, so every message built here has all
 * six; the fields this transport adds are ignored by Python peers.
 */

/** The words AetherMagic puts in the `status` field, by action. */
export const enum WireStatus {
  Initialized = 'initialized',
  Progress = 'progress',
  Succeed = 'succeed',
  Failed = 'failed',
  Online = 'online',
  Connected = 'connected',
  Disconnected = 'disconnected',
  Available = 'available',
  Assigned = 'assigned',
  Cancelled = 'cancelled',
}

/**
 * Actions this transport adds: offer, assign and cancel on inbox topics,
 * between Nest peers; online and offline on the presence and will topics.
 */
export const enum InboxAction {
  Offer = 'offer',
  Assign = 'assign',
  Cancel = 'cancel',
  Offline = 'offline',
  Online = 'online',
}

export interface WireMessage {
  host: string;
  client: string;
  action: string;
  status: string;
  progress: number;
  data: unknown;

  /** Perform: the caller's inbox, where a Nest worker answers. */
  reply?: string;
  /** Perform: sent by emit(); run the handler, answer nothing. */
  event?: boolean;
  /** Worker replies: the group of the worker that sent them. */
  group?: string;
}

export type DecodeResult =
  { ok: true; message: WireMessage } | { ok: false; reason: string };

/**
 * Builds the payload with the six fields first, in AetherMagic's order.
 * Throws whatever JSON.stringify throws for input it cannot encode, and a
 * TypeError for `data` that JSON has no value for: JSON.stringify would
 * drop the field without a word, and a Python peer crash on its absence.
 */
export function encodeMessage(message: WireMessage): string {
  const kind = typeof message.data;
  if (kind === 'function' || kind === 'symbol' || kind === 'undefined') {
    throw new TypeError(`JSON has no value for a ${kind} as data`);
  }

  return JSON.stringify(message);
}

export function decodeMessage(payload: Buffer | string): DecodeResult {
  let value: unknown;
  try {
    value = JSON.parse(payload.toString());
  } catch (error) {
    return { ok: false, reason: `invalid JSON (${describeError(error)})` };
  }

  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, reason: 'the payload is not a JSON object' };
  }

  const reason = findShapeProblem(value as Record<string, unknown>);
  if (reason) {
    return { ok: false, reason };
  }

  return { ok: true, message: value as WireMessage };
}

function findShapeProblem(value: Record<string, unknown>): string | null {
  for (const field of ['host', 'client', 'action', 'status'] as const) {
    if (typeof value[field] !== 'string') {
      return `the field "${field}" is missing or not a string`;
    }
  }

  const progress = value.progress;
  if (typeof progress !== 'number' || !Number.isFinite(progress)) {
    return 'the field "progress" is missing or not a number';
  }

  if (!('data' in value)) {
    return 'the field "data" is missing';
  }

  if (value.reply !== undefined && typeof value.reply !== 'string') {
    return 'the field "reply" is not a string';
  }

  return null;
}

/** Progress on the wire is an integer from 0 to 100, as Python expects. */
export function toWireProgress(progress: number): number {
  // Infinity is as done as can be; NaN (or no number at all) is nothing.
  const value = Number(progress);
  if (Number.isNaN(value)) {
    return 0;
  }

  return Math.min(100, Math.max(0, Math.round(value)));
}

export function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
