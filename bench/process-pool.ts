import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

import type {
  ChildCommand,
  ChildConfig,
  ChildMessage,
  RequestMessage,
} from './ipc.js';

const CHILD_SCRIPT = fileURLToPath(
  new URL('./child-process.js', import.meta.url),
);
const READY_LIMIT_MS = 20_000;
const STOP_LIMIT_MS = 5_000;

export class BenchProcessError extends Error {
  constructor(
    readonly code: 'BENCH_CHILD_FAILED' | 'BENCH_CHILD_TIMEOUT',
    message: string,
  ) {
    super(message);
    this.name = 'BenchProcessError';
  }
}

/** Every child still alive, so that an exiting bench can kill it by pid. */
const liveChildren = new Set<ChildProcess>();

process.once('exit', () => {
  for (const child of liveChildren) {
    child.kill('SIGKILL');
  }
});

/** A forked caller or worker, driven by request/answer messages. */
export class BenchProcess {
  private lastId = 0;
  private readonly waiting = new Map<number, Waiter>();
  private readonly exited: Promise<void>;

  private constructor(
    readonly name: string,
    private readonly child: ChildProcess,
  ) {
    liveChildren.add(child);
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    void this.exited.then(() => this.handleExit());
    child.on('message', (message: ChildMessage) => this.handleAnswer(message));
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Forks the child and resolves once it says it is connected. */
  static async start(
    config: ChildConfig,
    execArgv: string[] = [],
  ): Promise<BenchProcess> {
    const name = `${config.transport} ${config.role} ${config.index}`;
    const child = fork(CHILD_SCRIPT, [JSON.stringify(config)], {
      execArgv,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const process = new BenchProcess(name, child);
    await process.waitUntilReady();
    return process;
  }

  private waitUntilReady(): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(this.timeoutError('say it was ready', READY_LIMIT_MS));
      }, READY_LIMIT_MS);

      this.child.on('message', (message: ChildMessage) => {
        if (message.type === 'ready') {
          clearTimeout(timer);
          resolve();
        }

        if (message.type === 'failed') {
          clearTimeout(timer);
          reject(this.failure(`could not start: ${message.message}`));
        }
      });

      // Rejecting after a resolve does nothing, so no check is needed.
      void this.exited.then(() => {
        clearTimeout(timer);
        reject(this.failure('exited during start-up'));
      });
    });
  }

  request<T>(command: ChildCommand, limitMs: number): Promise<T> {
    this.lastId += 1;
    const id = this.lastId;
    const message: RequestMessage = { id, command };

    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(this.timeoutError(`answer "${command.kind}"`, limitMs));
      }, limitMs);
      const settle = (error: Error | undefined, result?: unknown) => {
        clearTimeout(timer);
        this.waiting.delete(id);
        return error ? reject(error) : resolve(result as T);
      };

      this.waiting.set(id, settle);
      this.child.send(message);
    });
  }

  private handleAnswer(message: ChildMessage): void {
    if (message.type === 'answer') {
      this.waiting.get(message.id)?.(undefined, message.result);
    }

    if (message.type === 'refusal') {
      const error = this.failure(`refused: ${message.message}`);
      this.waiting.get(message.id)?.(error);
    }
  }

  private handleExit(): void {
    liveChildren.delete(this.child);
    const error = this.failure('exited before it answered');
    for (const settle of this.waiting.values()) {
      settle(error);
    }
  }

  /** Asks the child to close and exit; kills it by pid if it does not. */
  async stop(): Promise<void> {
    if (!liveChildren.has(this.child)) {
      return;
    }

    if (this.child.connected) {
      this.child.send({ id: 0, command: { kind: 'stop' } });
    }

    const stopped = await Promise.race([
      this.exited.then(() => true),
      sleepFor(STOP_LIMIT_MS).then(() => false),
    ]);
    if (!stopped) {
      this.child.kill('SIGKILL');
      await this.exited;
    }
  }

  private failure(what: string): BenchProcessError {
    return new BenchProcessError(
      'BENCH_CHILD_FAILED',
      `The bench ${this.name} (pid ${this.pid}) ${what}. Its output above ` +
        `says why; run \`npm run build\` again if the bench was changed.`,
    );
  }

  private timeoutError(what: string, limitMs: number): BenchProcessError {
    return new BenchProcessError(
      'BENCH_CHILD_TIMEOUT',
      `The bench ${this.name} (pid ${this.pid}) did not ${what} within ` +
        `${limitMs} ms. The broker may be overloaded or the transport stuck.`,
    );
  }
}

type Waiter = (error: Error | undefined, result?: unknown) => void;

function sleepFor(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

/** Stops every process given, at the same time. */
export async function stopAll(processes: BenchProcess[]): Promise<void> {
  await Promise.all(processes.map((process) => process.stop()));
}
