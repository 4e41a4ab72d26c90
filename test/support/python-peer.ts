import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/** One line the peer printed on stdout, e.g. `{ event: 'ready', ... }`. */
export interface PeerEvent {
  readonly event: string;
  readonly [field: string]: unknown;
}

export type PeerEventPredicate = (event: PeerEvent) => boolean;

/** A running test/python/aether_peer.py. */
export interface PythonPeer {
  readonly pid: number;
  /** Every line printed so far, in order; the array grows in place. */
  readonly events: readonly PeerEvent[];
  /** The exit code, or null when a signal ended the process. */
  readonly exited: Promise<number | null>;
  /**
   * The first event, past or future, that matches. Rejects when the peer
   * exits first or after `timeoutMs` (default 5 s), with its output.
   */
  waitFor(
    predicate: PeerEventPredicate,
    timeoutMs?: number,
  ): Promise<PeerEvent>;
  /** What the peer logged on stderr so far. */
  stderr(): string;
  /** SIGTERM, then SIGKILL after 2 s. Safe to call twice. */
  stop(): Promise<void>;
}

/** The peer's exit codes, as its module docstring lists them. */
export const PeerExitCode = {
  done: 0,
  badArguments: 2,
  crash: 3,
  timeout: 4,
  noBroker: 5,
} as const;

export type PythonPeerErrorCode =
  | 'PYTHON_PEER_PAHO_MISSING'
  | 'PYTHON_PEER_SCRIPT_MISSING'
  | 'PYTHON_PEER_WAIT_TIMEOUT'
  | 'PYTHON_PEER_EXITED';

export class PythonPeerError extends Error {
  constructor(
    readonly code: PythonPeerErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'PythonPeerError';
  }
}

// Debian's interpreter, not pyenv's first on PATH: only it has paho 1.6.
const PYTHON = '/usr/bin/python3';
const DEFAULT_WAIT_MS = 5_000;
const STOP_GRACE_MS = 2_000;
const OUTPUT_TAIL_CHARS = 4_000;
const INSTALL_HINT =
  'The AetherMagic interop tests need Python 3 with paho-mqtt 1.x at ' +
  '/usr/bin/python3: install it with `apt-get install -y python3-paho-mqtt`.';

// Compiled to dist/test/support/, three levels below the repository.
const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const PEER_SCRIPT = join(REPO_ROOT, 'test', 'python', 'aether_peer.py');

const livePeers = new Set<ChildProcess>();
let isPythonChecked = false;

// A test that throws before its cleanup must not leave peers behind.
process.once('exit', () => {
  for (const child of livePeers) child.kill('SIGKILL');
});

