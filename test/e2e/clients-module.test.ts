import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import {
  Inject,
  Injectable,
  type INestApplicationContext,
} from '@nestjs/common';
import { ClientsModule } from '@nestjs/microservices';
import { Test } from '@nestjs/testing';

import { AetherClient, type AetherEvent } from '../../lib/index.js';
import { TaskController } from '../support/fixtures.js';
import { startMosquitto, type MosquittoBroker } from '../support/mosquitto.js';
import {
  collect,
  createUnion,
  getCompletion,
  startWorker,
  type StartedWorker,
} from '../support/nest-apps.js';

const AETHER = 'AETHER';

@Injectable()
class EchoService {
  constructor(@Inject(AETHER) private readonly aether: AetherClient) {}

  echo(input: unknown): Promise<AetherEvent[]> {
    return collect(this.aether.send('jobs/echo', input));
  }
}

describe('AetherClient through ClientsModule', () => {
  let broker: MosquittoBroker;
  let worker: StartedWorker;
  let union: string;

  before(async () => {
    broker = await startMosquitto();
    union = createUnion('c');
    worker = await startWorker({ url: broker.url, union }, [TaskController]);
  });

  after(async () => {
    await worker.app.close();
    await broker.stop();
  });

  async function callThrough(app: INestApplicationContext) {
    const completion = getCompletion(
      await app.get(EchoService).echo({ via: 'module' }),
    );
    assert.equal(completion.success, true);
    assert.deepEqual((completion.data as { input: unknown }).input, {
      via: 'module',
    });
  }

  it('is injected with register()', async () => {
    const module = await Test.createTestingModule({
      imports: [
        ClientsModule.register([
          {
            name: AETHER,
            customClass: AetherClient,
            options: { url: broker.url, union },
          },
        ]),
      ],
      providers: [EchoService],
    }).compile();
    const app = await module.init();

    await callThrough(app);
    assert.ok(app.get<AetherClient>(AETHER) instanceof AetherClient);
    await app.close();
  });

  it('is injected with registerAsync() and closed with the app', async () => {
    const module = await Test.createTestingModule({
      imports: [
        ClientsModule.registerAsync([
          {
            name: AETHER,
            useFactory: async () => ({
              customClass: AetherClient,
              options: { url: broker.url, union },
            }),
          },
        ]),
      ],
      providers: [EchoService],
    }).compile();
    const app = await module.init();
    app.enableShutdownHooks();

    await callThrough(app);
    const client = app.get<AetherClient>(AETHER);
    const statuses: string[] = [];
    client.status.subscribe((status) => statuses.push(status));
    await app.close();
    assert.equal(statuses.at(-1), 'closed');
  });
});
