/**
 * `deno task chaos [--jobs N] [--seed S] [--timeout 120s] [--keep] [--concurrency C]`: the chaos
 * scenario of the
 * fault-injection suite, and the process and database helpers the `fault_*_test.ts` files share.
 *
 * The scenario enqueues N short shell jobs, each appending its id to `runs.txt`, and drains them
 * with `queuectl worker start --count 4` while a killer sends SIGKILL to a random worker process
 * every 100–500 ms and, now and then (or when the supervisor has no worker left to kill), to the
 * supervisor itself, then starts a new one. Half the time one of the killed supervisor's orphaned
 * workers dies with it, so that its job comes back only through the lease. Leases are short (3s)
 * and retries plentiful, so orphaned jobs come back quickly and never go dead. At the end every
 * process is reaped and the database and `runs.txt` are checked:
 *
 * - lost: jobs missing, not `completed`, or `completed` without ever having run;
 * - stuck: jobs still `processing` after every worker is gone;
 * - completed_twice: jobs with more than one `completed` attempt;
 * - extra_runs: runs beyond one per job. Each must be explained by a `worker_lost` or `interrupted`
 *   attempt of that job; an unexplained one fails the run (reported on stderr).
 *
 * Diagnostics go to stderr; stdout gets exactly one line,
 * `jobs=N kills=K lost=L stuck=S completed_twice=D extra_runs=E`, and the exit code is 0 only when
 * L, S and D are 0 and nothing else went wrong (unexplained runs, leaked processes, a supervisor
 * that did not stop cleanly).
 */
import { DatabaseSync } from "node:sqlite";
import { cliCommand, cliOk, openDb, waitFor } from "./helpers.ts";

// ---------------------------------------------------------------------------------------------
// Shared helpers for the fault tests.
// ---------------------------------------------------------------------------------------------

