/**
 * What the benchmark's figures share: run options, statistics, a temp directory and child
 * processes that are always cleaned up, the real CLI and supervisor as subprocesses, and readers
 * for `/proc` (CPU ticks, peak RSS, children). Measures only; never changes product code or data
 * outside its own temp directory.
 */
import postgres from "postgres";
import { cliCommand } from "../tests/helpers.ts";

export { cliCommand };

/** How one figure runs. */
export interface RunOptions {
  quick: boolean;
  reps: number;
  /** The run's temp directory; each figure makes its own subdirectory in it. */
  dir: string;
  /**
   * A PostgreSQL database to measure beside the SQLite files (`--db postgres://…`): each figure
   * then also runs there, in the same repetition, its keys prefixed `pg_`. Every run gets a schema
   * of its own (`pgSchema`), dropped afterwards.
   */
  pg?: string;
}

/** One repetition's figures, numbers only. */
export type Figures = Record<string, number>;

export function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Nearest-rank percentile (`p` in 0..100). */
export function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

/** Progress and diagnostics go to stderr, so stdout holds only the table or the JSON. */
export function progress(msg: string) {
  Deno.stderr.writeSync(new TextEncoder().encode(`bench: ${msg}\n`));
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `cond` every `intervalMs` until true; throws after `timeoutMs`. */
export async function waitUntil(
  cond: () => boolean | Promise<boolean>,
  what: string,
  { timeoutMs = 60_000, intervalMs = 20 } = {},
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await sleep(intervalMs);
  }
}

/**
 * The wall clock in ms since the epoch with sub-millisecond resolution, comparable with
 * `date +%s%N` in another process. `performance.now()` is monotonic; its offset to the real-time
 * clock is taken at a tick of `Date.now()`, so the error stays well under 0.1 ms.
 */
export function calibrateClock(): () => number {
  const start = Date.now();
  let now = Date.now();
  while (now === start) now = Date.now();
  const offset = now - performance.now();
  return () => offset + performance.now();
}

// ---- child processes and cleanup ----

const live = new Set<Deno.ChildProcess>();
const cleanups: (() => void)[] = [];

/** Spawns a child that is killed (SIGKILL) if the bench is interrupted before it exits. */
export function spawnTracked(cmd: string, options: Deno.CommandOptions): Deno.ChildProcess {
  const child = new Deno.Command(cmd, options).spawn();
  live.add(child);
  child.status.finally(() => live.delete(child));
  return child;
}

/** Registers a synchronous clean-up step run on interruption (and by `cleanupAll`). */
export function onCleanup(fn: () => void) {
  cleanups.push(fn);
}

/** Kills every tracked child and runs the clean-up steps, newest first. */
export function cleanupAll() {
  for (const c of live) {
    try {
      c.kill("SIGKILL");
    } catch { /* already gone */ }
  }
  while (cleanups.length > 0) {
    try {
      cleanups.pop()!();
    } catch { /* best effort */ }
  }
}

