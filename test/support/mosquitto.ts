import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import {
  accessSync,
  chmodSync,
  closeSync,
  constants,
  existsSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import type { TlsMaterial } from './certificates.js';
import { getFreePort } from './ports.js';

/** How a test broker is configured. Every field is optional. */
export interface MosquittoOptions {
  /**
   * Username to password. When given, a password file is written and
   * anonymous clients are refused.
   * @default undefined (anonymous clients allowed)
   */
  users?: Record<string, string>;
  /**
   * Text of an `acl_file`. Note that Mosquitto checks it on publish and on
   * delivery, never on SUBSCRIBE (see docs/access-rights.md, hazards).
   * @default undefined (no ACL: everyone may read and write everything)
   */
  acl?: string;
  /**
   * `max_packet_size` in bytes; larger packets disconnect the client.
   * @default undefined (Mosquitto's own limit, 256 MiB)
   */
  maxPacketSize?: number;
  /**
   * `max_inflight_messages`, announced as `receiveMaximum` in CONNACK.
   * @default undefined (Mosquitto's default, 20)
   */
  maxInflight?: number;
  /**
   * Serve TLS with this material instead of plain TCP. The URL becomes
   * `mqtts://localhost:PORT`, matching the server certificate.
   * @default undefined (plain TCP on `mqtt://127.0.0.1:PORT`)
   */
  tls?: TlsMaterial;
  /**
   * With `tls`: refuse clients without a certificate from the test CA and
   * use the certificate's CN as the username (`use_identity_as_username`).
   * @default false
   */
  requireCertificate?: boolean;
  /**
   * Raw lines appended at the end of the config, after the listener line,
   * so listener settings written here apply to the test listener.
   * @default []
   */
  extraConfig?: string[];
}

/** A Mosquitto process started for a test, bench or chaos run. */
export interface MosquittoBroker {
  /** `mqtt://127.0.0.1:PORT`, or `mqtts://localhost:PORT` with TLS. */
  readonly url: string;
  readonly port: number;
  /** Process id of the current run; changes after `restart()`. */
  readonly pid: number;
  /** Folder with the config, password, ACL and log files. */
  readonly dir: string;
  /** SIGTERM, then SIGKILL after 3 s. Safe to call twice. */
  stop(): Promise<void>;
  /** SIGKILL at once, as a crash would (for chaos tests). */
  kill(): Promise<void>;
  /** Starts it again after kill(), on the same port with the same config. */
  start(): Promise<void>;
  /** Stops, then starts again on the same port with the same config. */
  restart(): Promise<void>;
  /** The broker's log and console output, for failed-test messages. */
  logs(): string;
}

export type MosquittoErrorCode =
  | 'MOSQUITTO_MISSING'
  | 'MOSQUITTO_BAD_OPTIONS'
  | 'MOSQUITTO_PASSWD_FAILED'
  | 'MOSQUITTO_START_FAILED'
  | 'MOSQUITTO_EXIT_TIMEOUT';

export class MosquittoSupportError extends Error {
  constructor(
    readonly code: MosquittoErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'MosquittoSupportError';
  }
}

const START_TIMEOUT_MS = 5_000;
const PROBE_INTERVAL_MS = 10;
const STOP_GRACE_MS = 3_000;
const KILL_WAIT_MS = 3_000;
const INSTALL_HINT =
  'Mosquitto is required for these tests, install it with ' +
  '`apt-get install -y mosquitto`.';

const liveChildren = new Set<ChildProcess>();
const brokerDirs = new Set<string>();

// A test that throws before its cleanup must not leave brokers behind;
// only synchronous work runs in an 'exit' listener.
process.once('exit', () => {
  for (const child of liveChildren) child.kill('SIGKILL');
  for (const dir of brokerDirs) rmSync(dir, { recursive: true, force: true });
});

/** Starts Mosquitto on a free loopback port and waits until it accepts. */
export async function startMosquitto(
  options: MosquittoOptions = {},
): Promise<MosquittoBroker> {
  assertValidOptions(options);
  const binary = findExecutable('mosquitto', ['/usr/sbin/mosquitto']);

  const port = await getFreePort();
  const files = writeBrokerFolder(port, options);

  const host = options.tls ? 'localhost' : '127.0.0.1';
  const scheme = options.tls ? 'mqtts' : 'mqtt';
  const broker = new MosquittoProcess(`${scheme}://${host}:${port}`, port, {
    binary,
    ...files,
  });

  await broker.start();
  return broker;
}

interface BrokerFiles {
  binary: string;
  dir: string;
  configFile: string;
  logFile: string;
  outputFile: string;
}

class MosquittoProcess implements MosquittoBroker {
  readonly dir: string;
  private child: ChildProcess | undefined;
  private isRunning = false;
  private exited: Promise<void> = Promise.resolve();
  private stopping: Promise<void> | undefined;

  constructor(
    readonly url: string,
    readonly port: number,
    private readonly files: BrokerFiles,
  ) {
    this.dir = files.dir;
  }

  get pid(): number {
    return this.child?.pid ?? -1;
  }

  async start(): Promise<void> {
    const outputFd = openSync(this.files.outputFile, 'a');
    const child = spawn(this.files.binary, ['-c', this.files.configFile], {
      stdio: ['ignore', outputFd, outputFd],
    });
    closeSync(outputFd);

    this.track(child);
    await this.waitUntilListening();
  }

  stop(): Promise<void> {
    this.stopping ??= this.terminate();
    return this.stopping;
  }

  async kill(): Promise<void> {
    const child = this.child;
    if (!child || !this.isRunning) return;

    child.kill('SIGKILL');
    await this.waitForExit(KILL_WAIT_MS);
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  logs(): string {
    const log = readIfPresent(this.files.logFile);
    const output = readIfPresent(this.files.outputFile);
    return output ? `${log}\n--- console output ---\n${output}` : log;
  }

  private track(child: ChildProcess): void {
    this.child = child;
    this.isRunning = true;
    this.stopping = undefined;
    liveChildren.add(child);

    // 'error' without 'exit' means the process never started.
    this.exited = new Promise((resolve) => {
      child.once('exit', () => resolve());
      child.once('error', () => resolve());
    });
    void this.exited.then(() => {
      liveChildren.delete(child);
      if (this.child === child) this.isRunning = false;
    });

    // A forgotten broker must not keep the test process alive; the exit
    // hook above kills it instead.
    child.unref();
  }

  private async terminate(): Promise<void> {
    const child = this.child;
    if (!child || !this.isRunning) return;

    child.kill('SIGTERM');
    const forceKill = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);

    try {
      await this.waitForExit(STOP_GRACE_MS + KILL_WAIT_MS);
    } finally {
      clearTimeout(forceKill);
    }
  }

  private async waitForExit(timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(this.exitTimeoutError()), timeoutMs);
    });

    try {
      await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  private async waitUntilListening(): Promise<void> {
    const deadline = Date.now() + START_TIMEOUT_MS;
    const maxProbes = Math.ceil(START_TIMEOUT_MS / PROBE_INTERVAL_MS);

    for (let probe = 0; probe < maxProbes; probe += 1) {
      if (!this.isRunning) throw this.startError('exited during start-up');
      if (await acceptsConnections(this.port)) return;
      if (Date.now() > deadline) break;
      await sleep(PROBE_INTERVAL_MS);
    }

    await this.stop();
    throw this.startError(`was not listening after ${START_TIMEOUT_MS} ms`);
  }

  private startError(what: string): MosquittoSupportError {
    return new MosquittoSupportError(
      'MOSQUITTO_START_FAILED',
      `Mosquitto on port ${this.port} ${what}. Read its config in ` +
        `${this.files.configFile} and its log below; a port taken by ` +
        `another process or a file it cannot read are the usual causes.\n` +
        this.logs(),
    );
  }

  private exitTimeoutError(): MosquittoSupportError {
    return new MosquittoSupportError(
      'MOSQUITTO_EXIT_TIMEOUT',
      `Mosquitto pid ${this.pid} did not exit after a signal. Check it ` +
        `with \`ps -p ${this.pid}\` and end it by that pid.`,
    );
  }
}

