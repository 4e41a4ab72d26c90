/**
 * The description of who may do what, from which an `acl_file` for
 * Mosquitto is written (see docs/access-rights.md).
 */

/** One union (project) and the broker users that work in it. */
export interface AclDescription {
  /**
   * The union: the first level of every topic, so the rights of one union
   * never reach another. Clients that set no union use `default`.
   */
  union: string;
  /** Broker user name (as in the password file) to what it may do. */
  users: Record<string, AclUser>;
}

/** What one broker user does in a union. Give at least one grant. */
export interface AclUser {
  /** Tasks this user's clients send (AetherClient, Python callers). */
  calls?: TaskGrant[];
  /** Tasks this user's clients serve (AetherServer, Python workers). */
  performs?: TaskGrant[];
}

/** One task, or every task of a job, as a caller or worker sees it. */
export interface TaskGrant {
  job: string;
  /** The task, or `'*'` for every task of the job. */
  task: string | '*';
  /**
   * The context level of the topics.
   * @default any context (`+` in the filters); `'*'` means the same
   */
  context?: string;
}
