import { NestFactory } from '@nestjs/core';

import {
  AetherClient,
  AetherServer,
  type AetherEvent,
} from '../../lib/index.js';
import type { BrokerSettings, TaskName } from '../ipc.js';
import type { BenchInput } from '../workload.js';
import { createWorkerModule } from './nest-controllers.js';
import {
  getBenchClientId,
  getNestPattern,
  type BenchCaller,
  type BenchWorker,
  type Peer,
} from './peer.js';

// Long enough never to end a bench task; a stuck task shows as unfinished.
const CALL_TIMEOUT_MS = 60_000;

class AetherBenchCaller implements BenchCaller {
  constructor(private readonly client: AetherClient) {}

  call(task: TaskName, input: BenchInput): Promise<number> {
    return new Promise((resolve, reject) => {
      let events = 0;
      let failure: unknown;
      this.client.send(getNestPattern(task), input).subscribe({
        next: (event: AetherEvent) => {
          events += 1;
          if (event.type === 'complete' && !event.success) {
            failure = event.data;
          }
        },
        error: reject,
        complete: () =>
          failure === undefined ? resolve(events) : reject(failure),
      });
    });
  }

  close(): Promise<void> {
    return this.client.close();
  }
}

/** The transport under test: AetherClient and AetherServer, as users run. */
export const aetherPeer: Peer = {
  async createCaller(broker: BrokerSettings, index: number) {
    // No protocolVersion on purpose: on aedes the client falls back to
    // MQTT 3.1.1 by itself, as it would for a user.
    const client = new AetherClient({
      url: broker.url,
      clientId: getBenchClientId('caller', index),
      timeout: CALL_TIMEOUT_MS,
    });
    await client.connect();
    return new AetherBenchCaller(client);
  },

  async startWorker(broker: BrokerSettings, index: number, tasks: TaskName[]) {
    // aedes 1.x grants `$share` and never delivers on it, so its workers
    // must be told to use claim mode (see README, group modes).
    const strategy = new AetherServer({
      url: broker.url,
      clientId: getBenchClientId('worker', index),
      groupMode: broker.hasSharedSubscriptions ? 'shared' : 'claim',
    });
    const app = await NestFactory.createMicroservice(
      createWorkerModule('aether', tasks),
      { strategy, logger: ['error'] },
    );
    await app.listen();
    return { close: () => app.close() } satisfies BenchWorker;
  },
};
