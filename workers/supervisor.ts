/**
 * `queuectl worker start`: spawns N worker processes (`Deno.Command` on `Deno.execPath()`, each
 * with only the permissions it needs), holds a locked pid file, restarts a worker that dies, and
 * puts a dead worker's job back in the queue at once. It runs in the foreground, or detached in a
 * session of its own (`--detach`, see `startDetached`), its output going to a log file.
 *
 * Stopping (the protocol is in `stop.ts`): SIGTERM, however often, is passed on once to every
 * worker, which finishes its current job and exits; the supervisor then returns 0. SIGQUIT (or a
 * second Ctrl+C) passes SIGQUIT on: each worker kills its job, which goes back to pending, and the
 * supervisor returns 130. A third Ctrl+C sends SIGKILL to the workers. With `--drain`
 * (`drain.ts`) it also stops gracefully once no job is ready, due within a second or running.
 *
 * It also fires recurring jobs (`queuectl schedule`) until a stop begins: see `schedules.ts`.
 */
import { dirname, join } from "../lib/paths.ts";
import { CONFIG_KEYS, envName } from "../lib/config.ts";
import { formatDuration } from "../lib/duration.ts";
import { UserError } from "../lib/errors.ts";
import type { Logger } from "../lib/log.ts";
import { loadConfig } from "../lib/settings.ts";
import { openStore } from "../lib/store/open.ts";
import type { Store } from "../lib/store/store.ts";
import { netAddressOf, pgPassFile, runDir } from "../lib/store/open.ts";
import { queuectlCommand, selfCommand } from "../lib/self.ts";
import { hostName } from "../lib/host.ts";
import { libcPaths } from "./reaper.ts";
import { failLostJobs } from "./rescue.ts";
import { sleep } from "../lib/sleep.ts";
import { FORCE_SIGNAL, GRACEFUL_SIGNAL, writePidFile } from "./stop.ts";
import { EXIT_STORE_REPLACED } from "./exit_codes.ts";
import { workerIdOf } from "./worker_id.ts";
import { runScheduler } from "./schedules.ts";
import { DRAIN_POLL_MS, type DrainWatch } from "./drain.ts";

export interface SupervisorOptions {
  db: string;
  count: number;
  /** Jobs each worker runs at once. */
  concurrency: number;
  /** The queues the workers claim from; every queue when absent. */
  queues?: string[];
  logLevel: string;
  log: Logger;
  /** `worker start --drain`: stop gracefully once this says the queue is drained. */
  drain?: DrainWatch;
}

/**
 * The command line that starts one worker. Under `deno run` it is `deno run <permissions>
 * main.ts __worker …`; in a compiled binary (`Deno.execPath()` is queuectl itself, permissions
 * baked in) it is `queuectl __worker …`.
 */
export function workerCommand(
  db: string,
  host: string,
  logLevel: string,
  nonce = "0",
  concurrency = 1,
  queues?: string[],
) {
  const net = netAddressOf(db);
  // A PostgreSQL URL may hold a password, and `ps` shows argv to everyone: it travels in the
  // environment. An SQLite path stays in argv, where `ps` shows which queue a worker serves.
  const env = { QUEUECTL_DB: db };
  const workerArgs = [
    "__worker",
    ...(net ? [] : ["--db", db]),
    "--host",
    host,
    "--supervisor",
    String(Deno.pid),
    "--log-level",
    logLevel,
    "--nonce",
    nonce,
    ...(concurrency > 1 ? ["--concurrency", String(concurrency)] : []),
    ...(queues ? ["--queue", queues.join(",")] : []),
  ];
  const permissions: string[] = [];
  if (net) {
    // The database server alone; no local files but a password file, if there is one.
    permissions.push(`--allow-net=${net}`);
    const passFile = pgPassFile();
    if (passFile) permissions.push(`--allow-read=${passFile}`);
  } else {
    // The database, its -wal/-shm files and the run directory all live in this directory.
    const dataDir = dirname(db);
    permissions.push(`--allow-read=${dataDir}`, `--allow-write=${dataDir}`);
  }
  permissions.push(
    // Deno.kill of a job's process group needs unscoped run permission; the worker runs arbitrary
    // commands through sh anyway, so a narrower list would protect nothing.
    "--allow-run",
    `--allow-env=${[...CONFIG_KEYS.map((k) => envName(k.name)), ...WORKER_ENV].join(",")}`,
  );
  // libc alone, for the subreaper that ends what a job leaves behind (reaper.ts).
  const libc = libcPaths();
  if (libc.length > 0) permissions.push(`--allow-ffi=${libc.join(",")}`);
  // A young generation of 1 MB a half instead of V8's default of up to 16: a worker's garbage is
  // short-lived (a job's rows and messages), so its peak RSS drops by 10 MB on SQLite and 35 MB on
  // PostgreSQL over a few thousand jobs, at no cost in CPU (README, Performance). A compiled
  // binary gets the same flag when it is built (the compile tasks).
  permissions.push(WORKER_V8_FLAGS);
  // Run from the project directory so its deno.json (import map) and lock file apply.
  const cmd = selfCommand(workerArgs, permissions);
  return { exec: cmd.exec, args: cmd.args, cwd: cmd.projectDir, env };
}

