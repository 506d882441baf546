/**
 * Test helpers: a temporary database, the real CLI run as a subprocess, real worker supervisors,
 * and bounded waiting. The command under test comes from `QUEUECTL_BIN` when set (a compiled
 * binary); otherwise it is `deno run <permissions> main.ts`.
 */
import assert from "node:assert/strict";
import { libcPaths } from "../workers/libc.ts";
import { UsageError } from "../lib/errors.ts";
import { fileURLToPath as fromFileUrl } from "node:url";
import { openStore, runDir } from "../lib/store/open.ts";
import type { Store } from "../lib/store/store.ts";
import type { PgTestServer } from "./pg_helpers.ts";
import type { ProcInfo } from "./chaos.ts";
import { isPostgresUrl } from "../lib/store/location.ts";
import { LAZY_IMPORTS } from "../lib/self.ts";

export const MAIN = fromFileUrl(new URL("../main.ts", import.meta.url));
export const ROOT = fromFileUrl(new URL("../", import.meta.url));
export const FIXTURES = fromFileUrl(new URL("./fixtures/", import.meta.url));

/** The permissions of the deno.json tasks. */
export const PERMS = [
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-run",
  "--allow-sys=hostname",
  // The PostgreSQL test server (and a closed port, for the unreachable case).
  "--allow-net=127.0.0.1:5432,127.0.0.1:1",
];

/** The argv prefix that runs queuectl. */
export function cliCommand(): string[] {
  const bin = Deno.env.get("QUEUECTL_BIN");
  return bin ? [bin] : [Deno.execPath(), "run", "--quiet", LAZY_IMPORTS, ...PERMS, MAIN];
}

