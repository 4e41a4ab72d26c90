import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

const CHAOS_SCRIPT = fileURLToPath(
  new URL('../chaos/chaos.js', import.meta.url),
);
// The short run takes 15-30 s on two cores; past this it is stuck.
const RUN_BOUND_MS = 110_000;

interface ScriptRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  output: string;
}

/** Runs the script in its own process, killed by pid past the bound. */
function runChaosScript(): Promise<ScriptRun> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CHAOS_SCRIPT], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk));

    const timer = setTimeout(() => child.kill('SIGKILL'), RUN_BOUND_MS);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, output });
    });
  });
}

test(
  'the short chaos run ends every task once, in time, and no worker dies',
  { timeout: RUN_BOUND_MS + 10_000 },
  async () => {
    const run = await runChaosScript();

    assert.match(run.output, /AetherMagic chaos, short run/, run.output);
    assert.match(run.output, /hung past their bound/, run.output);
    assert.match(run.output, /workers alive and serving/, run.output);
    assert.equal(run.signal, null, `killed past its bound:\n${run.output}`);
    assert.equal(run.code, 0, run.output);
  },
);