/** V8's options for a worker process under `deno run` (see workerCommand). */
const WORKER_V8_FLAGS = "--v8-flags=--max-semi-space-size=1";

/**
 * What a worker reads of its environment beyond config keys: its store, and what the PostgreSQL
 * client reads (libpq's PG* variables and one per option of `npm:postgres`, the login name).
 */
const WORKER_ENV = [
  "QUEUECTL_DB",
  // Forces the executor's spawn path (executor.ts).
  "QUEUECTL_SPAWN",
  "HOME",
  "USER",
  "USERNAME",
  "LOGNAME",
  ...[
    "HOST",
    "PORT",
    "USER",
    "USERNAME",
    "PASSWORD",
    "PASSFILE",
    "DATABASE",
    "APPNAME",
    "TARGETSESSIONATTRS",
    "MAX",
    "SSL",
    "SSLMODE",
    "SSLNEGOTIATION",
    "IDLE_TIMEOUT",
    "CONNECT_TIMEOUT",
    "MAX_LIFETIME",
    "MAX_PIPELINE",
    "BACKOFF",
    "KEEP_ALIVE",
    "PREPARE",
    "DEBUG",
    "FETCH_TYPES",
    "PUBLICATIONS",
    "TARGET_SESSION_ATTRS",
  ].map((k) => `PG${k}`),
];

export interface DetachedSupervisor {
  pid: number;
  /** Where its output and its workers' go: `<db>-run/<pid>.log`, mode 0600. */
  logFile: string;
}

/**
 * `worker start --detach`: starts `worker start --foreground` in a session of its own (Ctrl+C in
 * this terminal never reaches it; its stdin is /dev/null), its output appended to
 * `<db>-run/<pid>.log`, and returns once `count` of its workers have registered. Throws, naming the
 * log, when it exits or its workers do not register within `timeoutMs`.
 */
