import {
  Controller,
  Injectable,
  UseGuards,
  UseInterceptors,
  UsePipes,
  ValidationPipe,
  type CallHandler,
  type CanActivate,
  type NestInterceptor,
} from '@nestjs/common';
import {
  Ctx,
  EventPattern,
  MessagePattern,
  Payload,
  RpcException,
} from '@nestjs/microservices';
import { IsInt, IsString, Max, Min } from 'class-validator';
import { map, type Observable } from 'rxjs';

import type { AetherContext } from '../../lib/index.js';
import { delay } from './nest-apps.js';

/** What the handlers below did, for the tests to assert on. */
export const runs: Array<{ tid: string; workerId: string; group: string }> = [];
export const events: Array<{ input: unknown; workerId: string }> = [];
/** Audits that ran to their end, and whether they were cancelled. */
export const audits: Array<{ tid: string; aborted: boolean }> = [];

export function resetRecords(): void {
  runs.length = 0;
  events.length = 0;
  audits.length = 0;
}

function record(ctx: AetherContext): void {
  runs.push({ tid: ctx.tid, workerId: ctx.workerId, group: ctx.group });
}

export class ScoreInput {
  @IsString()
  name!: string;

  @IsInt()
  @Min(0)
  @Max(100)
  score!: number;
}

@Injectable()
class WrapInterceptor implements NestInterceptor {
  intercept(_context: unknown, next: CallHandler): Observable<unknown> {
    return next.handle().pipe(map((value) => ({ wrapped: value })));
  }
}

@Injectable()
class DenyGuard implements CanActivate {
  canActivate(): boolean {
    return false;
  }
}

/** The handlers of the transport tests, one per behaviour. */
@Controller()
export class TaskController {
  @MessagePattern('jobs/echo')
  async echo(@Payload() input: unknown, @Ctx() ctx: AetherContext) {
    record(ctx);
    await delay(5);
    return { input, workerId: ctx.workerId };
  }

  @MessagePattern('jobs/progress')
  async progress(
    @Payload() input: { steps: number },
    @Ctx() ctx: AetherContext,
  ) {
    record(ctx);
    for (let step = 1; step <= input.steps; step += 1) {
      await ctx.status((step * 100) / (input.steps + 1), { step });
      await delay(2);
    }

    return { steps: input.steps };
  }

  @MessagePattern('jobs/fail')
  fail(@Ctx() ctx: AetherContext) {
    record(ctx);
    throw new RpcException({ code: 'E_BROKEN', message: 'It broke.' });
  }

  @MessagePattern('jobs/crash')
  crash() {
    throw new Error('A bug in the handler.');
  }

  // Job names that are also levels of the inbox and offline topics.
  @MessagePattern('inbox/sort')
  sort(@Payload() input: number[]) {
    return [...input].sort((a, b) => a - b);
  }

  @MessagePattern('system/offline')
  offline() {
    return { offline: false };
  }

  /** Done at once here; the audit group's copy takes longer. */
  @MessagePattern('jobs/audited')
  audited(@Ctx() ctx: AetherContext) {
    record(ctx);
    return { done: true };
  }

  @MessagePattern('jobs/slow')
  async slow(@Ctx() ctx: AetherContext) {
    record(ctx);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 30_000);
      ctx.signal.addEventListener('abort', () => {
        clearTimeout(timer);
        resolve();
      });
    });
    return { aborted: ctx.signal.aborted };
  }

  @MessagePattern('jobs/validate')
  @UsePipes(
    new ValidationPipe({
      exceptionFactory: (errors) =>
        new RpcException({
          code: 'E_INVALID',
          message: errors.map((error) => error.property).join(', '),
        }),
    }),
  )
  validate(@Payload() input: ScoreInput) {
    return { name: input.name, score: input.score, isDto: true };
  }

  @MessagePattern('jobs/wrapped')
  @UseInterceptors(WrapInterceptor)
  wrapped(@Payload() input: unknown) {
    return input;
  }

  @MessagePattern('jobs/guarded')
  @UseGuards(DenyGuard)
  guarded() {
    return 'never';
  }

  // The explicit type argument picks EventPattern's untyped overload,
  // whose handlers may take a context after the data.
  @EventPattern<string>('jobs/notify')
  notify(@Payload() input: unknown, @Ctx() ctx: AetherContext) {
    events.push({ input, workerId: ctx.workerId });
  }
}

/** The same echo task, served in a group of its own. */
@Controller()
export class AuditController {
  @MessagePattern('jobs/echo', { group: 'audit' })
  audit(@Ctx() ctx: AetherContext) {
    record(ctx);
    return { audited: true };
  }

  // Its receipt and status come after the call has completed in the
  // default group: they must not make the caller cancel this copy.
  @MessagePattern('jobs/audited', { group: 'audit' })
  async auditSlowly(@Ctx() ctx: AetherContext) {
    record(ctx);
    await delay(100);
    await ctx.status(50);
    await delay(50);
    audits.push({ tid: ctx.tid, aborted: ctx.signal.aborted });
    return { audited: true };
  }
}
