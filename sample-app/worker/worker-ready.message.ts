/** What a forked worker tells its parent once it takes tasks. */
export interface WorkerReadyMessage {
  type: 'ready';
  /** The worker's MQTT client id: callers see it in every reply. */
  workerId: string;
  pid: number;
}

export function isWorkerReadyMessage(
  message: unknown,
): message is WorkerReadyMessage {
  const fields = message as Partial<WorkerReadyMessage> | null;
  return fields?.type === 'ready' && typeof fields.workerId === 'string';
}