/** Runs `argv` to its end, output discarded or collected; returns wall ms and the status. */
export async function timed(
  argv: string[],
  opts: { env?: Record<string, string>; cwd?: string } = {},
): Promise<{ ms: number; code: number; stdout: string; stderr: string }> {
  const t0 = performance.now();
  const child = spawnTracked(argv[0], {
    args: argv.slice(1),
    env: opts.env,
    cwd: opts.cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
  const out = await child.output();
  const ms = performance.now() - t0;
  const dec = new TextDecoder();
  return { ms, code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Runs `queuectl ARGS` against `db`; throws unless it exits 0. */
export async function cli(db: string, args: string[]): Promise<{ ms: number; stdout: string }> {
  const r = await timed([...cliCommand(), ...args], { env: { QUEUECTL_DB: db, NO_COLOR: "1" } });
  if (r.code !== 0) {
    throw new Error(`queuectl ${args.join(" ")} exited ${r.code}\n${r.stdout}${r.stderr}`);
  }
  return r;
}

/** A running `queuectl worker start`, its output going to a log file. */
export interface Supervisor {
  pid: number;
  /** Sends SIGTERM and waits for the exit (SIGKILL after `graceMs`). Returns the exit code. */
  stop(graceMs?: number): Promise<number>;
  /**
   * For an error message: the state of the supervisor, its workers and their jobs, the tail of
   * the log, and where a full copy of the log is kept (it outlives the bench's temp directory).
   */
  diagnose(): Promise<string>;
}

/**
 * Starts `queuectl worker start --count N` as the user would, its stderr (one line per job event
 * at the default log level) written to a file: as cheap as a terminal that keeps up, and kept for
 * diagnosis. `exec` keeps the supervisor's pid that of the spawned process.
 */
export function startSupervisor(
  db: string,
  count: number,
  logFile: string,
  concurrency = 1,
): Supervisor {
  const argv = [
    ...cliCommand(),
    "worker",
    "start",
    "--count",
    String(count),
    "--concurrency",
    String(concurrency),
  ];
  const child = spawnTracked("sh", {
    args: ["-c", 'exec "$@" >>"$BENCH_LOG" 2>&1', "sh", ...argv],
    env: { QUEUECTL_DB: db, NO_COLOR: "1", BENCH_LOG: logFile },
    stdin: "null",
    stdout: "null",
    stderr: "null",
  });
  return {
    pid: child.pid,
    async stop(graceMs = 30_000) {
      const workers = await childrenOf(child.pid);
      try {
        child.kill("SIGTERM");
      } catch { /* exited */ }
      const timer = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch { /* exited */ }
      }, graceMs);
      const status = await child.status;
      clearTimeout(timer);
      // Workers that lost their supervisor stop on EOF; wait for them so none outlives the bench.
      await waitUntil(async () => (await cpuTicks(workers)).size === 0, "workers to exit", {
        timeoutMs: graceMs,
        intervalMs: 100,
      }).catch(() => progress(`workers ${workers.join(", ")} still running`));
      return status.code;
    },
    async diagnose() {
      const pids = [child.pid];
      for (let i = 0; i < pids.length && i < 50; i++) pids.push(...await childrenOf(pids[i]));
      const stats = await readProcFiles(pids.map((p) => `/proc/${p}/stat`));
      const ps = [...stats.values()].map((st) => st.split(" ").slice(0, 3).join(" ")).join("; ");
      let tail = "(no log)";
      let kept = "";
      try {
        tail = Deno.readTextFileSync(logFile).split("\n").slice(-20).join("\n");
        kept = Deno.makeTempFileSync({ prefix: "queuectl-bench-failed-", suffix: ".log" });
        Deno.copyFileSync(logFile, kept);
      } catch { /* no log */ }
      return `processes (pid (comm) state): ${ps}\nlog tail:\n${tail}\nfull log: ${kept}`;
    },
  };
}

// ---- PostgreSQL schemas ----

/** A schema of its own in a PostgreSQL database, for one measurement. */
export interface PgSchema {
  /** The database URL with `?schema=NAME`: what queuectl is given. */
  url: string;
  name: string;
  /** A client on the schema (one connection, `search_path` set), for fixtures and probes. */
  sql: postgres.Sql;
  /** Ends the client and drops the schema with everything in it. */
  drop(): Promise<void>;
}

const liveSchemas = new Set<PgSchema>();

/** A URL of `base` without `?schema=`, for the client. */
function withoutSchema(base: string): string {
  const u = new URL(base);
  u.searchParams.delete("schema");
  u.searchParams.delete("listen");
  return u.toString();
}

/**
 * A fresh schema `bench_…` in the database of `base` (queuectl creates its tables there on first
 * open). It is dropped by `drop()`, or by `dropSchemas()` if the bench stops early.
 */
export function pgSchema(base: string): PgSchema {
  const name = `bench_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
  const u = new URL(base);
  u.searchParams.set("schema", name);
  const sql = postgres(withoutSchema(base), {
    max: 1,
    onnotice: () => {},
    connection: { application_name: `queuectl-bench-${name}`, search_path: name },
  });
  const s: PgSchema = {
    url: u.toString(),
    name,
    sql,
    async drop() {
      liveSchemas.delete(s);
      await sql.end({ timeout: 1 });
      const admin = postgres(withoutSchema(base), { max: 1, onnotice: () => {} });
      try {
        // A statement of the bench's own client still running (the bench was interrupted)
        // would hold the schema's locks: cancel it first.
        await admin`
          SELECT pg_cancel_backend(pid) FROM pg_stat_activity
          WHERE application_name = ${`queuectl-bench-${name}`}`;
        await admin.unsafe(`DROP SCHEMA IF EXISTS "${name}" CASCADE`);
      } finally {
        await admin.end({ timeout: 1 });
      }
    },
  };
  liveSchemas.add(s);
  return s;
}

/** Drops every schema not dropped yet (after the children holding them are gone). */
export async function dropSchemas() {
  for (const s of [...liveSchemas]) {
    try {
      await s.drop();
    } catch (e) {
      progress(`could not drop schema ${s.name}: ${e instanceof Error ? e.message : e}`);
    }
  }
}

// ---- /proc ----
// Deno grants /proc only with --allow-all, which the bench task does not have: files there are
// read through `grep` (one short-lived process per read, a few ms of CPU).

/** The text of each readable file among `paths` (a process that is gone is left out). */
async function readProcFiles(paths: string[], glob = false): Promise<Map<string, string>> {
  const argv = glob ? ["sh", "-c", `exec grep -s -H '' ${paths.join(" ")}`] : [
    "grep",
    "-s",
    "-H",
    "",
    ...paths,
  ];
  const out = await spawnTracked(argv[0], {
    args: argv.slice(1),
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).output();
  const files = new Map<string, string>();
  for (const line of new TextDecoder().decode(out.stdout).split("\n")) {
    const at = line.indexOf(":");
    if (at < 0) continue;
    const [path, text] = [line.slice(0, at), line.slice(at + 1)];
    files.set(path, files.has(path) ? `${files.get(path)}\n${text}` : text);
  }
  return files;
}

/** Fields of a /proc/PID/stat line after the command name: index 0 is field 3 (state). */
function statFields(stat: string): string[] {
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
}

/** Clock ticks per second of /proc times (USER_HZ; 100 on Linux x86 and arm). */
export const CLK_TCK = 100;

/** CPU of a process in ticks: its own (utime + stime) and its reaped children's. */
export interface CpuTicks {
  own: number;
  reaped: number;
}

/** CPU ticks of each live process among `pids`. */
export async function cpuTicks(pids: number[]): Promise<Map<number, CpuTicks>> {
  const files = await readProcFiles(pids.map((p) => `/proc/${p}/stat`));
  const out = new Map<number, CpuTicks>();
  for (const p of pids) {
    const stat = files.get(`/proc/${p}/stat`);
    if (!stat) continue;
    const f = statFields(stat).map(Number);
    out.set(p, { own: f[11] + f[12], reaped: f[13] + f[14] });
  }
  return out;
}

/** CPU of every descendant this process has reaped (cutime + cstime), in µs. */
export async function reapedChildrenCpuUs(): Promise<number> {
  const path = `/proc/${Deno.pid}/stat`;
  const f = statFields((await readProcFiles([path])).get(path)!);
  return ((Number(f[13]) + Number(f[14])) * 1e6) / CLK_TCK;
}

/** Pids whose parent is `pid`. */
export async function childrenOf(pid: number): Promise<number[]> {
  const out: number[] = [];
  for (const [path, stat] of await readProcFiles(["/proc/[0-9]*/stat"], true)) {
    if (Number(statFields(stat)[1]) === pid) out.push(Number(path.split("/")[2]));
  }
  return out;
}

/** Peak resident set (VmHWM) in MB of each live process among `pids`. */
export async function peakRssMb(pids: number[]): Promise<Map<number, number>> {
  const files = await readProcFiles(pids.map((p) => `/proc/${p}/status`));
  const out = new Map<number, number>();
  for (const p of pids) {
    const m = files.get(`/proc/${p}/status`)?.match(/^VmHWM:\s+(\d+) kB/m);
    if (m) out.set(p, Number(m[1]) / 1024);
  }
  return out;
}

/**
 * CPU µs used so far by the PostgreSQL server on this machine: every `postgres` process's own
 * CPU, plus what the postmaster reaped from its ended backends. Every client of the server counts,
 * not only the bench's.
 */
export async function pgServerCpuUs(): Promise<number> {
  let ticks = 0;
  const stats = [...(await readProcFiles(["/proc/[0-9]*/stat"], true)).values()];
  const pg = stats.filter((st) => st.includes(" (postgres) "));
  const pids = new Set(pg.map((st) => st.split(" ")[0]));
  for (const st of pg) {
    const f = statFields(st).map(Number);
    ticks += f[11] + f[12];
    if (!pids.has(String(f[1]))) ticks += f[13] + f[14]; // the postmaster
  }
  return (ticks * 1e6) / CLK_TCK;
}

/** The 1-minute load average, as text. */
export async function loadavg(): Promise<string> {
  return (await readProcFiles(["/proc/loadavg"])).get("/proc/loadavg")?.split(" ")[0] ?? "?";
}
