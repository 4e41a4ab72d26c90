import { startAedes } from './aedes.js';
import { startMosquitto } from './mosquitto.js';

/**
 * The two brokers every transport test runs against: Mosquitto with
 * shared subscriptions, and the in-process aedes without them, where the
 * workers use claim mode.
 */
export interface TestBroker {
  name: string;
  url: string;
  groupMode: 'shared' | 'claim';
  close(): Promise<void>;
}

export const BROKER_KINDS = ['mosquitto', 'aedes'] as const;
export type BrokerKind = (typeof BROKER_KINDS)[number];

export async function startBroker(kind: BrokerKind): Promise<TestBroker> {
  if (kind === 'mosquitto') {
    const broker = await startMosquitto();
    return {
      name: kind,
      url: broker.url,
      groupMode: 'shared',
      close: () => broker.stop(),
    };
  }

  const broker = await startAedes();
  return {
    name: kind,
    url: broker.url,
    groupMode: 'claim',
    close: () => broker.close(),
  };
}
