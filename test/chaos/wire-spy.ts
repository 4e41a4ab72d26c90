import mqtt, { type MqttClient } from 'mqtt';

import { CHAOS_UNION } from './shared.js';

/**
 * Listens to every perform on the wire, on the task topics and in the
 * inboxes, and counts them per task key: a key sent more than once was
 * retried or re-sent after a reconnect. It misses what is sent while the
 * broker is down, so its counts are a floor.
 */
export class WireSpy {
  readonly performsByKey = new Map<string, number>();
  private client?: MqttClient;

  async start(url: string): Promise<void> {
    const client = mqtt.connect(url, {
      clientId: `chaos-spy-${process.pid}`,
      reconnectPeriod: 200,
    });
    this.client = client;
    client.on('message', (_topic, payload) => this.count(payload));
    client.on('error', () => {});

    await new Promise<void>((resolve) =>
      client.once('connect', () => resolve()),
    );
    await client.subscribeAsync(
      [`${CHAOS_UNION}/chaos/work/+/+/perform`, `${CHAOS_UNION}/inbox/+/+`],
      { qos: 0 },
    );
  }

  private count(payload: Buffer): void {
    const key = readPerformKey(payload);
    if (key !== undefined) {
      this.performsByKey.set(key, (this.performsByKey.get(key) ?? 0) + 1);
    }
  }

  async close(): Promise<void> {
    await this.client?.endAsync(true);
  }
}

function readPerformKey(payload: Buffer): string | undefined {
  // The flood sends huge and odd payloads; only small ones can be ours.
  if (payload.length > 4096) {
    return undefined;
  }

  try {
    const message = JSON.parse(payload.toString()) as {
      action?: unknown;
      data?: { key?: unknown };
    };
    const key = message?.data?.key;
    return message.action === 'perform' && typeof key === 'string'
      ? key
      : undefined;
  } catch {
    return undefined;
  }
}