/** A small seeded PRNG (mulberry32), so a failing run can be replayed from its seed. */
export class Prng {
  #s: number;
  constructor(readonly seed: number) {
    this.#s = seed >>> 0;
  }
  /** A float in [0, 1). */
  next(): number {
    let t = (this.#s = (this.#s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** An integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)];
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
}

/** A fresh random seed, or the one given in `QUEUECTL_SEED`. */
export function seedFromEnv(): number {
  const s = Deno.env.get("QUEUECTL_SEED");
  return s ? Number(s) >>> 0 : crypto.getRandomValues(new Uint32Array(1))[0];
}

export interface ProcInfo {
  pid: number;
  ppid: number;
  /** The command line, arguments joined by spaces (as `ps` shows it). */
  args: string;
}

/**
 * Every live (non-zombie) process but this one. Read through `ps`: Deno refuses `/proc` without
 * `--allow-all`, and the tests run with narrower permissions.
 */
export async function listProcs(): Promise<ProcInfo[]> {
  const { stdout } = await new Deno.Command("ps", {
    args: ["-e", "-ww", "-o", "pid=,ppid=,stat=,args="],
    stdout: "piped",
    stderr: "null",
  }).output();
  const found: ProcInfo[] = [];
  for (const line of new TextDecoder().decode(stdout).split("\n")) {
    const m = /^\s*(\d+)\s+(\d+)\s+(\S+)\s(.*)$/.exec(line);
    if (!m || m[3].startsWith("Z") || m[3].startsWith("X")) continue; // exited, not yet reaped
    const pid = Number(m[1]);
    if (pid === Deno.pid) continue;
    found.push({ pid, ppid: Number(m[2]), args: m[4] });
  }
  return found;
}

/** Live processes whose command line mentions `needle` (e.g. a test's db path). */
export async function procsMentioning(needle: string): Promise<ProcInfo[]> {
  // `ps` itself never matches: its own arguments do not hold the needle.
  return (await listProcs()).filter((p) => p.args.includes(needle));
}

/**
 * Pids of the processes whose environment holds `QUEUECTL_DB=db`: the supervisors and workers of
 * that store (which get it from their supervisor, whatever the store) and the jobs they run.
 */
export async function pidsWithDb(db: string): Promise<Set<number>> {
  const out = await new Deno.Command("sh", {
    args: [
      "-c",
      'grep -lsxzF -e "QUEUECTL_DB=$1" /proc/[0-9]*/environ 2>/dev/null || true',
      "sh",
      db,
    ],
    stdout: "piped",
    stderr: "null",
  }).output();
  return new Set(
    new TextDecoder().decode(out.stdout).split("\n")
      .map((l) => Number(/^\/proc\/(\d+)\/environ$/.exec(l)?.[1]))
      .filter((pid) => pid > 0 && pid !== Deno.pid),
  );
}

/** The worker processes (`queuectl __worker …`, of any store) of the database `db`. */
export async function workerProcs(db: string): Promise<ProcInfo[]> {
  const ofDb = await pidsWithDb(db);
  const all = (await listProcs()).filter((p) =>
    p.args.includes(" __worker ") && (ofDb.has(p.pid) || p.args.includes(` __worker --db ${db} `))
  );
  // A job's process shows its worker's command line between fork and exec: a child of a worker
  // is such a job, not a worker, and must not be taken for one (and killed).
  const pids = new Set(all.map((p) => p.pid));
  return all.filter((p) => !pids.has(p.ppid));
}

/** True while `pid` exists and is not a zombie. */
export async function isLive(pid: number): Promise<boolean> {
  return (await listProcs()).some((p) => p.pid === pid);
}

/**
 * Waits until no live process mentions `needle`; whatever is still there after `timeoutMs` is
 * SIGKILLed and returned, so the caller can fail loudly without leaking it.
 */
export async function reapMentioning(needle: string, timeoutMs = 30_000): Promise<ProcInfo[]> {
  try {
    await waitFor(async () => (await procsMentioning(needle)).length === 0, {
      timeoutMs,
      intervalMs: 50,
      what: `processes mentioning ${needle} to exit`,
    });
    return [];
  } catch {
    const left = await procsMentioning(needle);
    for (const p of left) {
      try {
        Deno.kill(p.pid, "SIGKILL");
      } catch { /* gone */ }
    }
    return left;
  }
}

/**
 * `reapMentioning` for a store whose processes carry it in their environment rather than their
 * argv (a PostgreSQL URL): waits until none is left, then SIGKILLs and returns the rest.
 */
export async function reapWithDb(db: string, timeoutMs = 30_000): Promise<ProcInfo[]> {
  const left = async () => {
    const pids = await pidsWithDb(db);
    return (await listProcs()).filter((p) => pids.has(p.pid));
  };
  try {
    await waitFor(async () => (await left()).length === 0, {
      timeoutMs,
      intervalMs: 100,
      what: `processes of ${db} to exit`,
    });
    return [];
  } catch {
    const rest = await left();
    for (const p of rest) {
      try {
        Deno.kill(p.pid, "SIGKILL");
      } catch { /* gone */ }
    }
    return rest;
  }
}

/**
 * Every row of every queuectl table, as one string: equal dumps mean an unchanged database. Raw
 * SQLite, for tests about the file itself; others read through the Store or the CLI.
 */
export function dumpDb(db: string): string {
  const conn = new DatabaseSync(db, { readOnly: true });
  try {
    const tables = conn.prepare(
      "SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name",
    ).all().map((r) => r.name as string);
    const out: Record<string, unknown> = {
      user_version: conn.prepare("PRAGMA user_version").get()!.user_version,
    };
    for (const t of tables) {
      out[t] = conn.prepare(`SELECT * FROM "${t}" ORDER BY rowid`).all();
    }
    return JSON.stringify(out);
  } finally {
    conn.close();
  }
}

/**
 * Runs one read-only query against the SQLite file `db` and returns its rows. For tests about the
 * file itself (integrity, foreign files); end-to-end assertions read through the Store or the CLI.
 */
export function queryDb(db: string, sql: string, ...params: (string | number)[]) {
  const conn = new DatabaseSync(db, { readOnly: true, timeout: 10_000 });
  try {
    return conn.prepare(sql).all(...params);
  } finally {
    conn.close();
  }
}

/**
 * Starts `queuectl ARGS` with stdout and stderr appended to `logFile` rather than piped: workers
 * outlive a SIGKILLed supervisor and would keep a pipe open, and an undrained pipe blocks them.
 * `sh` execs the command, so the child's pid is queuectl's own. Always await `status`.
 */
export function spawnLogged(
  args: string[],
  logFile: string,
  env: Record<string, string> = {},
): Deno.ChildProcess {
  return new Deno.Command("sh", {
    args: ["-c", 'exec "$@" >>"$QUEUECTL_TEST_LOG" 2>&1', "sh", ...cliCommand(), ...args],
    env: { NO_COLOR: "1", ...env, QUEUECTL_TEST_LOG: logFile },
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
}

/** Resolves with the child's status, or with `null` after `ms` (the child keeps running). */
export function statusWithin(
  child: Deno.ChildProcess,
  ms: number,
): Promise<Deno.CommandStatus | null> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    child.status.finally(() => clearTimeout(timer)),
    new Promise<null>((r) => (timer = setTimeout(() => r(null), ms))),
  ]);
}

/** Counts lines of a file of ids (one per line), e.g. the runs file each job appends to. */
export function countLines(path: string): Map<string, number> {
  const counts = new Map<string, number>();
  let text = "";
  try {
    text = Deno.readTextFileSync(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  for (const line of text.split("\n")) {
    if (line !== "") counts.set(line, (counts.get(line) ?? 0) + 1);
  }
  return counts;
}

// ---------------------------------------------------------------------------------------------
// The chaos scenario.
// ---------------------------------------------------------------------------------------------

export interface ChaosOptions {
  jobs: number;
  seed: number;
  /** Give up waiting for the queue to drain after this long. */
  timeoutMs: number;
  workers: number;
  /** Jobs each worker runs at once (`worker start --concurrency`). */
  concurrency: number;
  /** Keep the temporary directory (database, runs file, worker log) for inspection. */
  keep: boolean;
  /** An empty PostgreSQL queue to run on instead of a fresh SQLite file. */
  db?: string;
  /** How many hosts (supervisors, each with its own `QUEUECTL_HOST`) drain the queue at once. */
  hosts: number;
  /** Progress and diagnostics. */
  say: (line: string) => void;
}

export interface ChaosResult {
  jobs: number;
  hosts: number;
  kills: number;
  workerKills: number;
  supervisorKills: number;
  lost: number;
  stuck: number;
  completedTwice: number;
  extraRuns: number;
  /** Runs beyond one for jobs without enough `worker_lost`/`interrupted` attempts to explain them. */
  unexplainedRuns: number;
  /** Attempts that ended other than completed, worker_lost or interrupted. */
  unexpectedFailures: number;
  /** Lines in the runs file that are not a job id. */
  strayLines: number;
  /** Processes still alive at the end (they were SIGKILLed). */
  leaked: number;
  /** Exit code of the last supervisor after SIGTERM (null: had to be SIGKILLed). */
  supervisorExit: number | null;
  drained: boolean;
  seconds: number;
  dir: string;
  /** Examples of each problem, for the report. */
  examples: string[];
}

/** The one summary line `deno task chaos` prints. */
export function summaryLine(r: ChaosResult): string {
  return `jobs=${r.jobs} kills=${r.kills} lost=${r.lost} stuck=${r.stuck} ` +
    `completed_twice=${r.completedTwice} extra_runs=${r.extraRuns}` +
    (r.hosts > 1 ? ` hosts=${r.hosts}` : "");
}

/** True when the run proved the guarantees. */
export function chaosPassed(r: ChaosResult): boolean {
  return r.lost === 0 && r.stuck === 0 && r.completedTwice === 0 && r.unexplainedRuns === 0 &&
    r.unexpectedFailures === 0 && r.strayLines === 0 && r.leaked === 0 && r.supervisorExit === 0 &&
    r.drained;
}

export async function runChaos(opts: ChaosOptions): Promise<ChaosResult> {
  const started = Date.now();
  const rng = new Prng(opts.seed);
  const dir = await Deno.makeTempDir({ prefix: "queuectl-chaos-" });
  const db = opts.db ?? `${dir}/queue.db`;
  const workerLog = `${dir}/workers.log`;
  opts.say(`chaos: seed=${opts.seed} jobs=${opts.jobs} dir=${dir}`);

  // Short leases so a job of a killed worker comes back quickly; retries enough that no job of
  // this run can go dead from kills alone; retry delays of 0.1^attempt seconds.
  await cliOk(db, ["config", "set", "lease-timeout", "3s"]);
  await cliOk(db, ["config", "set", "max-retries", "100"]);
  await cliOk(db, ["config", "set", "backoff-base", "0.1"]);

  const ids: string[] = [];
  const lines: string[] = [];
  for (let i = 0; i < opts.jobs; i++) {
    const id = `c${i}`;
    ids.push(id);
    // 0–40 ms of work after the append: kills land before, during and after the side effect.
    const ms = rng.int(0, 4) * 10;
    lines.push(JSON.stringify({
      id,
      command: `echo ${id} >> runs.txt; sleep 0.0${ms / 10}`,
      cwd: dir,
    }));
  }
  await Deno.writeTextFile(`${dir}/jobs.ndjson`, lines.join("\n") + "\n");
  await cliOk(db, ["enqueue", "--file", `${dir}/jobs.ndjson`]);

  // Each host is a supervisor with a name of its own; the store travels in the environment, as
  // a PostgreSQL URL must.
  const startSupervisor = (host: number) =>
    spawnLogged(
      [
        "worker",
        "start",
        "--count",
        String(opts.workers),
        "--concurrency",
        String(opts.concurrency),
      ],
      workerLog,
      {
        QUEUECTL_DB: db,
        QUEUECTL_HOST: `chaos-${host}`,
      },
    );
  const hosts = Array.from({ length: opts.hosts }, (_, i) => ({
    supervisor: startSupervisor(i),
    // When the current supervisor said it had started (null until then): a supervisor slow to
    // load on a busy machine is not taken for one with no worker left.
    upAt: null as number | null,
  }));
  const hasStarted = (pid: number) => {
    try {
      return new RegExp(`supervisor\\.started .*pid=${pid}\\b`).test(
        Deno.readTextFileSync(workerLog),
      );
    } catch {
      return false;
    }
  };
  let workerKills = 0;
  let supervisorKills = 0;
  const store = await openDb(db);
  const completed = () => store.countJobs("completed");

  const deadline = Date.now() + opts.timeoutMs;
  let drained = false;
  let lastReport = Date.now();
  try {
    while (Date.now() < deadline) {
      if ((await completed()) === opts.jobs) {
        drained = true;
        break;
      }
      // Pacing of the killer (not synchronization): one kill every 100–500 ms.
      await new Promise((r) => setTimeout(r, rng.int(100, 500)));
      const workers = await workerProcs(db);
      const h = rng.int(0, hosts.length - 1);
      const host = hosts[h];
      const supervisor = host.supervisor;
      if (host.upAt === null && hasStarted(supervisor.pid)) host.upAt = Date.now();
      const supervisorUpAt = host.upAt;
      // With no worker left to kill (the supervisor is between restarts), kill the supervisor.
      const idle = !workers.some((w) => w.ppid === supervisor.pid) &&
        supervisorUpAt !== null && Date.now() - supervisorUpAt > 2000;
      if (idle || rng.chance(0.08)) {
        const mine = workers.filter((w) => w.ppid === supervisor.pid);
        supervisor.kill("SIGKILL");
        await supervisor.status;
        supervisorKills++;
        if (mine.length > 0 && rng.chance(0.5)) {
          // Its orphaned worker dies too: no supervisor sees that, so the job comes back only
          // when its lease runs out and another worker rescues it.
          try {
            Deno.kill(rng.pick(mine).pid, "SIGKILL");
            workerKills++;
          } catch { /* exited meanwhile */ }
        }
        // Its workers see EOF on stdin and stop after their current job; a new supervisor starts
        // a fresh set meanwhile.
        host.supervisor = startSupervisor(h);
        host.upAt = null;
      } else if (workers.length > 0) {
        const victim = rng.pick(workers);
        try {
          Deno.kill(victim.pid, "SIGKILL");
          workerKills++;
        } catch { /* exited meanwhile */ }
      }
      if (Date.now() - lastReport > 10_000) {
        lastReport = Date.now();
        opts.say(
          `chaos: ${await completed()}/${opts.jobs} completed, ${
            workerKills + supervisorKills
          } kills`,
        );
      }
    }
  } finally {
    // Stop gracefully; whatever does not stop in time is killed (and counted below). A supervisor
    // started by the last kill may still be loading: a SIGTERM before it has set up its signal
    // handling would end it with 143, so wait until it says it has started.
    for (const { supervisor } of hosts) {
      const last = supervisor.pid;
      await waitFor(() => hasStarted(last), {
        timeoutMs: 60_000,
        intervalMs: 50,
        what: "the last supervisor to start",
      }).catch(() => {});
      supervisor.kill("SIGTERM");
    }
  }
  let supervisorExit: number | null = 0;
  for (const { supervisor } of hosts) {
    const status = await statusWithin(supervisor, 60_000);
    if (status === null) {
      supervisor.kill("SIGKILL");
      await supervisor.status;
      supervisorExit = null;
    } else if (status.code !== 0 && supervisorExit === 0) supervisorExit = status.code;
  }
  const leftovers = [...await reapWithDb(db), ...(opts.db ? [] : await reapMentioning(db))];

  // The verdict, from the database and the runs file.
  const examples: string[] = [];
  const note = (s: string) => {
    if (examples.length < 20) examples.push(s);
  };
  // Read through the Store, as every end-to-end test does.
  const jobsRows = await store.listJobs({ limit: opts.jobs + 1000 });
  const byId = new Map(jobsRows.map((j) => [j.id, j]));
  let unexpectedFailures = 0;
  const completedAttempts = new Map<string, number>();
  const lostAttempts = new Map<string, number>();
  for (const job of jobsRows) {
    const outcomes = new Map<string, number>();
    for (const a of await store.listAttempts(job.id)) {
      outcomes.set(a.outcome, (outcomes.get(a.outcome) ?? 0) + 1);
    }
    const id = job.id;
    for (const [outcome, n] of outcomes) {
      if (outcome === "completed") completedAttempts.set(id, n);
      else if (outcome !== "worker_lost" && outcome !== "interrupted") {
        // Jobs here always exit 0: any other outcome means something hit a job it should not have.
        unexpectedFailures += n;
        note(`${id}: ${n} attempt(s) ended ${outcome}`);
      }
      if (outcome === "worker_lost" || outcome === "interrupted") {
        lostAttempts.set(id, (lostAttempts.get(id) ?? 0) + n);
      }
    }
  }
  await store.close();
  const runs = countLines(`${dir}/runs.txt`);
  const idSet = new Set(ids);
  let strayLines = 0;
  for (const [line, n] of runs) {
    if (!idSet.has(line)) {
      strayLines += n;
      note(`stray line in runs.txt: ${JSON.stringify(line.slice(0, 80))}`);
    }
  }
  let lost = 0;
  let stuck = 0;
  let completedTwice = 0;
  let extraRuns = 0;
  let unexplainedRuns = 0;
  for (const id of ids) {
    const row = byId.get(id);
    const ran = runs.get(id) ?? 0;
    if (!row) {
      lost++;
      note(`${id}: missing from the database`);
      continue;
    }
    if (row.state === "processing") {
      stuck++;
      note(`${id}: still processing`);
    } else if (row.state !== "completed") {
      lost++;
      note(`${id}: ended ${row.state} after ${row.attempts} attempts`);
    } else if (ran === 0) {
      lost++;
      note(`${id}: completed but never ran`);
    }
    if ((completedAttempts.get(id) ?? 0) > 1) {
      completedTwice++;
      note(`${id}: ${completedAttempts.get(id)} completed attempts`);
    }
    if (ran > 1) {
      extraRuns += ran - 1;
      const explained = lostAttempts.get(id) ?? 0;
      if (ran - 1 > explained) {
        unexplainedRuns += ran - 1 - explained;
        note(`${id}: ran ${ran} times with ${explained} worker_lost/interrupted attempts`);
      }
    }
  }
  for (const p of leftovers) note(`leaked process ${p.pid}: ${p.args.slice(0, 120)}`);

  const result: ChaosResult = {
    jobs: opts.jobs,
    hosts: opts.hosts,
    kills: workerKills + supervisorKills,
    workerKills,
    supervisorKills,
    lost,
    stuck,
    completedTwice,
    extraRuns,
    unexplainedRuns,
    unexpectedFailures,
    strayLines,
    leaked: leftovers.length,
    supervisorExit,
    drained,
    seconds: Math.round((Date.now() - started) / 100) / 10,
    dir,
    examples,
  };
  if (!opts.keep && chaosPassed(result)) await Deno.remove(dir, { recursive: true });
  return result;
}

function usage(message: string): never {
  console.error(`chaos: ${message}`);
  console.error(
    "usage: deno task chaos [--jobs N] [--seed S] [--timeout 120s] [--keep] [--concurrency C] " +
      "[--db postgres://… --hosts N]",
  );
  Deno.exit(2);
}

function parseArgs(args: string[]): Omit<ChaosOptions, "say"> {
  const opts: Omit<ChaosOptions, "say"> = {
    jobs: 2000,
    seed: seedFromEnv(),
    timeoutMs: 0,
    workers: 4,
    concurrency: 1,
    keep: false,
    hosts: 1,
  };
  for (let i = 0; i < args.length; i++) {
    const [flag, inline] = args[i].split(/=(.*)/s, 2);
    const value = () => {
      const v = inline ?? args[++i];
      if (v === undefined) usage(`${flag} needs a value`);
      return v;
    };
    const int = (name: string, v: string, min: number) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < min) usage(`${name} must be an integer ≥ ${min}, got "${v}"`);
      return n;
    };
    if (flag === "--jobs") opts.jobs = int("--jobs", value(), 1);
    else if (flag === "--seed") opts.seed = int("--seed", value(), 0) >>> 0;
    else if (flag === "--workers") opts.workers = int("--workers", value(), 1);
    else if (flag === "--concurrency") opts.concurrency = int("--concurrency", value(), 1);
    else if (flag === "--hosts") opts.hosts = int("--hosts", value(), 1);
    else if (flag === "--db") opts.db = value();
    else if (flag === "--timeout") {
      const v = value();
      const m = /^(\d+)(s|m)?$/.exec(v);
      if (!m) usage(`--timeout must be seconds or like 90s, 5m; got "${v}"`);
      opts.timeoutMs = Number(m[1]) * (m[2] === "m" ? 60_000 : 1000);
    } else if (flag === "--keep") opts.keep = true;
    else usage(`unknown argument "${args[i]}"`);
  }
  // Generous by default: 10 jobs/s (a 20,000-job run took 494s on a busy 2-core machine), and at
  // least five minutes: a slow machine makes the run longer, never a failure.
  if (opts.timeoutMs === 0) opts.timeoutMs = Math.max(300_000, opts.jobs * 100);
  return opts;
}

if (import.meta.main) {
  const opts = parseArgs(Deno.args);
  const r = await runChaos({ ...opts, say: (s) => console.error(s) });
  for (const e of r.examples) console.error(`chaos: ${e}`);
  console.error(
    `chaos: worker_kills=${r.workerKills} supervisor_kills=${r.supervisorKills} ` +
      `unexplained_extra_runs=${r.unexplainedRuns} unexpected_failures=${r.unexpectedFailures} ` +
      `stray_lines=${r.strayLines} ` +
      `leaked_processes=${r.leaked} supervisor_exit=${r.supervisorExit} drained=${r.drained} ` +
      `seconds=${r.seconds} seed=${opts.seed}` +
      (chaosPassed(r) && !opts.keep ? "" : ` dir=${r.dir}`),
  );
  console.log(summaryLine(r));
  Deno.exit(chaosPassed(r) ? 0 : 1);
}
