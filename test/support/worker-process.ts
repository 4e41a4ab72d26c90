// A worker in a process of its own, for tests that kill one: forked with
// the broker URL and union, it serves 'jobs/hold' (holds the task for
// input.ms, 20 s by default) and sends its worker id on IPC once it
// listens.
import 'reflect-metadata';

import { Controller, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Ctx, MessagePattern, Payload } from '@nestjs/microservices';

import { AetherServer, type AetherContext } from '../../lib/index.js';

const LIFETIME_MS = 60_000;

@Controller()
class HoldController {
  @MessagePattern('jobs/hold')
  async hold(@Payload() input: { ms?: number }, @Ctx() ctx: AetherContext) {
    await ctx.status(10, { workerId: ctx.workerId });
    await new Promise((resolve) => setTimeout(resolve, input.ms ?? 20_000));
    return { workerId: ctx.workerId };
  }
}

@Module({ controllers: [HoldController] })
class HoldModule {}

const [url, union] = process.argv.slice(2);
const server = new AetherServer({ url, union });
const app = await NestFactory.createMicroservice(HoldModule, {
  strategy: server,
  logger: ['error'],
});
await app.listen();
process.send?.({ workerId: server.clientId });

// Never outlive the test that started it.
setTimeout(() => process.exit(0), LIFETIME_MS).unref();
process.on('disconnect', () => process.exit(0));