function assertValidOptions(options: MosquittoOptions): void {
  if (options.requireCertificate && !options.tls) {
    throw new MosquittoSupportError(
      'MOSQUITTO_BAD_OPTIONS',
      'requireCertificate needs tls: pass `tls: createTlsMaterial()` too.',
    );
  }

  const users = Object.keys(options.users ?? {});
  if (options.users && users.length === 0) {
    throw new MosquittoSupportError(
      'MOSQUITTO_BAD_OPTIONS',
      'users is empty: give at least one user, or leave it out to allow ' +
        'anonymous clients.',
    );
  }
}

function writeBrokerFolder(
  port: number,
  options: MosquittoOptions,
): Omit<BrokerFiles, 'binary'> {
  const dir = mkdtempSync(join(tmpdir(), 'aethermagic-mosquitto-'));
  brokerDirs.add(dir);

  const configFile = join(dir, 'mosquitto.conf');
  const logFile = join(dir, 'mosquitto.log');
  const outputFile = join(dir, 'console.log');

  const lines = [
    ...globalSettings(logFile),
    ...accessSettings(dir, options),
    ...limitSettings(options),
    ...listenerSettings(port, options),
    ...(options.extraConfig ?? []),
  ];
  writeFileSync(configFile, `${lines.join('\n')}\n`);
  writeFileSync(logFile, '');

  // Started as root, Mosquitto drops to user `mosquitto` before it reads
  // these files and opens the log, and mkdtemp makes the folder 0700.
  chmodSync(dir, 0o755);
  for (const file of [configFile, ...readableExtras(dir, options)]) {
    chmodSync(file, 0o644);
  }
  chmodSync(logFile, 0o666);

  return { dir, configFile, logFile, outputFile };
}

