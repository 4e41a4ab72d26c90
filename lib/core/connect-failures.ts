import { CHECK_CLIENT_ID, ConnectionRefusedError } from './errors.js';

/**
 * How a failed connect reads to the user: a refusal that no retry can
 * mend, ended at once with what to check, or a silence whose last socket
 * error says where to look.
 */

// MQTT 5 reason codes (MQTT 5.0 spec, 2.4) and MQTT 3.1.1 return codes
// (3.2.2.3) that mean "this client will never be let in": for its
// credentials, or for its client id.
const CREDENTIAL_REFUSALS = new Set([4, 5, 134, 135, 138, 140]);
const CLIENT_ID_REFUSALS = new Set([2, 133]);
// "Unacceptable protocol version" (3.1.1) and "unsupported" (MQTT 5).
const UNSUPPORTED_PROTOCOL_CODES = new Set([1, 132]);

// Socket errors that mean nothing answered at that address, and those of
// a TLS handshake, as MQTT.js passes them on from Node.
const NETWORK_ERRORS =
  /ECONNREFUSED|ENOTFOUND|EHOSTUNREACH|ETIMEDOUT|EAI_AGAIN/;
const TLS_ERRORS = /certificate|SSL|TLS|self.signed|alert/i;

export function isUnsupportedProtocol(code: number | undefined): boolean {
  return code !== undefined && UNSUPPORTED_PROTOCOL_CODES.has(code);
}

/** The error for a CONNACK refusal, or undefined if a retry may help. */
export function readRefusal(
  url: string,
  code: number | undefined,
  message: string,
): ConnectionRefusedError | undefined {
  if (code === undefined) {
    return undefined;
  }

  if (CLIENT_ID_REFUSALS.has(code)) {
    return new ConnectionRefusedError(url, message, CHECK_CLIENT_ID, true);
  }

  return CREDENTIAL_REFUSALS.has(code)
    ? new ConnectionRefusedError(url, message)
    : undefined;
}

/** No CONNACK in time: what the last socket error says to check. */
export function describeSilence(
  url: string,
  connectTimeout: number,
  lastError: string | undefined,
): ConnectionRefusedError {
  const why =
    `no answer within ${connectTimeout} ms` +
    (lastError ? ` (last error: ${lastError})` : '');
  const nextStep = describeNextStep(lastError ?? '', connectTimeout);
  return new ConnectionRefusedError(url, why, nextStep);
}

function describeNextStep(lastError: string, connectTimeout: number) {
  if (NETWORK_ERRORS.test(lastError)) {
    return (
      `Is a broker running there? Check the url option (or MQTT_URL) ` +
      `and that the broker listens on that host and port.`
    );
  }

  if (TLS_ERRORS.test(lastError)) {
    return (
      `Check the TLS options: ca must be the PEM text of the CA that ` +
      `signed the broker's certificate, and cert and key the client's.`
    );
  }

  return (
    `Check that the url points at an MQTT listener, or raise ` +
    `connectTimeout (${connectTimeout} ms) for a slow broker.`
  );
}