export async function startDetached(
  opts: {
    db: string;
    count: number;
    concurrency: number;
    queues?: string[];
    logLevel: string;
    timeoutMs?: number;
  },
): Promise<DetachedSupervisor> {
  const dir = runDir(opts.db);
  Deno.mkdirSync(dir, { recursive: true, mode: 0o700 });
  // A PostgreSQL URL goes in the environment, never in argv (it may hold a password).
  const net = netAddressOf(opts.db);
  const cmd = queuectlCommand([
    "worker",
    "start",
    "--foreground",
    ...(net ? [] : ["--db", opts.db]),
    "--count",
    String(opts.count),
    ...(opts.concurrency > 1 ? ["--concurrency", String(opts.concurrency)] : []),
    ...(opts.queues ? ["--queue", opts.queues.join(",")] : []),
    "--log-level",
    opts.logLevel,
  ], net ? [`--allow-net=${net}`] : []);
  // `exec` keeps the shell's pid, so `$$.log` is named after the supervisor's pid.
  const child = new Deno.Command("sh", {
    args: [
      "-c",
      'umask 077; dir=$1; shift; exec "$@" </dev/null >>"$dir/$$.log" 2>&1',
      "sh",
      dir,
      cmd.exec,
      ...cmd.args,
    ],
    detached: true, // setsid: a session and process group of its own, no controlling terminal
    env: { QUEUECTL_DB: opts.db },
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  child.unref();
  const logFile = join(dir, `${child.pid}.log`);
  let exited = null as Deno.CommandStatus | null;
  child.status.then((s) => exited = s);
  const store = await openStore(opts.db);
  try {
    const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
    for (;;) {
      const up = (await store.listWorkers()).filter((w) => w.supervisorPid === child.pid);
      if (up.length >= opts.count) return { pid: child.pid, logFile };
      if (exited !== null) {
        throw new UserError(
          `the background supervisor exited with ${exited.code} as it started; see ${logFile}`,
        );
      }
      if (Date.now() > deadline) {
        throw new UserError(
          `${up.length} of ${opts.count} workers registered after ${
            formatDuration(opts.timeoutMs ?? 60_000)
          }; the supervisor (pid ${child.pid}) keeps trying: see ${logFile}, ` +
            `or stop it with queuectl worker stop`,
        );
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    await store.close();
  }
}

/**
 * Kills the process groups of every process started for `workerId`: each job runs with
 * `QUEUECTL_WORKER_ID` in its environment, which its children inherit. Linux only (/proc);
 * elsewhere nothing is killed and the README says so.
 */
export async function killJobsOf(workerId: string): Promise<number[]> {
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command("sh", {
      // The id is a positional parameter, never part of the script.
      args: [
        "-c",
        'grep -lsxzF -e "QUEUECTL_WORKER_ID=$1" /proc/[0-9]*/environ 2>/dev/null || true',
        "sh",
        workerId,
      ],
      stdout: "piped",
      stderr: "null",
    }).output();
  } catch {
    return [];
  }
  const pids = new TextDecoder().decode(out.stdout).split("\n")
    .map((line) => Number(/^\/proc\/(\d+)\/environ$/.exec(line)?.[1]))
    .filter((pid) => pid > 0 && pid !== Deno.pid);
  for (const pid of pids) {
    for (const target of [-pid, pid]) {
      try {
        Deno.kill(target, "SIGKILL");
      } catch { /* gone, or not a group leader */ }
    }
  }
  return pids;
}

const RESTART_MS = 500;
const RESTART_MAX_MS = 30_000;

interface Child {
  index: number;
  process: Deno.ChildProcess;
  workerId: string;
  startedAt: number;
}

/** How far a stop has gone; it only ever moves forward. */
type Phase = "running" | "graceful" | "forced" | "killed";

/** The exit code of a supervisor whose stop was forced (running jobs were interrupted). */
export const FORCED_EXIT_CODE = 130;

/** How often a supervisor looks in the store for a stop asked from another host. */
const STOP_POLL_MS = 1000;
/** SIGINTs closer together than this are one press of Ctrl+C (see onInt). */
const SAME_PRESS_MS = 100;

/**
 * Runs the workers until they are stopped. Refuses to start (throws, before any worker starts)
 * when the store cannot be written or a configured value is invalid. Returns 0 after a graceful
 * stop, `FORCED_EXIT_CODE` after a forced one.
 */
export async function runSupervisor(opts: SupervisorOptions): Promise<number> {
  const { log } = opts;
  const host = hostName();
  const store: Store = await openStore(opts.db);
  try {
    await store.assertWritable();
    // Every worker would fail on an invalid value and be restarted forever: refuse now instead.
    await loadConfig(store);
    // A drain with nothing to do starts no worker.
    if (opts.drain && await opts.drain.poll(store)) {
      await store.close();
      return 0;
    }
  } catch (e) {
    await store.close();
    throw e;
  }
  using _pidFile = writePidFile(opts.db);

  let phase = "running" as Phase;
  let interrupts = 0;
  let storeGone = false;
  const children = new Map<number, Child>();
  const exits: Promise<void>[] = [];
  /** Per worker slot: the next restart delay of a worker that keeps failing as it starts. */
  const restartDelay = new Map<number, number>();
  const stopping = new AbortController();

  const spawn = (index: number) => {
    const nonce = crypto.randomUUID().slice(0, 6);
    const cmd = workerCommand(
      opts.db,
      host,
      opts.logLevel,
      nonce,
      opts.concurrency,
      opts.queues,
    );
    const process = new Deno.Command(cmd.exec, {
      args: cmd.args,
      cwd: cmd.cwd,
      env: cmd.env,
      stdin: "piped", // held open: a worker that sees EOF knows its supervisor is gone
      stdout: "inherit",
      stderr: "inherit",
    }).spawn();
    const child: Child = {
      index,
      process,
      workerId: workerIdOf(host, process.pid, nonce),
      startedAt: Date.now(),
    };
    children.set(index, child);
    exits.push(watch(child));
  };

  const watch = async (child: Child) => {
    const status = await child.process.status;
    try {
      await child.process.stdin.close();
    } catch { /* already closed */ }
    children.delete(child.index);
    if (status.code === EXIT_STORE_REPLACED) {
      // The database file was deleted or replaced: no worker can do anything useful here, and a
      // restart would open a new, empty file. Stop them all, gracefully.
      if (!storeGone) {
        storeGone = true;
        log.error("supervisor.store_replaced", {
          db: store.location,
          action: "stopping all workers; start them again once the database is in place",
        });
        drain("the queue was replaced or dropped");
      }
      return;
    }
    if (status.success && phase !== "running") return;
    // Died on its own (crash, kill -9, OOM): its job's processes outlived it in their own
    // session, so end them before the job goes back to the queue (now, not after the lease runs
    // out); otherwise the retry would run beside them.
    if (!status.success) await killJobsOf(child.workerId);
    let now = Date.now();
    try {
      now = await store.now();
      const config = await loadConfig(store);
      const held = (await store.jobsHeldBy(child.workerId)).map((job) => ({
        job,
        workerId: child.workerId,
      }));
      const how = status.signal ? `killed by ${status.signal}` : `exited with ${status.code}`;
      for (const r of await failLostJobs(store, held, `worker lost: ${how}`, config, now)) {
        log.warn("job.rescued", {
          job: r.job.id,
          state: r.job.state,
          attempt: r.job.attempts,
          next_run_in: r.job.state === "failed" ? formatDuration(r.job.runAt - now) : undefined,
        });
      }
      await store.markWorkerStopped(child.workerId, now);
    } catch (e) {
      log.warn("supervisor.rescue_failed", { error: (e as Error).message });
    }
    if (phase !== "running") return;
    const delay = nextRestartDelay(child.index, status, now - child.startedAt);
    log.warn("worker.died", {
      worker: child.process.pid,
      exit_code: status.code,
      signal: status.signal ?? undefined,
      restart_in: formatDuration(delay),
    });
    await sleep(delay, stopping.signal);
    if (phase === "running") spawn(child.index);
  };

  /**
   * A worker killed from outside (kill -9, the OOM killer) is replaced at once; one that keeps
   * failing soon after it starts (a broken store, a crash) is restarted ever later, per slot, from
   * 0.5s up to 30s, so it never spins. A worker that ran a while starts its slot afresh.
   */
  const nextRestartDelay = (index: number, status: Deno.CommandStatus, livedMs: number) => {
    if (status.signal === "SIGKILL" || livedMs >= 30_000) restartDelay.delete(index);
    if (status.signal === "SIGKILL") return RESTART_MS;
    const delay = restartDelay.get(index) ?? RESTART_MS;
    restartDelay.set(index, Math.min(RESTART_MAX_MS, delay * 2));
    return delay;
  };

  const tell = (sig: Deno.Signal) => {
    for (const c of children.values()) {
      try {
        c.process.kill(sig);
      } catch { /* already exited */ }
    }
  };

  /** Graceful: each worker finishes its job. Returns false when a stop was already under way. */
  const drain = (hint: string): boolean => {
    if (phase !== "running") return false;
    phase = "graceful";
    stopping.abort();
    log.info("supervisor.stopping", { workers: children.size, hint });
    tell(GRACEFUL_SIGNAL);
    return true;
  };
  const force = () => {
    if (phase === "forced" || phase === "killed") return;
    phase = "forced";
    stopping.abort();
    log.warn("supervisor.stopping_now", {
      hint: "interrupting running jobs; they go back to the queue",
    });
    tell(FORCE_SIGNAL);
  };

  // SIGTERM (`queuectl worker stop`, a service manager) is graceful however often it comes.
  const onTerm = () => {
    if (drain("running jobs finish first; queuectl worker stop --now interrupts them")) return;
    log.info("supervisor.still_stopping", {
      workers: children.size,
      hint: phase === "graceful"
        ? "running jobs finish first; queuectl worker stop --now interrupts them"
        : undefined,
    });
  };
  // Ctrl+C in this terminal: graceful, then forced, then SIGKILL. One press can arrive twice at
  // once, from the terminal and forwarded by a parent such as `deno task`: a second SIGINT within
  // SAME_PRESS_MS of the one before is that same press.
  let lastInt = -Infinity;
  const onInt = () => {
    const at = performance.now();
    if (at - lastInt < SAME_PRESS_MS) return;
    lastInt = at;
    interrupts++;
    if (interrupts === 1) {
      if (!drain("running jobs finish first; press Ctrl+C again to stop them now")) {
        log.info("supervisor.still_stopping", { hint: "press Ctrl+C again to stop them now" });
      }
    } else if (interrupts === 2) {
      force();
    } else if (phase !== "killed") {
      phase = "killed";
      log.warn("supervisor.killing", { workers: children.size });
      tell("SIGKILL");
    }
  };
  Deno.addSignalListener("SIGINT", onInt);
  Deno.addSignalListener(GRACEFUL_SIGNAL, onTerm);
  Deno.addSignalListener(FORCE_SIGNAL, force);
  // `worker stop --host`/`--all-hosts` from any host reaches this supervisor through the store.
  let polling = false;
  const pollStop = setInterval(async () => {
    if (polling || phase === "forced" || phase === "killed") return;
    polling = true;
    try {
      const asked = await store.stopRequestFor(host, Deno.pid);
      if (asked === "now") force();
      else if (asked === "graceful") drain("asked through the store; running jobs finish first");
    } catch (e) {
      log.warn("supervisor.stop_poll_failed", { error: (e as Error).message });
    } finally {
      polling = false;
    }
  }, STOP_POLL_MS);

  // `--drain`: once nothing is ready, due within a second or running, stop as on Ctrl+C.
  let drainPolling = false;
  const drainPoll = opts.drain && setInterval(async () => {
    if (drainPolling || phase !== "running") return;
    drainPolling = true;
    try {
      if (await opts.drain!.poll(store)) drain("the queue is drained");
    } catch (e) {
      log.warn("supervisor.drain_poll_failed", { error: (e as Error).message });
    } finally {
      drainPolling = false;
    }
  }, DRAIN_POLL_MS);

  log.info("supervisor.started", {
    workers: opts.count,
    concurrency: opts.concurrency,
    ...(opts.queues ? { queues: opts.queues.join(",") } : {}),
    db: store.location,
    pid: Deno.pid,
  });
  // Recurring jobs are fired here until a stop begins (schedules.ts).
  const exited = new AbortController();
  const scheduler = runScheduler(store, log, AbortSignal.any([stopping.signal, exited.signal]));
  try {
    for (let i = 0; i < opts.count; i++) spawn(i);
    // Wait until every worker, restarted ones included, has exited.
    while (exits.length > 0) await exits.shift();
  } finally {
    exited.abort();
    await scheduler;
    clearInterval(pollStop);
    if (drainPoll) {
      clearInterval(drainPoll);
      // Counts the jobs that finished while the workers stopped, for the drain's summary.
      await opts.drain!.poll(store, true).catch(() => {});
    }
    Deno.removeSignalListener("SIGINT", onInt);
    Deno.removeSignalListener(GRACEFUL_SIGNAL, onTerm);
    Deno.removeSignalListener(FORCE_SIGNAL, force);
    await store.close();
  }
  const forced = phase === "forced" || phase === "killed";
  log.info("supervisor.stopped", forced ? { forced: true } : undefined);
  return forced ? FORCED_EXIT_CODE : storeGone ? 1 : 0;
}
