import {
  Inject,
  Logger,
  Module,
  type DynamicModule,
  type OnApplicationBootstrap,
} from '@nestjs/common';
import { ClientsModule } from '@nestjs/microservices';

import { AetherClient, type AetherClientOptions } from '../../lib/index.js';
import { AETHER_CLIENT } from '../shared/scan.contract.js';
import { ScanController } from './scan.controller.js';

@Module({})
export class GatewayModule implements OnApplicationBootstrap {
  private readonly logger = new Logger(GatewayModule.name);

  constructor(@Inject(AETHER_CLIENT) private readonly aether: AetherClient) {}

  static forRoot(options: AetherClientOptions): DynamicModule {
    return {
      module: GatewayModule,
      imports: [
        ClientsModule.register([
          { name: AETHER_CLIENT, customClass: AetherClient, options },
        ]),
      ],
      controllers: [ScanController],
    };
  }

  // Connecting now, rather than on the first request, makes a wrong URL
  // fail the start instead of the first user's scan.
  async onApplicationBootstrap(): Promise<void> {
    await this.aether.connect();
    this.logger.log(`Connected to the broker as ${this.aether.clientId}`);
  }
}
