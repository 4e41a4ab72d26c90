import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';

/**
 * Asks the kernel for a TCP port that is free on 127.0.0.1 right now.
 *
 * Used where a port must be written into a config before the program that
 * listens on it starts (Mosquitto). Another process could take the port in
 * between; on loopback in a test run that window is small enough.
 */
export function getFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);

    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close((error) => (error ? reject(error) : resolve(port)));
    });
  });
}
