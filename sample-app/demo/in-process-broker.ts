import { createServer, type AddressInfo, type Socket } from 'node:net';

/** An aedes broker inside this process: MQTT 3.1.1, no `$share`. */
export interface InProcessBroker {
  /** `mqtt://127.0.0.1:PORT`. */
  readonly url: string;
  readonly port: number;
  /** Disconnects every client, then stops listening; safe to call twice. */
  close(): Promise<void>;
}

/**
 * Starts aedes on a free loopback port. It is loaded only here, so that a
 * sample run against a real broker (MQTT_URL) does not need it installed.
 * The tests and the bench start theirs with this too.
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
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;

  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      // server.close() calls back only once every connection has ended,
      // so the broker drops its clients first.
      const serverClosed = new Promise<void>((resolve) =>
        server.close(() => resolve()),
      );
      await new Promise<void>((resolve) => broker.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await serverClosed;
    })();
    return closing;
  };

  return { url: `mqtt://127.0.0.1:${port}`, port, close };
}
