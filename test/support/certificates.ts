import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Paths of a PEM certificate and its unencrypted PEM private key. */
export interface CertificateFiles {
  /** Path of the certificate, signed by the test CA. */
  cert: string;
  /** Path of the private key (EC prime256v1, no passphrase). */
  key: string;
}

/**
 * A throwaway certificate authority with a server certificate for
 * `localhost` and `127.0.0.1`, for TLS tests against a local broker.
 */
export interface TlsMaterial {
  /** Folder holding every file below; removed when the process exits. */
  dir: string;
  /** Path of the CA certificate: give it to clients as `ca`. */
  caCert: string;
  /** Path of the CA private key. */
  caKey: string;
  /** Path of the server certificate (CN=localhost, SAN localhost and IP). */
  serverCert: string;
  /** Path of the server private key. */
  serverKey: string;
  /**
   * Issues a client certificate signed by the same CA. With Mosquitto's
   * `use_identity_as_username`, `commonName` becomes the username.
   */
  createClientCertificate(commonName: string): CertificateFiles;
}

const VALID_DAYS = '2';
const EC_KEY_OPTIONS = ['-newkey', 'ec', '-pkeyopt'];
const EC_CURVE = 'ec_paramgen_curve:prime256v1';
const SAFE_COMMON_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

const materialDirs = new Set<string>();

process.once('exit', () => {
  for (const dir of materialDirs) rmSync(dir, { recursive: true, force: true });
});

/**
 * Makes a CA and a server certificate with the `openssl` command in a new
 * temporary folder. EC keys keep it at a few tens of milliseconds.
 */
export function createTlsMaterial(): TlsMaterial {
  const dir = mkdtempSync(join(tmpdir(), 'aethermagic-tls-'));
  materialDirs.add(dir);

  // Mosquitto started as root drops to user `mosquitto` before it reads
  // these files, and mkdtemp makes the folder 0700.
  chmodSync(dir, 0o755);

  const caCert = join(dir, 'ca.crt');
  const caKey = join(dir, 'ca.key');
  createCertificateAuthority(caCert, caKey);

  const ca = { caCert, caKey };
  const server = issueCertificate(dir, ca, 'server', 'localhost', [
    'subjectAltName=DNS:localhost,IP:127.0.0.1',
    'extendedKeyUsage=serverAuth',
  ]);

  let clientCount = 0;
  const createClientCertificate = (commonName: string): CertificateFiles => {
    assertSafeCommonName(commonName);
    clientCount += 1;
    const baseName = `client-${clientCount}-${commonName}`;
    return issueCertificate(dir, ca, baseName, commonName, [
      'extendedKeyUsage=clientAuth',
    ]);
  };

  return {
    dir,
    caCert,
    caKey,
    serverCert: server.cert,
    serverKey: server.key,
    createClientCertificate,
  };
}

function createCertificateAuthority(cert: string, key: string): void {
  runOpenSsl([
    'req',
    '-x509',
    ...EC_KEY_OPTIONS,
    EC_CURVE,
    '-nodes',
    '-keyout',
    key,
    '-out',
    cert,
    '-days',
    VALID_DAYS,
    '-subj',
    '/CN=AetherMagic test CA',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);

  makeReadable(cert, key);
}

function issueCertificate(
  dir: string,
  ca: { caCert: string; caKey: string },
  baseName: string,
  commonName: string,
  extensions: string[],
): CertificateFiles {
  const key = join(dir, `${baseName}.key`);
  const request = join(dir, `${baseName}.csr`);
  const extensionFile = join(dir, `${baseName}.ext`);
  const cert = join(dir, `${baseName}.crt`);

  runOpenSsl([
    'req',
    '-new',
    ...EC_KEY_OPTIONS,
    EC_CURVE,
    '-nodes',
    '-keyout',
    key,
    '-out',
    request,
    '-subj',
    `/CN=${commonName}`,
  ]);

  writeFileSync(extensionFile, `${extensions.join('\n')}\n`);
  runOpenSsl([
    'x509',
    '-req',
    '-in',
    request,
    '-CA',
    ca.caCert,
    '-CAkey',
    ca.caKey,
    // A random serial avoids a shared .srl file between certificates.
    '-set_serial',
    `0x${randomBytes(16).toString('hex')}`,
    '-days',
    VALID_DAYS,
    '-extfile',
    extensionFile,
    '-out',
    cert,
  ]);

  makeReadable(cert, key);
  return { cert, key };
}

function runOpenSsl(args: string[]): void {
  try {
    execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (error) {
    throw openSslError(args, error);
  }
}

function openSslError(args: string[], cause: unknown): Error {
  const isMissing = (cause as NodeJS.ErrnoException).code === 'ENOENT';
  const stderr = String((cause as { stderr?: Buffer }).stderr ?? '').trim();

  const message = isMissing
    ? 'OpenSSL is required for the TLS tests, install it with ' +
      '`apt-get install -y openssl`.'
    : `openssl ${args[0]} failed: ${stderr || String(cause)}. ` +
      'Check that the installed OpenSSL supports EC keys (prime256v1).';

  return Object.assign(new Error(message, { cause }), {
    code: isMissing ? 'OPENSSL_MISSING' : 'OPENSSL_FAILED',
  });
}

function makeReadable(...files: string[]): void {
  // Test-only keys: Mosquitto started as root drops to the user
  // mosquitto, which must still read them.
  for (const file of files) chmodSync(file, 0o644);
}

function assertSafeCommonName(commonName: string): void {
  if (SAFE_COMMON_NAME.test(commonName)) return;

  throw Object.assign(
    new Error(
      `Client certificate name "${commonName}" is not allowed: use 1-64 ` +
        'letters, digits, dots, dashes or underscores, starting with a ' +
        'letter or digit.',
    ),
    { code: 'TLS_BAD_COMMON_NAME' },
  );
}