function globalSettings(logFile: string): string[] {
  return [
    '# Written by test/support/mosquitto.ts for one test broker.',
    'per_listener_settings false',
    'set_tcp_nodelay true',
    'persistence false',
    `log_dest file ${logFile}`,
    'log_type error',
    'log_type warning',
    'log_type notice',
    'log_type information',
    'log_timestamp_format %H:%M:%S',
  ];
}

function accessSettings(dir: string, options: MosquittoOptions): string[] {
  const lines: string[] = [];

  if (options.users) {
    const passwordFile = join(dir, 'passwords');
    writePasswordFile(passwordFile, options.users);
    lines.push('allow_anonymous false', `password_file ${passwordFile}`);
  } else {
    lines.push('allow_anonymous true');
  }

  if (options.acl !== undefined) {
    const aclFile = join(dir, 'acl');
    writeFileSync(aclFile, `${options.acl}\n`);
    lines.push(`acl_file ${aclFile}`);
  }

  return lines;
}

function limitSettings(options: MosquittoOptions): string[] {
  const lines: string[] = [];
  if (options.maxPacketSize !== undefined) {
    lines.push(`max_packet_size ${options.maxPacketSize}`);
  }
  if (options.maxInflight !== undefined) {
    lines.push(`max_inflight_messages ${options.maxInflight}`);
  }
  return lines;
}

function listenerSettings(port: number, options: MosquittoOptions): string[] {
  const lines = [`listener ${port} 127.0.0.1`];
  if (!options.tls) return lines;

  lines.push(
    `cafile ${options.tls.caCert}`,
    `certfile ${options.tls.serverCert}`,
    `keyfile ${options.tls.serverKey}`,
  );
  if (options.requireCertificate) {
    lines.push('require_certificate true', 'use_identity_as_username true');
  }
  return lines;
}

function readableExtras(dir: string, options: MosquittoOptions): string[] {
  const files: string[] = [];
  if (options.users) files.push(join(dir, 'passwords'));
  if (options.acl !== undefined) files.push(join(dir, 'acl'));
  return files;
}

function writePasswordFile(file: string, users: Record<string, string>) {
  const passwd = findExecutable('mosquitto_passwd', [
    '/usr/bin/mosquitto_passwd',
  ]);

  Object.entries(users).forEach(([username, password], index) => {
    // -c creates (and truncates) the file, so only the first user gets it.
    const create = index === 0 ? ['-c'] : [];
    try {
      execFileSync(passwd, [...create, '-b', file, username, password], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
    } catch (cause) {
      throw new MosquittoSupportError(
        'MOSQUITTO_PASSWD_FAILED',
        `mosquitto_passwd could not add user "${username}": ` +
          `${commandOutput(cause)}. Usernames must not contain ':'.`,
        { cause },
      );
    }
  });
}

function findExecutable(name: string, preferred: string[]): string {
  const onPath = (process.env.PATH ?? '')
    .split(delimiter)
    .filter((folder) => folder !== '')
    .map((folder) => join(folder, name));

  const found = [...preferred, ...onPath].find(isExecutable);
  if (found) return found;

  throw new MosquittoSupportError(
    'MOSQUITTO_MISSING',
    `${INSTALL_HINT} (${name} was not found in ${preferred.join(', ')} ` +
      'or on PATH.)',
  );
}

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function acceptsConnections(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

function readIfPresent(file: string): string {
  return existsSync(file) ? readFileSync(file, 'utf8') : '';
}

function commandOutput(cause: unknown): string {
  const { stderr, stdout } = cause as { stderr?: Buffer; stdout?: Buffer };
  const text = `${stderr ?? ''}${stdout ?? ''}`.trim();
  return text || String(cause);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
