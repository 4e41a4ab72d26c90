import { Aedes } from 'aedes';
import { createServer } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';

/** An in-process aedes broker: MQTT 3.1.1 only, no `$share`. */
export interface AedesBroker {
  /** `mqtt://127.0.0.1:PORT`. */
  readonly url: string;
  readonly port: number;
  /** Disconnects every client and stops listening. Safe to call twice. */
  close(): Promise<void>;
}

/** Starts aedes 1.x on a free loopback port. */
export async function startAedes(): Promise<AedesBroker> {
  const broker = await Aedes.createBroker();
  const sockets = new Set<Socket>();

  const server = createServer((socket) => {
    // Nagle's delay costs ~88 ms per QoS 1 round trip (measured).
    socket.setNoDelay(true);
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    broker.handle(socket);
  });

  const port = await listenOnLoopback(server);
  let closing: Promise<void> | undefined;

  const close = (): Promise<void> => {
    closing ??= closeAll(server, broker, sockets);
    return closing;
  };

  return { url: `mqtt://127.0.0.1:${port}`, port, close };
}

function listenOnLoopback(server: Server): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

async function closeAll(
  server: Server,
  broker: Aedes,
  sockets: Set<Socket>,
): Promise<void> {
  // server.close() only resolves once every connection has ended, so the
  // broker must drop its clients first.
  const serverClosed = new Promise<void>((resolve) => {
    server.close(() => resolve());
  });
  await new Promise<void>((resolve) => broker.close(() => resolve()));

  for (const socket of sockets) socket.destroy();
  await serverClosed;
}
