#!/usr/bin/env node
import { readFileSync } from 'node:fs';

import { createMosquittoAcl } from '../lib/acl/mosquitto-acl.js';
import type { AclDescription } from '../lib/acl/mosquitto-acl.js';
import { AetherError } from '../lib/core/errors.js';

// Exit codes: 2 for anything wrong with the arguments or the description,
// so that scripts can tell a bad description from a crash (1).
const EXIT_OK = 0;
const EXIT_BAD_INPUT = 2;
const STDIN = '-';

const USAGE = `Usage: aethermagic-acl <description.json | ->

Prints a Mosquitto acl_file for AetherMagic callers and workers. The
description is a JSON file (or "-" to read standard input) holding one
union, or a list of them:

  {
    "union": "shop",
    "users": {
      "alice": { "calls": [{ "job": "worker", "task": "collect" }] },
      "bob": { "performs": [{ "job": "worker", "task": "*" }] }
    }
  }

"task": "*" grants every task of the job; "context" (optional) limits a
grant to one context. Save the output and point acl_file at it; see
docs/access-rights.md.

Options:
  -h, --help   print this help and exit

Exit status: 0 on success, 2 for bad arguments or a bad description.
`;

class UsageError extends Error {}

function main(args: string[]): number {
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(USAGE);
    return EXIT_OK;
  }

  try {
    const source = readSourceArgument(args);
    const description = parseDescription(readSource(source), source);
    process.stdout.write(createAcl(description, source));
    return EXIT_OK;
  } catch (error) {
    if (!(error instanceof UsageError)) {
      throw error;
    }

    process.stderr.write(`aethermagic-acl: ${error.message}\n`);
    return EXIT_BAD_INPUT;
  }
}

function readSourceArgument(args: string[]): string {
  const [source, ...extra] = args;
  if (source === undefined) {
    throw new UsageError(
      'give the description file (or "-" for standard input); ' +
        'see aethermagic-acl --help',
    );
  }

  if (extra.length > 0 || (source.startsWith('-') && source !== STDIN)) {
    const unexpected = extra[0] ?? source;
    throw new UsageError(
      `unexpected argument "${unexpected}": give one description file; ` +
        'see aethermagic-acl --help',
    );
  }

  return source;
}

function readSource(source: string): string {
  try {
    // File descriptor 0 reads standard input to its end, piped or not.
    return readFileSync(source === STDIN ? 0 : source, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'unknown error';
    throw new UsageError(
      `cannot read ${describeSource(source)} (${code}); check the path`,
    );
  }
}

function parseDescription(text: string, source: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new UsageError(
      `${describeSource(source)} is not valid JSON: ` +
        `${(error as Error).message}`,
    );
  }
}

function createAcl(description: unknown, source: string): string {
  try {
    // The generator checks every field itself, so the cast only passes the
    // parsed JSON on.
    return createMosquittoAcl(description as AclDescription);
  } catch (error) {
    if (!(error instanceof AetherError)) {
      throw error;
    }

    throw new UsageError(
      `${describeSource(source)} is not a valid description: ` +
        `${error.message} [${error.code}]`,
    );
  }
}

function describeSource(source: string): string {
  return source === STDIN ? 'standard input' : `"${source}"`;
}

process.exitCode = main(process.argv.slice(2));
