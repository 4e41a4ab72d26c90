import { createServer, type AddressInfo, type Socket } from 'node:net';

/** An aedes broker inside this process: MQTT 3.1.1, no `$share`. */
export interface InProcessBroker {
  /** `mqtt://127.0.0.1:PORT`. */
  url: string;
  /** Disconnects every client, then stops listening; safe to call twice. */
  close(): Promise<void>;
}

/**
 * Starts aedes on a free loopback port. It is loaded only here, so that a
 * sample run against a real broker (MQTT_URL) does not need it installed.
 */
export async function startInProcessBroker(): Promise<InProcessBroker> {
  const { Aedes } = await import('aedes');
  const broker = await Aedes.createBroker();
  const sockets = new Set<Socket>();

  const server = createServer((socket) => {
    // Without it, each QoS 1 round trip waits ~90 ms on Nagle's algorithm.
    socket.setNoDelay(true);
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    broker.handle(socket);
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= new Promise<void>((resolve) => {
      // server.close() waits for every connection, so clients go first.
      server.close(() => resolve());
      broker.close(() => sockets.forEach((socket) => socket.destroy()));
    });
    return closing;
  };

  return { url: `mqtt://127.0.0.1:${port}`, close };
}
