/** What the script and its worker processes agree on. */

export const CHAOS_UNION = 'chaos';
export const CHAOS_PATTERN = 'chaos/work';
export const CHAOS_FAILURE_CODE = 'CHAOS_ASKED_TO_FAIL';

/** Handed to a worker process as JSON in this environment variable. */
export const SETTINGS_VARIABLE = 'CHAOS_WORKER_SETTINGS';

export interface ChaosWorkerSettings {
  url: string;
  index: number;
  concurrency: number;
  shutdownGrace: number;
  runLog: string;
}

/** The input of one chaos task. */
export interface ChaosInput {
  key: string;
  /** How long the handler works, in ms, split around two statuses. */
  workMs: number;
  /** The handler throws at the end: a `failed` completion. */
  shouldFail: boolean;
}

/** What a worker tells the script over the IPC channel. */
export interface WorkerReady {
  type: 'ready';
  clientId: string;
}

export function isChaosInput(value: unknown): value is ChaosInput {
  if (typeof value !== 'object' || value === null) {
    return false;
  }

  const fields = value as Record<string, unknown>;
  return (
    typeof fields.key === 'string' &&
    typeof fields.workMs === 'number' &&
    typeof fields.shouldFail === 'boolean'
  );
}
