import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';

/** Where and with what a bench ran, for results.json. */
export interface MachineInfo {
  cpus: number;
  cpuModel: string;
  memoryGb: number;
  node: string;
  platform: string;
}

export function describeMachine(): MachineInfo {
  const cores = cpus();
  return {
    cpus: cores.length,
    cpuModel: cores[0]?.model.trim() ?? 'unknown',
    memoryGb: Math.round((totalmem() / 1024 ** 3) * 10) / 10,
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
  };
}

// dist/bench/machine.js -> the project root.
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

const PACKAGES = [
  'mqtt',
  '@nestjs/core',
  '@nestjs/microservices',
  'aedes',
  'rxjs',
];

/** Versions of the packages measured, and of Mosquitto. */
export function describeVersions(): Record<string, string> {
  const versions: Record<string, string> = {
    aethermagic: readVersion(`${ROOT}package.json`),
  };
  for (const name of PACKAGES) {
    versions[name] = readVersion(`${ROOT}node_modules/${name}/package.json`);
  }

  versions.mosquitto = readMosquittoVersion();
  return versions;
}

function readVersion(file: string): string {
  try {
    const json = JSON.parse(readFileSync(file, 'utf8')) as { version?: string };
    return json.version ?? 'unknown';
  } catch {
    return 'not installed';
  }
}

// `mosquitto -h` prints "mosquitto version X.Y.Z" and exits non-zero.
// Debian installs it in /usr/sbin, which is not always on PATH.
function readMosquittoVersion(): string {
  for (const binary of ['/usr/sbin/mosquitto', 'mosquitto']) {
    const run = spawnSync(binary, ['-h'], { encoding: 'utf8' });
    const output = `${run.stdout ?? ''}${run.stderr ?? ''}`;
    const match = /mosquitto version (\S+)/.exec(output);
    if (match) return match[1];
  }

  return 'unknown';
}

// Share of all cpus busy before the start that earns a warning.
const BUSY_WARNING = 0.15;

/** Busy and total CPU time of the machine so far, from /proc/stat. */
function readMachineCpu(): { busy: number; total: number } | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0];
    const ticks = line.trim().split(/\s+/).slice(1).map(Number);
    const total = ticks.reduce((sum, tick) => sum + tick, 0);
    // The fourth and fifth numbers are idle and iowait.
    return { busy: total - ticks[3] - ticks[4], total };
  } catch {
    return undefined;
  }
}

/**
 * How busy the machine is before the bench starts anything, 0 to 1: other
 * work skews every number, so the bench says so up front. The load
 * average would also count a bench that has just ended.
 */
export async function measureIdleLoad(): Promise<number | undefined> {
  const before = readMachineCpu();
  await new Promise((resolve) => setTimeout(resolve, 500));
  const after = readMachineCpu();
  if (!before || !after || after.total === before.total) {
    return undefined;
  }

  return (after.busy - before.busy) / (after.total - before.total);
}

export function warnIfBusy(busyShare: number | undefined): void {
  if (busyShare !== undefined && busyShare > BUSY_WARNING) {
    console.warn(
      `Warning: the machine was ${(busyShare * 100).toFixed(0)}% busy ` +
        'before the bench started. Other processes skew the results; run ' +
        'it again on an idle machine before comparing.',
    );
  }
}