export interface TempDb {
  /** A real temporary directory, removed on dispose (for gate files, fixtures, output). */
  dir: string;
  /** The store: `${dir}/queue.db`, or a PostgreSQL schema's URL under QUEUECTL_TEST_STORE=postgres. */
  db: string;
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Which store the end-to-end tests run on: `QUEUECTL_TEST_STORE=postgres` runs them on the
 * PostgreSQL test server (tests/pg_helpers.ts), anything else on an SQLite file.
 */
export const TEST_STORE: "sqlite" | "postgres" = Deno.env.get("QUEUECTL_TEST_STORE") === "postgres"
  ? "postgres"
  : "sqlite";

/**
 * `ignore:` for a test that is about an SQLite file itself (the file deleted, replaced, full,
 * read-only, corrupt…), which has no PostgreSQL counterpart. Each use says why in a comment.
 */
export const sqliteOnly = TEST_STORE !== "sqlite";

let pgServer: Promise<PgTestServer> | undefined;

/**
 * This test file's database on the PostgreSQL test server, made at first use and dropped when
 * the file's tests are done (a synchronous `psql`, the only way to act at unload).
 */
function pgServerForFile(): Promise<PgTestServer> {
  pgServer ??= import("./pg_helpers.ts").then(async ({ PG_BASE, pgTestServer }) => {
    const server = await pgTestServer();
    if (!server) {
      throw new Error(
        `QUEUECTL_TEST_STORE=postgres, but no PostgreSQL server answers at ${PG_BASE}`,
      );
    }
    globalThis.addEventListener("unload", () => {
      new Deno.Command("psql", {
        args: [PG_BASE, "-qc", `DROP DATABASE IF EXISTS ${server.name} WITH (FORCE)`],
        stdout: "null",
        stderr: "null",
      }).outputSync();
    });
    return server;
  });
  return pgServer;
}

/**
 * A fresh directory, and a fresh store: a database path in that directory, or (under
 * QUEUECTL_TEST_STORE=postgres) a new schema in this file's PostgreSQL database. Both are removed
 * on dispose.
 */
export async function tempDb(): Promise<TempDb> {
  const dir = await Deno.makeTempDir({ prefix: "queuectl-test-" });
  const server = TEST_STORE === "postgres" ? await pgServerForFile() : null;
  const db = server ? server.freshSchemaUrl() : `${dir}/queue.db`;
  return {
    dir,
    db,
    async [Symbol.asyncDispose]() {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      if (server) {
        await dropStore(db);
        // This host's directory for the schema (supervisors' pid files and logs), made outside
        // `dir` by `worker start`.
        await Deno.remove(runDir(db), { recursive: true }).catch(() => {});
      }
    },
  };
}

/**
 * Deletes the store under the processes that use it, the way a user resets a queue: the SQLite
 * file with its `-wal` and `-shm`, or the PostgreSQL schema (`DROP SCHEMA … CASCADE`).
 */
export async function dropStore(db: string): Promise<void> {
  if (!isPostgresUrl(db)) {
    for (const suffix of ["", "-wal", "-shm"]) await Deno.remove(db + suffix).catch(() => {});
    return;
  }
  const { default: postgres } = await import("postgres");
  const u = new URL(db);
  const schema = u.searchParams.get("schema") ?? "queuectl";
  u.searchParams.delete("schema");
  const sql = postgres(u.toString(), { max: 1, onnotice: () => {}, idle_timeout: 0 });
  try {
    await sql.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await sql.end({ timeout: 1 });
  }
}

/**
 * Every row of every queuectl table, as one string: equal dumps mean an unchanged store. Raw
 * tables rather than the Store interface, so that nothing a command writes can hide.
 */
export async function dumpStore(db: string): Promise<string> {
  if (isPostgresUrl(db)) return (await import("./pg_helpers.ts")).dumpSchema(db);
  return (await import("./chaos.ts")).dumpDb(db);
}

/**
 * The live processes of the store `db`: those whose command line names the SQLite file, or
 * (PostgreSQL, whose URL never goes in argv) those with `QUEUECTL_DB=db` in their environment.
 */
export async function procsOfStore(db: string): Promise<ProcInfo[]> {
  const { listProcs, pidsWithDb, procsMentioning } = await import("./chaos.ts");
  if (!isPostgresUrl(db)) return await procsMentioning(db);
  const pids = await pidsWithDb(db);
  return (await listProcs()).filter((p) => pids.has(p.pid));
}

/**
 * Waits up to `timeoutMs` for the processes of the store `db` to exit; SIGKILLs and returns any
 * left.
 */
export async function reapStore(db: string, timeoutMs = 30_000): Promise<ProcInfo[]> {
  const { reapMentioning, reapWithDb } = await import("./chaos.ts");
  return isPostgresUrl(db) ? await reapWithDb(db, timeoutMs) : await reapMentioning(db, timeoutMs);
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  stdin?: string;
  env?: Record<string, string>;
  cwd?: string;
}

/** Runs `queuectl ARGS` against `db` and collects its output. */
export async function runCli(
  db: string,
  args: string[],
  opts: CliOptions = {},
): Promise<CliResult> {
  const [exec, ...pre] = cliCommand();
  const child = new Deno.Command(exec, {
    args: [...pre, ...args],
    cwd: opts.cwd,
    env: { QUEUECTL_DB: db, NO_COLOR: "1", ...opts.env },
    stdin: opts.stdin !== undefined ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (opts.stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(opts.stdin));
    await w.close();
  }
  const { code, stdout, stderr } = await child.output();
  const dec = new TextDecoder();
  return { code, stdout: dec.decode(stdout), stderr: dec.decode(stderr) };
}

/** Runs the CLI and fails the test unless it exits 0; returns stdout. */
export async function cliOk(db: string, args: string[], opts: CliOptions = {}): Promise<string> {
  const r = await runCli(db, args, opts);
  if (r.code !== 0) {
    throw new Error(`queuectl ${args.join(" ")} exited ${r.code}\n${r.stdout}\n${r.stderr}`);
  }
  return r.stdout;
}

/** A queuectl process in the background: workers (their supervisor), a dashboard. */
export interface Workers {
  process: Deno.ChildProcess;
  /** Everything it (a supervisor: and its workers) wrote to stdout and stderr so far. */
  log(): string;
  /** Sends it a signal. */
  signal(sig: Deno.Signal): void;
  /** Waits for it to exit and returns its status. */
  done(): Promise<Deno.CommandStatus>;
}

/** Starts `queuectl ARGS` against `db` in the background, collecting its output. */
export function startCli(db: string, args: string[], env: Record<string, string> = {}): Workers {
  const [exec, ...pre] = cliCommand();
  const process = new Deno.Command(exec, {
    args: [...pre, ...args],
    env: { QUEUECTL_DB: db, NO_COLOR: "1", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  const dec = new TextDecoder();
  const pump = async (s: ReadableStream<Uint8Array>) => {
    for await (const chunk of s) text += dec.decode(chunk, { stream: true });
  };
  const pumps = Promise.all([pump(process.stdout), pump(process.stderr)]);
  return {
    process,
    log: () => text,
    signal: (sig) => {
      try {
        process.kill(sig);
      } catch { /* exited */ }
    },
    done: async () => {
      const status = await process.status;
      await pumps;
      return status;
    },
  };
}

/**
 * Starts `queuectl worker start --count N` in the background (with no `--count` when `count` is
 * `null`, as a user types it). Always await `done()`.
 */
export function startWorkers(
  db: string,
  count: number | null,
  env: Record<string, string> = {},
): Workers {
  return startCli(
    db,
    ["worker", "start", ...(count === null ? [] : ["--count", String(count)])],
    env,
  );
}

/**
 * A shell snippet that waits until `path` exists: a job that runs it holds its worker until the
 * test calls `open(path)`, however slow the machine.
 */
export function gateCommand(path: string): string {
  return `while [ ! -e '${path}' ]; do sleep 0.05; done`;
}

/** Opens a gate made by `gateCommand`. */
export async function openGate(path: string): Promise<void> {
  await Deno.writeTextFile(path, "");
}

/** The number of non-empty lines of the file at `path` (0 while it does not exist). */
export function lineCount(path: string): number {
  try {
    return Deno.readTextFileSync(path).split("\n").filter(Boolean).length;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return 0;
    throw e;
  }
}

/** Polls `condition` until it is true, failing after `timeoutMs`. */
export async function waitFor(
  condition: () => boolean | Promise<boolean>,
  { timeoutMs = 30_000, intervalMs = 25, what = "condition" } = {},
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs}ms waiting for ${what}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/**
 * Opens the test database through the Store interface (as the CLI does), to assert on stored
 * rows without SQL. Close it after use.
 */
export function openDb(db: string): Promise<Store> {
  return openStore(db);
}

/** The state of one job, read straight from the store. */
export async function jobState(db: string, id: string): Promise<string | undefined> {
  const s = await openDb(db);
  try {
    return (await s.getJob(id))?.state;
  } finally {
    await s.close();
  }
}

/**
 * `Promise.all` that lets every call finish before it fails, so that no CLI process outlives the
 * test that started it (and trips the op sanitizer in the next one).
 */
export async function allDone<T extends readonly unknown[] | []>(
  calls: T,
): Promise<{ -readonly [K in keyof T]: Awaited<T[K]> }> {
  const settled = await Promise.allSettled(calls);
  for (const s of settled) if (s.status === "rejected") throw s.reason;
  return settled.map((s) => (s as PromiseFulfilledResult<unknown>).value) as never;
}

/** Exit code `code`, nothing on stdout, and one `queuectl: ` line on stderr without a stack. */
export function assertOneLineError(r: CliResult, code: number, pattern?: RegExp) {
  const detail = `exit ${r.code}\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}`;
  assert.equal(r.code, code, detail);
  assert.equal(r.stdout, "", detail);
  assert.match(r.stderr, /^queuectl: [^\n]+\n$/, detail);
  assert.doesNotMatch(r.stderr, /internal error/, detail);
  if (pattern) assert.match(r.stderr.trimEnd(), pattern, detail);
}

/** Every command and command group, as a user types it before `--help`. */
export const COMMANDS: readonly string[][] = [
  [],
  ["enqueue"],
  ["worker"],
  ["worker", "start"],
  ["worker", "stop"],
  ["worker", "list"],
  ["schedule"],
  ["schedule", "add"],
  ["schedule", "list"],
  ["schedule", "show"],
  ["schedule", "remove"],
  ["schedule", "pause"],
  ["schedule", "resume"],
  ["queue"],
  ["queue", "list"],
  ["queue", "pause"],
  ["queue", "resume"],
  ["queue", "set"],
  ["status"],
  ["list"],
  ["show"],
  ["logs"],
  ["dlq"],
  ["dlq", "list"],
  ["dlq", "retry"],
  ["retry"],
  ["cancel"],
  ["remove"],
  ["purge"],
  ["migrate"],
  ["metrics"],
  ["dashboard"],
  ["config"],
  ["config", "get"],
  ["config", "set"],
  ["config", "unset"],
  ["config", "list"],
  ["config", "show"],
  ["init"],
  ["completions"],
];

/**
 * Asserts that `fn` throws a one-line `UsageError` whose message equals `message` (a string) or
 * matches it (a RegExp).
 */
export function assertUsage(fn: () => unknown, message: string | RegExp) {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof UsageError, `expected a UsageError, got ${e}`);
    if (typeof message === "string") assert.equal(e.message, message);
    else assert.match(e.message, message);
    assert.doesNotMatch(e.message, /\n/, "messages are one line");
    return true;
  });
}

/** Whether `program` is on PATH. */
export function has(program: string): boolean {
  try {
    return new Deno.Command("sh", { args: ["-c", `command -v ${program}`], stdout: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
}

/** Runs `queuectl ARGS` under script(1): its stdout and stderr are a terminal. */
export async function onTerminal(db: string, args: string[]): Promise<string> {
  const quoted = [...cliCommand(), ...args].map((a) => `'${a.replaceAll("'", `'\\''`)}'`);
  const r = await new Deno.Command("script", {
    args: ["-qec", quoted.join(" "), "/dev/null"],
    env: { QUEUECTL_DB: db, NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(r.stdout);
  assert.equal(r.code, 0, text);
  return text;
}

/** Asserts that `promtool check metrics` (Debian's prometheus package) passes `text` silently. */
export async function assertPromtoolClean(text: string): Promise<void> {
  const check = new Deno.Command("promtool", {
    args: ["check", "metrics"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = check.stdin.getWriter();
  await writer.write(new TextEncoder().encode(text));
  await writer.close();
  const r = await check.output();
  const said = new TextDecoder().decode(r.stdout) + new TextDecoder().decode(r.stderr);
  assert.equal(r.code, 0, `promtool check metrics:\n${said}`);
  assert.equal(said.trim(), "", "promtool has no lint complaint");
}

/** Whether libc's posix_spawn path can run here (Linux with libc found). */
export const HAS_POSIX = Deno.build.os === "linux" && libcPaths().length > 0;

/**
 * Runs an executor fixture (`tests/fixtures/NAME`) with the permissions a worker's executor has
 * (run, and FFI on libc where it is found, unless `ffi` is false), `QUEUECTL_SPAWN` and `env` in
 * its environment; asserts it exited 0 and returns its stdout.
 */
export async function runExecutorFixture(
  name: string,
  args: string[],
  env: Record<string, string>,
  { ffi = true } = {},
): Promise<string> {
  const libc = ffi ? libcPaths() : [];
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--quiet",
      "--allow-env=QUEUECTL_SPAWN",
      "--allow-run",
      ...(libc.length ? [`--allow-ffi=${libc.join(",")}`] : []),
      `${FIXTURES}${name}`,
      ...args,
    ],
    env,
    stdin: "null",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  return new TextDecoder().decode(out.stdout);
}
