// The gateway on its own, for workers started elsewhere: PORT (default
// 3000) on 127.0.0.1, broker settings as the workers take them.
import 'reflect-metadata';

import { Logger } from '@nestjs/common';

import { readConnectionOptions } from '../shared/env-options.js';
import { SCAN_TIMEOUT_MS } from '../shared/scan.contract.js';
import { startGateway } from './gateway.js';

const logger = new Logger('ScanGateway');
const DEFAULT_PORT = 3000;

async function main(): Promise<void> {
  const { app, url } = await startGateway({
    client: { ...readConnectionOptions(), timeout: SCAN_TIMEOUT_MS },
    port: Number(process.env.PORT || DEFAULT_PORT),
  });
  app.enableShutdownHooks(['SIGINT', 'SIGTERM']);
  logger.log(`Serving ${url}: try curl -N "${url}/scan?path=$PWD"`);
}

main().catch((error: unknown) => {
  logger.error('The gateway could not start', error);
  process.exit(1);
});
