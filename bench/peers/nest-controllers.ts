import { Controller, Module, type Type } from '@nestjs/common';
import { Ctx, MessagePattern, Payload } from '@nestjs/microservices';
import { from, type Observable } from 'rxjs';

import { AetherContext } from '../../lib/index.js';
import type { TaskName } from '../ipc.js';
import {
  countTask,
  getStatusSteps,
  isSlowTask,
  runSlowTask,
  type BenchInput,
} from '../workload.js';
import { getNestPattern } from './peer.js';

/**
 * The bench's Nest controllers, shared by AetherServer and Nest's own
 * ServerMqtt: the same handlers, so only the transport differs. The one
 * exception is progress, which each transport streams its own way.
 */

@Controller()
class EchoController {
  @MessagePattern(getNestPattern('echo'))
  echo(@Payload() input: BenchInput): BenchInput {
    countTask('echo');
    return input;
  }
}

@Controller()
class AetherProgressController {
  @MessagePattern(getNestPattern('progress'))
  async progress(
    @Payload() input: BenchInput,
    @Ctx() context: AetherContext,
  ): Promise<BenchInput> {
    countTask('progress');
    for (const progress of getStatusSteps()) {
      await context.status(progress, {});
    }

    return input;
  }
}

/**
 * Nest's MQTT transport sends one reply per value of a returned
 * Observable, so ten small values and then the input make the same ten
 * statuses and one completion on the wire.
 */
@Controller()
class MqttProgressController {
  @MessagePattern(getNestPattern('progress'))
  progress(@Payload() input: BenchInput): Observable<unknown> {
    countTask('progress');
    const statuses = getStatusSteps().map((progress) => ({ progress }));
    return from([...statuses, input]);
  }
}

/** Decorators are static, so each slow task name gets its own class. */
function createSlowController(task: TaskName): Type {
  @Controller()
  class SlowController {
    @MessagePattern(getNestPattern(task))
    slow(@Payload() input: BenchInput): Promise<BenchInput> {
      countTask(task);
      return runSlowTask(input);
    }
  }

  return SlowController;
}

/** A module with a controller for each task this worker serves. */
export function createWorkerModule(
  transport: 'aether' | 'nest',
  tasks: TaskName[],
): Type {
  const progress =
    transport === 'aether' ? AetherProgressController : MqttProgressController;
  const controllers = tasks.map((task) => {
    if (task === 'echo') return EchoController;
    if (task === 'progress') return progress;
    if (isSlowTask(task)) return createSlowController(task);
    throw new Error(`The bench has no handler for the task "${task}".`);
  });

  class BenchWorkerModule {}
  Module({ controllers })(BenchWorkerModule);
  return BenchWorkerModule;
}
