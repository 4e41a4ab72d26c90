import type { AetherConnectionOptions, GroupMode } from '../../lib/index.js';

const GROUP_MODES: readonly GroupMode[] = ['auto', 'shared', 'claim'];
const CONNECT_TIMEOUT_MS = 10_000;

/**
 * The broker settings of every process of the sample, from the
 * environment, so that the parent can hand them to the workers it forks.
 * Unset variables leave the transport's own defaults in place.
 */
export function readConnectionOptions(
  env: NodeJS.ProcessEnv = process.env,
): AetherConnectionOptions {
  return {
    url: env.MQTT_URL || undefined,
    union: env.AETHER_UNION || undefined,
    protocolVersion: readProtocolVersion(env.AETHER_PROTOCOL_VERSION),
    // A wrong MQTT_URL should say so before the demo gives up waiting for
    // its workers (20 s), not after MQTT.js's 30 s.
    connectTimeout: CONNECT_TIMEOUT_MS,
  };
}

export function readGroupMode(
  env: NodeJS.ProcessEnv = process.env,
): GroupMode | undefined {
  const value = env.AETHER_GROUP_MODE;
  if (!value) return undefined;

  if (!GROUP_MODES.includes(value as GroupMode)) {
    throw new Error(
      `AETHER_GROUP_MODE is "${value}"; set it to one of ` +
        `${GROUP_MODES.join(', ')}, or leave it unset for auto.`,
    );
  }

  return value as GroupMode;
}

function readProtocolVersion(value: string | undefined): 4 | 5 | undefined {
  if (!value) return undefined;
  if (value === '4' || value === '5') return Number(value) as 4 | 5;

  throw new Error(
    `AETHER_PROTOCOL_VERSION is "${value}"; set it to 4 (MQTT 3.1.1) or ` +
      `5, or leave it unset for 5.`,
  );
}