/** Starts the Python peer with these arguments (see its `--help`). */
export function startPythonPeer(args: string[]): PythonPeer {
  assertPythonReady();

  // -I: ignore PYTHONPATH and user site-packages, so paho is Debian's.
  const child = spawn(PYTHON, ['-I', PEER_SCRIPT, ...args], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new PythonPeerProcess(child, args);
}

function assertPythonReady(): void {
  if (isPythonChecked) return;

  if (!existsSync(PEER_SCRIPT)) {
    throw new PythonPeerError(
      'PYTHON_PEER_SCRIPT_MISSING',
      `${PEER_SCRIPT} does not exist. Run the compiled tests from ` +
        'dist/test (`npx tsc -p tsconfig.json` first), not the sources.',
    );
  }

  const version = pahoVersion();
  if (!version?.startsWith('1.')) {
    const found = version ? `paho-mqtt ${version}` : 'no paho-mqtt';
    throw new PythonPeerError(
      'PYTHON_PEER_PAHO_MISSING',
      `${INSTALL_HINT} (${PYTHON} has ${found}.)`,
    );
  }
  isPythonChecked = true;
}

function pahoVersion(): string | undefined {
  try {
    const output = execFileSync(
      PYTHON,
      ['-I', '-c', 'import paho.mqtt; print(paho.mqtt.__version__)'],
      { stdio: ['ignore', 'pipe', 'ignore'] },
    );
    return output.toString().trim();
  } catch {
    return undefined;
  }
}

interface Waiter {
  predicate: PeerEventPredicate;
  resolve(event: PeerEvent): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout;
}

class PythonPeerProcess implements PythonPeer {
  readonly pid: number;
  readonly events: PeerEvent[] = [];
  readonly exited: Promise<number | null>;
  private stderrText = '';
  private exitCode: number | null | undefined;
  private readonly waiters = new Set<Waiter>();
  private stopping: Promise<void> | undefined;

  constructor(
    private readonly child: ChildProcess,
    private readonly args: string[],
  ) {
    this.pid = child.pid ?? -1;
    livePeers.add(child);

    this.readStdout();
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (text: string) => (this.stderrText += text));

    this.exited = new Promise((resolve) => {
      child.once('close', (code) => resolve(this.settle(code)));
      child.once('error', (error) => {
        this.stderrText += `\n${error.message}`;
        resolve(this.settle(null));
      });
    });
  }

  waitFor(
    predicate: PeerEventPredicate,
    timeoutMs = DEFAULT_WAIT_MS,
  ): Promise<PeerEvent> {
    const found = this.events.find(predicate);
    if (found) return Promise.resolve(found);
    if (this.exitCode !== undefined) {
      return Promise.reject(this.exitedError());
    }

    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        predicate,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.waiters.delete(waiter);
          reject(this.timeoutError(predicate, timeoutMs));
        }, timeoutMs),
      };
      this.waiters.add(waiter);
    });
  }

  stderr(): string {
    return this.stderrText;
  }

  stop(): Promise<void> {
    this.stopping ??= this.terminate();
    return this.stopping;
  }

  private async terminate(): Promise<void> {
    if (this.exitCode !== undefined) return;

    this.child.kill('SIGTERM');
    const forceKill = setTimeout(
      () => this.child.kill('SIGKILL'),
      STOP_GRACE_MS,
    );
    await this.exited;
    clearTimeout(forceKill);
  }

  private readStdout(): void {
    if (!this.child.stdout) return;

    const lines = createInterface({ input: this.child.stdout });
    lines.on('line', (line) => this.record(parseEvent(line)));
  }

  private record(event: PeerEvent): void {
    this.events.push(event);

    for (const waiter of this.waiters) {
      if (!waiter.predicate(event)) continue;
      clearTimeout(waiter.timer);
      this.waiters.delete(waiter);
      waiter.resolve(event);
    }
  }

  private settle(code: number | null): number | null {
    this.exitCode = code;
    livePeers.delete(this.child);

    for (const waiter of this.waiters) {
      clearTimeout(waiter.timer);
      waiter.reject(this.exitedError());
    }
    this.waiters.clear();
    return code;
  }

  private timeoutError(predicate: PeerEventPredicate, timeoutMs: number) {
    return new PythonPeerError(
      'PYTHON_PEER_WAIT_TIMEOUT',
      `The Python peer (pid ${this.pid}) printed no event matching ` +
        `${predicate.toString()} within ${timeoutMs} ms. Check that it ` +
        `reached the same broker and topics as the test.\n${this.output()}`,
    );
  }

  private exitedError(): PythonPeerError {
    return new PythonPeerError(
      'PYTHON_PEER_EXITED',
      `The Python peer (pid ${this.pid}) exited with code ` +
        `${this.exitCode} before the awaited event; its exit codes are ` +
        `listed in PeerExitCode.\n${this.output()}`,
    );
  }

  private output(): string {
    const events = this.events.map((event) => JSON.stringify(event));
    return (
      `arguments: ${this.args.join(' ')}\n` +
      `--- events ---\n${tail(events.join('\n'))}\n` +
      `--- stderr ---\n${tail(this.stderrText)}`
    );
  }
}

function parseEvent(line: string): PeerEvent {
  try {
    const parsed: unknown = JSON.parse(line);
    if (isPeerEvent(parsed)) return parsed;
  } catch {
    // Not JSON: kept below so that a failed wait shows it.
  }
  return { event: 'unparsed', line };
}

function isPeerEvent(value: unknown): value is PeerEvent {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { event?: unknown }).event === 'string'
  );
}

function tail(text: string): string {
  return text.length > OUTPUT_TAIL_CHARS
    ? `...${text.slice(-OUTPUT_TAIL_CHARS)}`
    : text;
}
