export { AetherClient, type AetherPattern } from './nest/aether.client.js';
export { AetherContext } from './nest/aether.context.js';
export {
  AetherRecord,
  type AetherRecordOptions,
} from './nest/aether.record.js';
export {
  AetherServer,
  type AetherHandlerExtras,
} from './nest/aether.server.js';
export type { AetherStatusEvents } from './nest/status-emitter.js';

export { ConnectionStatus as AetherStatus } from './core/connection.js';
export {
  AetherError,
  AetherErrorCode,
  AetherFailureCode,
  ConnectionClosedError,
  ConnectionRefusedError,
  InvalidInputError,
  InvalidNameError,
  InvalidOptionsError,
  InvalidPatternError,
  NoWorkerError,
  NotAuthorizedError,
  PayloadTooLargeError,
  PublishFailedError,
  TaskTimeoutError,
  WorkerLostError,
  type FailureData,
} from './core/errors.js';
export type {
  AetherClientOptions,
  AetherConnectionOptions,
  AetherServerOptions,
  GroupMode,
} from './core/options.js';
export type { TaskPattern } from './core/pattern.js';
export type {
  AetherEvent,
  CompleteEvent,
  StatusEvent,
} from './core/pending-call.js';
export { getDefaultGroup } from './core/topics.js';

export { createMosquittoAcl } from './acl/mosquitto-acl.js';
export type { AclDescription, AclUser, TaskGrant } from './acl/acl.types.js';
