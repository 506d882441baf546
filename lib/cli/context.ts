/**
 * What every command shares: the `--db` and `--json` flags, opening the store for one call, and
 * parsers for flag values that raise `UsageError` with a message naming the flag.
 */
import type { CommandContext } from "@stricli/core";
import { parseInteger } from "../config.ts";
import { parseDurationMs } from "../duration.ts";
import { UsageError, UserError } from "../errors.ts";
import { JOB_STATES, type JobState } from "../job.ts";
import { isPostgresUrl, openStore, resolveDbPath } from "../store/open.ts";
import type { Store } from "../store/store.ts";

export type Context = CommandContext;

export interface DbFlags {
  db?: string;
}

export const dbFlag = {
  db: {
    kind: "parsed",
    parse: String,
    brief: "Database file or postgres:// URL [env QUEUECTL_DB; default: see queuectl --help]",
    optional: true,
    placeholder: "path",
  },
} as const;

export const jsonFlag = {
  json: { kind: "boolean", brief: "Print JSON instead of a table", default: false },
} as const;

/**
 * Opens the store named by `--db` (or the environment), runs `fn`, and always closes it. Commands
 * that only read pass `{ create: false }`: a missing database is then an error, not a new file.
 */
export async function withStore<T>(
  flags: DbFlags,
  fn: (store: Store, path: string) => Promise<T>,
  options: { create?: boolean } = {},
): Promise<T> {
  const path = resolveDbPath(flags.db);
  if (!isPostgresUrl(path) && isDirectory(path)) {
    // SQLite would only say "unable to open database file".
    throw new UserError(
      `${path} is a directory; the database is a file: pass --db ${
        path.replace(/\/$/, "")
      }/queue.db`,
    );
  }
  const store = await openStore(path, { create: options.create ?? true });
  try {
    return await fn(store, path);
  } finally {
    await store.close();
  }
}

function isDirectory(path: string): boolean {
  try {
    return Deno.statSync(path).isDirectory;
  } catch {
    return false; // missing: created on first use
  }
}

/** Parses an integer flag within bounds, read as config values are (`parseInteger`). */
export function intParser(flag: string, min: number, max: number) {
  return (text: string): number => {
    const n = parseInteger(text);
    if (n === null || n < min || n > max) {
      throw new UsageError(`--${flag} must be an integer between ${min} and ${max}, got "${text}"`);
    }
    return n;
  };
}

/** Parses a duration flag (`30`, `90s`, `5m`) into milliseconds. */
export function durationParser(flag: string) {
  return (text: string): number => {
    const ms = parseDurationMs(text);
    if (ms === null) {
      throw new UsageError(
        `--${flag} must be seconds or a duration like 90s, 5m, 2h, 7d; got "${text}"`,
      );
    }
    return ms;
  };
}

/** Parses a job state name. */
export function parseState(text: string): JobState {
  const s = text.trim().toLowerCase();
  if (!(JOB_STATES as readonly string[]).includes(s)) {
    throw new UsageError(`unknown state "${text}"; states are ${JOB_STATES.join(", ")}`);
  }
  return s as JobState;
}
