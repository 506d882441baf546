/**
 * The errors a command may throw on purpose. `main.ts` prints their message as one line,
 * `queuectl: <message>`, and exits with `exitCode`; anything else is a bug and is printed with its
 * stack. Messages name the thing, the reason and the next step.
 */

/** Base of every deliberate error. */
export class QueuectlError extends Error {
  readonly exitCode: number = 1;
}

/** The command line itself is wrong: unknown flag, bad value, missing argument. Exit 2. */
export class UsageError extends QueuectlError {
  override readonly exitCode = 2;
}

/** The command was well formed but cannot be done: store unreachable, file unreadable. Exit 1. */
export class UserError extends QueuectlError {}

/** A job or other named thing does not exist. Exit 1. */
export class NotFoundError extends UserError {}

/** The thing exists but is in a state that forbids the request. Exit 1. */
export class ConflictError extends UserError {}

/** The store cannot be used as it is (corrupt, newer schema, read-only). Exit 1. */
export class StoreError extends UserError {}
