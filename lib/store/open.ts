/**
 * Finds where the data lives and opens the store for it. `--db PATH` > `QUEUECTL_DB` >
 * `$XDG_DATA_HOME/queuectl/queue.db` > `~/.local/share/queuectl/queue.db`. The directory is created
 * 0700 and the database file 0600 on the first write (`enqueue`, `worker start`, `config set`, …);
 * `init` is never required. Commands that only read refuse a missing database instead of creating
 * an empty one (`{ create: false }`).
 */
import { dirname, join, resolve } from "../paths.ts";
import { NotFoundError, UsageError, UserError } from "../errors.ts";
import { type SqliteOptions, SqliteStore } from "./sqlite.ts";
import type { Store } from "./store.ts";

/** The database path from the flag, the environment or the default. */
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
  if (p.startsWith("sqlite:")) p = p.slice("sqlite:".length).replace(/^\/\/(?=\/)/, "");
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(p)) {
    throw new UsageError(`unsupported store URL "${p}": use a file path or sqlite:PATH`);
  }
  return resolve(p);
}

/** Creates the data directory (0700) and database file (0600) when missing. */
export function ensureDataFiles(path: string): void {
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
          `${path} is a directory, not a database file; pass --db ${join(path, "queue.db")}`,
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

export interface OpenOptions extends SqliteOptions {
  /**
   * Create the database when it is missing (default). With `false`, a missing file is a
   * `NotFoundError` naming the path and how to create it, and nothing is created.
   */
  create?: boolean;
}

/** Opens the store at `path`, creating it when missing unless `create` is false. */
export function openStore(path: string, options: OpenOptions = {}): Store {
  const { create = true, ...sqlite } = options;
  if (create) ensureDataFiles(path);
  else if (!exists(path)) {
    throw new NotFoundError(
      `no queue at ${path} yet; enqueue a job or run queuectl init (or pass --db)`,
    );
  }
  return SqliteStore.open(path, sqlite);
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
