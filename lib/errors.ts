/**
 * The errors a command may throw on purpose. `main.ts` prints their message as one line,
 * `queuectl: <message>`, and exits with `exitCode`; anything else is a bug and is printed with its
 * stack. Messages name the thing, the reason and the next step.
 */

/** Base of every deliberate error. */
export class QueuectlError extends Error {
  get exitCode(): number {
    return 1;
  }
}

/** The command line itself is wrong: unknown flag, bad value, missing argument. Exit 2. */
export class UsageError extends QueuectlError {
  override get exitCode(): number {
    return 2;
  }
}

/** The command was well formed but cannot be done: store unreachable, file unreadable. Exit 1. */
export class UserError extends QueuectlError {}

/** A job or other named thing does not exist. Exit 1. */
export class NotFoundError extends UserError {}

/** The thing exists but is in a state that forbids the request. Exit 1. */
export class ConflictError extends UserError {}

/**
 * What is wrong with a store, for callers to switch on (never on the message): `busy` (locked
 * too long), `full` (no space), `io` (a read or write failed), `unreachable` (no connection) may
 * pass by themselves and are retried by workers; the others need a person.
 */
export type StoreErrorKind =
  | "busy"
  | "full"
  | "io"
  | "unreachable"
  | "read_only"
  | "corrupt"
  | "not_ours"
  | "too_new"
  | "replaced"
  | "denied"
  | "missing"
  | "invalid";

/**
 * The store cannot be used as it is (corrupt, newer schema, read-only, unreachable): exit 1; its
 * location is malformed (`invalid`): exit 2.
 */
export class StoreError extends UserError {
  constructor(message: string, readonly kind: StoreErrorKind) {
    super(message);
  }

  /** A malformed location (`invalid`) is a usage mistake: exit 2, as a bad flag value. */
  override get exitCode(): number {
    return this.kind === "invalid" ? 2 : 1;
  }

  /** Whether waiting and trying again may help (a lock, a full disk, a lost connection). */
  get transient(): boolean {
    return this.kind === "busy" || this.kind === "full" || this.kind === "io" ||
      this.kind === "unreachable";
  }
}
