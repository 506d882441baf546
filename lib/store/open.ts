/**
 * Finds where the data lives and opens the store for it. `--db PATH` > `QUEUECTL_DB` >
 * `$XDG_DATA_HOME/queuectl/queue.db` > `~/.local/share/queuectl/queue.db`. The directory is created
 * 0700 and the database file 0600 on the first write (`enqueue`, `worker start`, `config set`, …);
 * `init` is never required. Commands that only read refuse a missing database instead of creating
 * an empty one (`{ create: false }`).
 */
import { dirname, join, resolve } from "../paths.ts";
import { NotFoundError, UsageError, UserError } from "../errors.ts";
import { isPostgresUrl } from "./location.ts";
import { SqliteStore } from "./sqlite.ts";
import type { Store } from "./store.ts";

export { isPostgresUrl, netAddressOf } from "./location.ts";

/** A URL with any password removed: what may be printed or logged. */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:@/]*):[^@/]*@/i, "$1@");
}

/**
 * A directory of this host for the store at `location`: supervisors' pid files and logs, and
 * SQLite's wake file. Beside an SQLite file (`<db>-run`); for a PostgreSQL URL, under
 * `$XDG_STATE_HOME/queuectl/` (default `~/.local/state/queuectl/`), named by a hash of the URL
 * without its password.
 */
export function runDir(location: string): string {
  if (!isPostgresUrl(location)) return `${location}-run`;
  const home = Deno.env.get("HOME") ?? Deno.env.get("USERPROFILE") ?? "/tmp";
  const state = Deno.env.get("XDG_STATE_HOME") || join(home, ".local", "state");
  return join(state, "queuectl", `run-pg-${fnv1a(redactUrl(location))}`);
}

/**
 * The PostgreSQL password file this host has (`PGPASSFILE`, else `~/.pgpass`), or `null`: workers
 * may read it, as libpq's clients do.
 */
export function pgPassFile(): string | null {
  const home = Deno.env.get("HOME") ?? Deno.env.get("USERPROFILE");
  const path = Deno.env.get("PGPASSFILE") || (home ? join(home, ".pgpass") : null);
  if (!path) return null;
  try {
    return Deno.statSync(path).isFile ? path : null;
  } catch {
    return null;
  }
}

/** A short, stable hash of `text` (FNV-1a, 32 bits, hex): names a directory, guards nothing. */
function fnv1a(text: string): string {
  let h = 0x811c9dc5;
  for (const b of new TextEncoder().encode(text)) h = Math.imul(h ^ b, 0x01000193) >>> 0;
  return h.toString(16).padStart(8, "0");
}

/**
 * Where the data lives, from the flag, the environment or the default: an absolute SQLite file
 * path, or a `postgres://` URL as given.
 */
export function resolveDbPath(flag?: string): string {
  let p = flag ?? Deno.env.get("QUEUECTL_DB");
  if (p !== undefined && p.trim() === "") {
    throw new UsageError(
      flag !== undefined
        ? "--db needs a file path"
        : "QUEUECTL_DB is set but empty; unset it or set it to a file path",
    );
  }
  if (p === undefined) {
    const xdg = Deno.env.get("XDG_DATA_HOME");
    const home = Deno.env.get("HOME") ?? Deno.env.get("USERPROFILE");
    const base = xdg ? xdg : home ? join(home, ".local", "share") : undefined;
    if (!base) throw new UsageError("cannot find a home directory; set QUEUECTL_DB or pass --db");
    p = join(base, "queuectl", "queue.db");
  }
  if (isPostgresUrl(p)) return p;
  if (p.startsWith("sqlite:")) p = p.slice("sqlite:".length).replace(/^\/\/(?=\/)/, "");
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(p)) {
    throw new UsageError(
      `unsupported store URL "${
        redactUrl(p)
      }": use a file path, sqlite:PATH or postgres://USER@HOST:5432/DB`,
    );
  }
  return resolve(p);
}

/** Creates the data directory (0700) and database file (0600) when missing. */
export function ensureDataFiles(path: string): void {
  try {
    if (Deno.statSync(path).isFile) return; // Every call but the first: nothing to create.
  } catch {
    // Missing (or unreadable): created, or the reason said, below.
  }
  const dir = dirname(path);
  try {
    Deno.mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (e) {
    if (!(e instanceof Deno.errors.AlreadyExists)) {
      throw new UserError(`cannot create data directory ${dir}: ${(e as Error).message}`);
    }
  }
  try {
    Deno.openSync(path, { createNew: true, write: true, mode: 0o600 }).close();
  } catch (e) {
    if (e instanceof Deno.errors.AlreadyExists) {
      if (Deno.statSync(path).isDirectory) {
        throw new UserError(
          `${path} is a directory, not a database file; name a file in it, such as ${
            join(path, "queue.db")
          }`,
        );
      }
      return;
    }
    if (e instanceof Deno.errors.PermissionDenied || e instanceof Deno.errors.NotCapable) {
      throw new UserError(
        `cannot create ${path}: permission denied; pass --db to use another file`,
      );
    }
    if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory) {
      throw new UserError(`cannot create ${path}: ${dir} is not a directory; pass --db`);
    }
    if (/No space left/i.test(String(e))) {
      throw new UserError(`cannot create ${path}: the disk is full; free some space`);
    }
    throw new UserError(`cannot create ${path}: ${(e as Error).message}`);
  }
}

export interface OpenOptions {
  /** Create a missing queue (default); `false` refuses it with a NotFoundError. */
  create?: boolean;
  /** Commit durably (default); workers pass `false` (a lost last commit only reruns a job). */
  durable?: boolean;
}

/**
 * Opens the store at `location`: PostgreSQL for a `postgres://` URL (its client is loaded only
 * then), SQLite otherwise. Creates a missing queue (a file, a schema) unless `create` is false.
 */
export async function openStore(location: string, options: OpenOptions = {}): Promise<Store> {
  const { create = true, durable } = options;
  if (isPostgresUrl(location)) {
    const { PostgresStore } = await import("./postgres.ts");
    return await PostgresStore.open(location, { durable, create });
  }
  if (create) ensureDataFiles(location);
  else if (!exists(location)) {
    throw new NotFoundError(
      `no queue at ${location} yet; enqueue a job or run queuectl init (or pass --db)`,
    );
  }
  return SqliteStore.open(location, { durable });
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch (e) {
    // Anything else (permission denied): let opening it report the problem in its own words.
    return !(e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory);
  }
}
