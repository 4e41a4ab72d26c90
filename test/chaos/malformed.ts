import { randomBytes } from 'node:crypto';

/**
 * The catalogue of bad messages the flood publishes. Each kind returns a
 * payload; `isWellFormed` kinds pass the AetherMagic decoder (six fields of
 * the right types) and are only ever sent with tids nobody uses, so that
 * they test robustness, not forgery.
 */
export interface MalformedKind {
  name: string;
  isWellFormed: boolean;
  /** One in how many messages is of this kind (1 = the common kinds). */
  weight: number;
  /** The turn, modulo `weight`, on which a rare kind is sent. */
  offset?: number;
  /** `count`: how many of this kind were made before this one. */
  create(count: number): string | Buffer;
  /** An MQTT 5 Response Topic property to publish the payload with. */
  createResponseTopic?(count: number): string;
  /** Makes a worker publish where no client may: see --without-poison. */
  isPoison?: boolean;
}

const HUGE_BYTES = 1 << 20;
const DEEP_LEVELS = 100_000;

function createMessage(fields: Record<string, unknown> = {}) {
  return {
    host: 'chaos-flood',
    client: 'chaos-flood',
    action: 'perform',
    status: 'initialized',
    progress: 0,
    data: { flood: true },
    ...fields,
  };
}

function pick<T>(choices: T[], turn: number): T {
  return choices[turn % choices.length];
}

const INVALID_JSON: (string | Buffer)[] = [
  '',
  '{',
  '}',
  '{"host":"h",',
  '{"host":"h" "client":"c"}',
  '{"a":1}}',
  'perform',
  'NaN',
  '[1,2,',
  '\u0000',
  Buffer.from([0xff, 0xfe, 0xc3, 0x28]),
  JSON.stringify(createMessage()).slice(0, 40),
];

const WRONG_SHAPE = ['null', 'true', '42', '"text"', '[]', '[{}]', '{}'];

const SIX_FIELDS = ['host', 'client', 'action', 'status', 'progress', 'data'];

const WRONG_TYPES: Record<string, unknown>[] = [
  { host: 1 },
  { client: null },
  { action: 7 },
  { status: [] },
  { progress: '0' },
  { progress: null },
  { progress: {} },
  { reply: 12 },
  { reply: {} },
  { action: { perform: true } },
];

/** Well-formed performs whose reply topic no client may publish to. */
const POISON_REPLIES = [
  '',
  '/',
  'chaos/inbox/nobody/#',
  'chaos/+/x',
  '$SYS/chaos',
  'chaos/inbox/\u0000/x',
  'x'.repeat(70_000),
];

export const MALFORMED_KINDS: MalformedKind[] = [
  {
    name: 'invalid JSON',
    isWellFormed: false,
    weight: 1,
    create: (count) => pick([...INVALID_JSON, randomBytes(64)], count),
  },
  {
    name: 'JSON of the wrong shape',
    isWellFormed: false,
    weight: 1,
    create: (count) => pick(WRONG_SHAPE, count),
  },
  {
    name: 'a field missing',
    isWellFormed: false,
    weight: 1,
    create: (count) => {
      const message: Record<string, unknown> = createMessage();
      delete message[pick(SIX_FIELDS, count)];
      return JSON.stringify(message);
    },
  },
  {
    name: 'a field of the wrong type',
    isWellFormed: false,
    weight: 1,
    create: (count) => {
      const text = JSON.stringify(createMessage(pick(WRONG_TYPES, count)));
      // JSON.stringify cannot write a number past double range: 1e999.
      return count % 11 === 0
        ? text.replace('"progress":0', '"progress":1e999')
        : text;
    },
  },
  {
    name: 'huge (1 MiB)',
    offset: 1,
    isWellFormed: false,
    weight: 100,
    create: (count) =>
      count % 2 === 0
        ? '[' + '"x",'.repeat(HUGE_BYTES / 4)
        : JSON.stringify(createMessage({ progress: 'x'.repeat(HUGE_BYTES) })),
  },
  {
    name: 'deeply nested',
    offset: 2,
    isWellFormed: false,
    weight: 50,
    create: (count) =>
      count % 2 === 0
        ? '['.repeat(DEEP_LEVELS) + ']'.repeat(DEEP_LEVELS)
        : '{"a":'.repeat(DEEP_LEVELS) + '1' + '}'.repeat(DEEP_LEVELS),
  },
  {
    name: 'well-formed, deeply nested data',
    offset: 3,
    isWellFormed: true,
    weight: 100,
    create: () => {
      const data = '['.repeat(10_000) + ']'.repeat(10_000);
      return JSON.stringify(createMessage()).replace('{"flood":true}', data);
    },
  },
  {
    name: 'well-formed, unusable reply field',
    offset: 4,
    isWellFormed: true,
    isPoison: true,
    weight: 100,
    create: (count) =>
      JSON.stringify(createMessage({ reply: pick(POISON_REPLIES, count) })),
  },
  {
    // Mosquitto forwards a Response Topic with wildcards as it is, and a
    // worker answers there when the payload names no reply. (A control
    // character in it gets the flood client itself disconnected instead.)
    name: 'well-formed, unusable MQTT 5 response topic',
    offset: 5,
    isWellFormed: true,
    isPoison: true,
    weight: 100,
    create: () => JSON.stringify(createMessage()),
    createResponseTopic: (count) =>
      pick(['chaos/inbox/nobody/#', 'chaos/+/x'], count),
  },
  {
    name: 'well-formed, odd values',
    offset: 0,
    isWellFormed: true,
    weight: 10,
    create: (count) =>
      JSON.stringify(
        createMessage(
          pick(
            [
              { action: 'status', status: 'progress', progress: -5 },
              { action: 'complete', status: 'succeed', progress: 1e300 },
              { action: 'offer', group: 7 },
              { action: 'bogus', data: null },
              { status: 'whatever', extra: { nested: [1, 2, 3] } },
            ],
            count,
          ),
        ),
      ),
  },
];

/**
 * The kind of the message of one turn: each rare kind on its own turns
 * (their offsets never meet), the common kinds in turn on the others.
 */
export function chooseKind(
  turn: number,
  kinds: MalformedKind[],
): MalformedKind {
  const rare = kinds.find(
    (kind) => kind.weight > 1 && turn % kind.weight === kind.offset,
  );
  if (rare) {
    return rare;
  }

  const common = kinds.filter((kind) => kind.weight === 1);
  return pick(common, turn);
}
