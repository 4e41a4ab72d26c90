import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { describeBroker, startBroker } from './brokers.js';
import {
  TRANSPORT_TITLES,
  type BrokerKind,
  type TransportName,
} from './ipc.js';
import {
  describeMachine,
  describeVersions,
  measureIdleLoad,
  warnIfBusy,
} from './machine.js';
import { readPlan, type BenchPlan } from './plan.js';
import {
  findProfiles,
  formatSummary,
  summariseProfile,
} from './profile-summary.js';
import { buildRows, formatTable, type BrokerTable } from './report.js';
import { runTransport, type TransportResult } from './scenarios.js';
import { checkTargets, formatTargets, type TargetCheck } from './targets.js';

/**
 * `npm run bench`: this transport against raw MQTT.js and Nest's MQTT
 * transport, on Mosquitto and on the in-process aedes, each side in its own
 * processes. Prints a table per broker and writes bench/results.json.
 */

const RESULTS_FILE = fileURLToPath(
  new URL('../../bench/results.json', import.meta.url),
);

async function measureBroker(
  plan: BenchPlan,
  kind: BrokerKind,
  versions: Record<string, string>,
): Promise<BrokerTable> {
  const broker = await startBroker(kind, plan);
  const results: TransportResult[] = [];
  try {
    for (const transport of plan.transports) {
      const startedAt = Date.now();
      results.push(
        await runTransport(plan, broker.settings, transport, () =>
          broker.readCpuMs(),
        ),
      );
      const seconds = ((Date.now() - startedAt) / 1000).toFixed(1);
      console.log(
        `  ${kind}: ${TRANSPORT_TITLES[transport]} done (${seconds} s)`,
      );
    }
  } finally {
    await broker.close();
  }

  return { broker: kind, ...describeBroker(kind, versions, plan), results };
}

function printProfiles(dir: string, transports: TransportName[]): void {
  for (const transport of transports) {
    for (const role of ['caller', 'worker']) {
      const title = `${TRANSPORT_TITLES[transport]} ${role}`;
      for (const file of findProfiles([join(dir, transport, role)])) {
        console.log(`\n${formatSummary(summariseProfile(file), title)}`);
      }
    }
  }
}

async function main(): Promise<void> {
  const plan = readPlan(process.argv.slice(2));
  const machine = describeMachine();
  const versions = describeVersions();
  const startedAt = Date.now();
  const busyAtStart = await measureIdleLoad();
  const { cpus, cpuModel, memoryGb, node } = machine;
  console.log(
    `AetherMagic bench (${plan.mode}): ${cpus} x ${cpuModel}, ` +
      `${memoryGb} GB, Node ${node}`,
  );
  warnIfBusy(busyAtStart);
  if (plan.profileDir) {
    mkdirSync(plan.profileDir, { recursive: true });
  }

  const tables: BrokerTable[] = [];
  const targets: TargetCheck[] = [];
  for (const kind of plan.brokers) {
    const table = await measureBroker(plan, kind, versions);
    const rows = buildRows(table);
    const checks = checkTargets(table);
    console.log(`\n${formatTable(table, rows)}\n\n${formatTargets(checks)}\n`);
    tables.push(table);
    targets.push(...checks);
  }

  const seconds = (Date.now() - startedAt) / 1000;
  writeFileSync(
    RESULTS_FILE,
    JSON.stringify(
      {
        date: new Date().toISOString(),
        mode: plan.mode,
        durationSeconds: Math.round(seconds),
        machine,
        busyAtStart,
        versions,
        plan,
        tables: tables.map((table) => ({ ...table, rows: buildRows(table) })),
        targets,
      },
      null,
      2,
    ),
  );
  console.log(`Wrote ${RESULTS_FILE} after ${seconds.toFixed(0)} s.`);

  if (plan.profileDir) {
    printProfiles(plan.profileDir, plan.transports);
  }

  const hasFailures = tables.some((table) =>
    table.results.some((result) => result.failures.length > 0),
  );
  process.exit(hasFailures ? 1 : 0);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
