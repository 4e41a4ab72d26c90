import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

/**
 * Reads a V8 `.cpuprofile` (from `node --cpu-prof`) and lists where the
 * time went: the functions with the most self time, and the share of each
 * part of the stack (this transport's lib/, MQTT.js, Nest, rxjs, Node, GC).
 *
 *   node dist/bench/profile-summary.js FILE_OR_FOLDER...
 */

interface ProfileNode {
  id: number;
  hitCount?: number;
  callFrame: {
    functionName: string;
    url: string;
    lineNumber: number;
  };
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
}

export interface SelfTime {
  name: string;
  where: string;
  part: string;
  ms: number;
  share: number;
}

export interface ProfileSummary {
  file: string;
  totalMs: number;
  byPart: { part: string; ms: number; share: number }[];
  top: SelfTime[];
  topInLib: SelfTime[];
}

const PARTS: [string, RegExp][] = [
  ['lib (this transport)', /\/dist\/lib\//],
  ['bench', /\/dist\/bench\//],
  ['mqtt.js', /node_modules\/(mqtt|mqtt-packet|bl|readable-stream)\//],
  ['nest', /node_modules\/@nestjs\//],
  ['rxjs', /node_modules\/rxjs\//],
  ['other packages', /node_modules\//],
  ['node', /^node:|^internal\//],
];

function getPart(frame: ProfileNode['callFrame']): string {
  if (!frame.url) {
    // (garbage collector), (idle), (program), (root)...
    return frame.functionName || '(native)';
  }

  return PARTS.find(([, pattern]) => pattern.test(frame.url))?.[0] ?? 'other';
}

function getWhere(frame: ProfileNode['callFrame']): string {
  const url = frame.url.replace(/^file:\/\/.*?\/(dist|node_modules)\//, '$1/');
  return url ? `${url}:${frame.lineNumber + 1}` : '';
}

export function summariseProfile(file: string, top = 15): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const totalHits = profile.nodes.reduce(
    (n, node) => n + (node.hitCount ?? 0),
    0,
  );
  const totalMs = (profile.endTime - profile.startTime) / 1000;
  const msPerHit = totalHits ? totalMs / totalHits : 0;

  const byFunction = new Map<string, SelfTime>();
  const byPart = new Map<string, number>();
  for (const node of profile.nodes) {
    const hits = node.hitCount ?? 0;
    if (hits === 0) continue;

    const frame = node.callFrame;
    const part = getPart(frame);
    const name = frame.functionName || '(anonymous)';
    const where = getWhere(frame);
    const key = `${name} ${where}`;
    const entry = byFunction.get(key) ?? { name, where, part, ms: 0, share: 0 };
    entry.ms += hits * msPerHit;
    byFunction.set(key, entry);
    byPart.set(part, (byPart.get(part) ?? 0) + hits * msPerHit);
  }

  const all = [...byFunction.values()]
    .map((entry) => ({ ...entry, share: entry.ms / totalMs }))
    .sort((a, b) => b.ms - a.ms);
  return {
    file,
    totalMs,
    byPart: [...byPart]
      .map(([part, ms]) => ({ part, ms, share: ms / totalMs }))
      .sort((a, b) => b.ms - a.ms),
    top: all.slice(0, top),
    topInLib: all.filter((entry) => entry.part.startsWith('lib')).slice(0, top),
  };
}

export function formatSummary(summary: ProfileSummary, title: string): string {
  const percent = (share: number) => `${(share * 100).toFixed(1)}%`.padStart(6);
  const line = (entry: SelfTime) =>
    `    ${percent(entry.share)} ${entry.ms.toFixed(0).padStart(6)} ms  ` +
    `${entry.name}  ${entry.where}`;

  return [
    `${title} (${summary.totalMs.toFixed(0)} ms profiled, ${summary.file})`,
    '  self time by part:',
    ...summary.byPart.map(
      (entry) =>
        `    ${percent(entry.share)} ${entry.ms.toFixed(0).padStart(6)} ms  ` +
        entry.part,
    ),
    '  top self time, everything:',
    ...summary.top.map(line),
    '  top self time in lib/:',
    ...summary.topInLib.map(line),
  ].join('\n');
}

/** Every `.cpuprofile` under the given files and folders. */
export function findProfiles(paths: string[]): string[] {
  return paths.flatMap((path) =>
    path.endsWith('.cpuprofile')
      ? [path]
      : readdirSync(path)
          .filter((name) => name.endsWith('.cpuprofile'))
          .map((name) => join(path, name)),
  );
}

const isMain = import.meta.url === pathToFileURL(process.argv[1] ?? '').href;
if (isMain) {
  const files = findProfiles(process.argv.slice(2));
  if (files.length === 0) {
    console.error(
      'No .cpuprofile given. Usage: node dist/bench/profile-summary.js ' +
        'FILE_OR_FOLDER... (make them with npm run bench -- --profile=DIR).',
    );
    process.exit(1);
  }

  for (const file of files) {
    console.log(formatSummary(summariseProfile(file), file));
  }
}
