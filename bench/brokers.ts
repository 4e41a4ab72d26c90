import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

import { startAedes } from '../test/support/aedes.js';
import { startMosquitto } from '../test/support/mosquitto.js';
import type { BrokerKind, BrokerSettings } from './ipc.js';
import type { BenchPlan } from './plan.js';

/**
 * The two brokers of the bench, started with the test support helpers:
 * Mosquitto as a process on a free port, aedes inside the bench's parent.
 */

export interface RunningBroker {
  settings: BrokerSettings;
  /** CPU time the broker has used so far, in ms. */
  readCpuMs(): number;
  close(): Promise<void>;
}

const CLOCK_TICKS_PER_SECOND = readClockTicks();

function readClockTicks(): number {
  const run = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  return Number.parseInt(run.stdout ?? '', 10) || 100;
}

/** User and system time of a process from /proc (Linux), in ms. */
function readProcessCpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name, in parentheses, may hold spaces: count after it.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    return (ticks * 1000) / CLOCK_TICKS_PER_SECOND;
  } catch {
    return Number.NaN;
  }
}

function readOwnCpuMs(): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1000;
}

export async function startBroker(
  kind: BrokerKind,
  plan: BenchPlan,
): Promise<RunningBroker> {
  if (kind === 'mosquitto') {
    // Its config sets set_tcp_nodelay: Nagle would cost 88 ms a task.
    const broker = await startMosquitto({ maxInflight: plan.maxInflight });
    return {
      settings: {
        kind,
        url: broker.url,
        hasSharedSubscriptions: true,
        protocolVersion: 5,
      },
      readCpuMs: () => readProcessCpuMs(broker.pid),
      close: () => broker.stop(),
    };
  }

  const broker = await startAedes();
  return {
    settings: {
      kind,
      url: broker.url,
      hasSharedSubscriptions: false,
      protocolVersion: 4,
    },
    // aedes runs in this process, which otherwise only waits on children.
    readCpuMs: readOwnCpuMs,
    close: () => broker.close(),
  };
}

function describeMemoryRun(plan: BenchPlan, kind: BrokerKind): string {
  if (!plan.memoryBrokers.includes(kind)) {
    return 'not on this broker (--full adds it)';
  }

  const all = plan.memoryTransports.length === 3;
  return all
    ? 'every transport; it also gives the 1-caller tasks/s'
    : 'AetherMagic only (--full: every transport); it also gives its ' +
        '1-caller tasks/s';
}

/** The heading and notes of a broker's table. */
export function describeBroker(
  kind: BrokerKind,
  versions: Record<string, string>,
  plan: BenchPlan,
) {
  const common = [
    '1 KiB payload; requests and raw replies at QoS 1; TCP_NODELAY on ' +
      'every client; everything on 127.0.0.1.',
    'Nest MQTT replies are QoS 0 (Nest publishes them without options) on ' +
      'one reply topic per pattern that every caller receives.',
    'CPU per task: CPU time of the caller, the worker and the broker ' +
      'over the 1-caller run, divided by its tasks.',
    `The 100,000-task heap run: ${describeMemoryRun(plan, kind)}.`,
  ];
  if (kind === 'mosquitto') {
    const inflight = plan.maxInflight ?? 'default 20';
    return {
      title:
        `Mosquitto ${versions.mosquitto} (set_tcp_nodelay, ` +
        `max_inflight_messages ${inflight}), MQTT 5, workers in a $share group`,
      notes: [
        ...common,
        'One worker process for latency, throughput and progress; 1, 2 and ' +
          '4 for scaling (16 in flight, one 20 ms slot per worker).',
      ],
    };
  }

  return {
    title:
      `aedes ${versions.aedes}, in-process in the bench's parent, ` +
      'MQTT 3.1.1, no $share',
    notes: [
      ...common,
      "AetherServer runs groupMode 'claim'; AetherClient falls back to " +
        '3.1.1 by itself.',
      'raw MQTT.js and Nest MQTT: protocolVersion 4, one worker on a plain ' +
        'subscription (no scaling).',
    ],
  };
}
