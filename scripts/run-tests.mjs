// Runs every compiled test under dist/test against real brokers. The
// brokers are not mocked, so their absence is a failure that says what to
// install, never a skip.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const requirements = [
  {
    what: 'Mosquitto',
    isPresent: () => existsSync('/usr/sbin/mosquitto'),
    install: 'apt-get install -y mosquitto',
  },
  {
    what: "Python's paho-mqtt (for the AetherMagic interop tests)",
    isPresent: () =>
      spawnSync('/usr/bin/python3', ['-c', 'import paho.mqtt']).status === 0,
    install: 'apt-get install -y python3-paho-mqtt',
  },
];

const missing = requirements.filter((requirement) => !requirement.isPresent());
for (const requirement of missing) {
  console.error(
    `${requirement.what} is required by the tests and is missing. ` +
      `Install it with: ${requirement.install}`,
  );
}

if (missing.length > 0) {
  process.exit(1);
}

// Node 20 takes every .js file under a folder named "test" for a test
// file, support modules included; so name the test files one by one.
function findTestFiles(folder) {
  return readdirSync(folder, { withFileTypes: true })
    .flatMap((entry) => {
      const path = join(folder, entry.name);
      if (entry.isDirectory()) {
        return findTestFiles(path);
      }

      return entry.name.endsWith('.test.js') ? [path] : [];
    })
    .sort();
}

const named = process.argv.slice(2);
const files = named.length > 0 ? named : findTestFiles('dist/test');
const result = spawnSync(
  process.execPath,
  [
    '--test',
    '--test-timeout=120000',
    '--test-reporter=spec',
    '--test-reporter-destination=stdout',
    '--test-reporter=./scripts/summary-reporter.mjs',
    '--test-reporter-destination=stdout',
    ...files,
  ],
  { stdio: 'inherit' },
);

process.exit(result.status ?? 1);
