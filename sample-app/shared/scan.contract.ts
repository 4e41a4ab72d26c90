import type { ScanSummary } from '../scanner/directory-scanner.js';

/** The task both sides agree on: job `files`, task `scan`. */
export const SCAN_PATTERN = 'files/scan';

/** The longest a scan may take, from the gateway's send() to its end. */
export const SCAN_TIMEOUT_MS = 120_000;

/** The name the gateway's AetherClient is registered and injected under. */
export const AETHER_CLIENT = 'AETHER';

export interface ScanInput {
  /** An absolute path, or one relative to the worker's working folder. */
  path: string;
}

/** The partial data of each status message of a scan. */
export interface ScanProgress {
  /** The file being read, relative to the root. */
  file: string;
  bytesDone: number;
  bytesTotal: number;
}

/** A scan's output: the summary, and which worker produced it. */
export interface ScanResult extends ScanSummary {
  workerId: string;
}
