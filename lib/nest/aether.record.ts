import { checkCallBounds } from '../core/check-options.js';

/** Per-call bounds, overriding the client's options for one task. */
export interface AetherRecordOptions {
  /** The longest this task may take, in ms. */
  timeout?: number;
  /** How long to wait for a worker to appear, in ms. */
  waitForWorker?: number;
  /** How often to send it again if no worker took it or one was lost. */
  retries?: number;
}

/**
 * Wraps a task's input with options for that one call, as Nest's own
 * transports do with their record builders:
 *
 *   client.send('files/scan', new AetherRecord(input, { timeout: 60_000 }))
 */
export class AetherRecord<TInput = unknown> {
  /** Throws `InvalidOptionsError` for a bound that is not a valid one. */
  constructor(
    readonly data: TInput,
    readonly options: AetherRecordOptions = {},
  ) {
    checkCallBounds(options);
  }
}

export function unwrapRecord(data: unknown): {
  input: unknown;
  options: AetherRecordOptions;
} {
  if (data instanceof AetherRecord) {
    return { input: data.data, options: data.options };
  }

  return { input: data, options: {} };
}
