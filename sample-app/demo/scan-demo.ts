import { Logger } from '@nestjs/common';

import {
  SCAN_TIMEOUT_MS,
  type ScanProgress,
  type ScanResult,
} from '../shared/scan.contract.js';
import { readServerSentEvents } from './sse-client.js';

/** A folder to scan, and the short name progress lines show for it. */
export interface ScanTarget {
  label: string;
  path: string;
}

export interface ScanOutcome {
  target: ScanTarget;
  result?: ScanResult;
  /** `CODE: message` when the scan did not succeed. */
  error?: string;
  statusEvents: number;
  /** From the request to the last event, as the HTTP client saw it. */
  elapsedMs: number;
}

// Past the task's own timeout, so that the gateway's coded
// AETHER_TIMEOUT event reaches the HTTP client before it gives up.
const SCAN_DEADLINE_MS = SCAN_TIMEOUT_MS + 5_000;
const logger = new Logger('ScanDemo');

/** Runs every scan at once through the gateway's SSE endpoint. */
export function runScans(
  gatewayUrl: string,
  targets: ScanTarget[],
): Promise<ScanOutcome[]> {
  return Promise.all(targets.map((target) => runScan(gatewayUrl, target)));
}

async function runScan(
  gatewayUrl: string,
  target: ScanTarget,
): Promise<ScanOutcome> {
  const url = `${gatewayUrl}/scan?path=${encodeURIComponent(target.path)}`;
  const outcome: ScanOutcome = { target, statusEvents: 0, elapsedMs: 0 };
  const startedAt = performance.now();

  try {
    const signal = AbortSignal.timeout(SCAN_DEADLINE_MS);
    for await (const event of readServerSentEvents(url, signal)) {
      handleEvent(outcome, event.type, event.data);
    }
  } catch (error) {
    outcome.error = error instanceof Error ? error.message : String(error);
  }

  outcome.elapsedMs = Math.round(performance.now() - startedAt);
  outcome.error ??= outcome.result ? undefined : 'The stream ended early.';
  if (outcome.error) logger.warn(`[${target.label}] ${outcome.error}`);
  return outcome;
}

function handleEvent(outcome: ScanOutcome, type: string, data: unknown) {
  const { label } = outcome.target;
  const event = (data ?? {}) as Record<string, unknown>;

  if (type === 'status') {
    outcome.statusEvents += 1;
    logger.log(`[${label}] ${describeStatus(event)}`);
  } else if (type === 'complete' && event.success === true) {
    outcome.result = event.data as ScanResult;
    logger.log(`[${label}] done by ${outcome.result.workerId}`);
  } else if (type === 'complete') {
    outcome.error = describeFailure(event.data);
  } else if (type === 'error') {
    outcome.error = describeFailure(event);
  }
}

function describeStatus(event: Record<string, unknown>): string {
  const progress = event.data as Partial<ScanProgress> | undefined;
  if (progress?.bytesTotal === undefined) {
    return 'taken by a worker';
  }

  const percent = String(event.progress).padStart(3);
  const done = formatBytes(progress.bytesDone ?? 0);
  const total = formatBytes(progress.bytesTotal);
  return `${percent}% ${done} of ${total}  ${progress.file ?? ''}`;
}

function describeFailure(data: unknown): string {
  const { code, message } = (data ?? {}) as Record<string, unknown>;
  return `${String(code ?? 'UNKNOWN')}: ${String(message ?? 'no message')}`;
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}
