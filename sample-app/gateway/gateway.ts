import type { INestApplication, LogLevel } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { AddressInfo } from 'node:net';

import type { AetherClientOptions } from '../../lib/index.js';
import { GatewayModule } from './gateway.module.js';

export interface StartedGateway {
  app: INestApplication;
  /** `http://127.0.0.1:PORT`. */
  url: string;
}

export interface GatewayOptions {
  client: AetherClientOptions;
  /** 0 picks a free port. */
  port: number;
  logLevels?: LogLevel[];
}

/** Starts the HTTP gateway on loopback; close it with `app.close()`. */
export async function startGateway(
  options: GatewayOptions,
): Promise<StartedGateway> {
  const app = await NestFactory.create(GatewayModule.forRoot(options.client), {
    logger: options.logLevels,
  });

  await app.listen(options.port, '127.0.0.1');
  const { port } = app.getHttpServer().address() as AddressInfo;
  return { app, url: `http://127.0.0.1:${port}` };
}
