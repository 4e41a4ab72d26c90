import { InvalidPatternError } from './errors.js';
import { assertTaskAddress, type TaskAddress } from './topics.js';

/** A Nest pattern naming an AetherMagic task. */
export interface TaskPattern {
  job: string;
  task: string;
  /** @default the connection's `context` option */
  context?: string;
}

/**
 * Reads `'job/task'`, `{ job, task, context? }`, or the JSON string Nest
 * makes of an object pattern, into the address of the task's topics.
 */
export function parsePattern(
  pattern: unknown,
  union: string,
  defaultContext: string,
): TaskAddress {
  const fields = readPatternFields(pattern);
  if (!fields) {
    throw new InvalidPatternError(pattern);
  }

  const { job, task, context = defaultContext } = fields;
  return assertTaskAddress({ union, job, task, context });
}

function readPatternFields(pattern: unknown): TaskPattern | undefined {
  if (typeof pattern === 'string') {
    return pattern.startsWith('{')
      ? readPatternFields(parseJson(pattern))
      : splitPatternString(pattern);
  }

  if (typeof pattern !== 'object' || pattern === null) {
    return undefined;
  }

  const { job, task, context } = pattern as Record<string, unknown>;
  const hasNames = typeof job === 'string' && typeof task === 'string';
  const hasContext = context === undefined || typeof context === 'string';
  return hasNames && hasContext
    ? { job, task, context: context as string | undefined }
    : undefined;
}

function splitPatternString(pattern: string): TaskPattern | undefined {
  const parts = pattern.split('/');
  if (parts.length !== 2) {
    return undefined;
  }

  const [job, task] = parts;
  return { job, task };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** The key of one address among a worker's routes. */
export function getAddressKey(address: TaskAddress): string {
  return `${address.job}/${address.task}/${address.context}`;
}
