/**
 * `queuectl worker start`: runs in the foreground, spawns N worker processes (`Deno.Command` on
 * `Deno.execPath()`, each with only the permissions it needs), writes a pid file, restarts a worker
 * that dies, and puts a dead worker's job back in the queue at once.
 *
 * Stopping: the first Ctrl+C / SIGTERM (or `queuectl worker stop`) sends SIGTERM to every worker,
 * which finishes its current job and exits; the supervisor then returns 0. A second one sends
 * SIGTERM again, which makes each worker kill its job (the job goes back to pending). A third
 * sends SIGKILL.
 */
import { basename, dirname, join } from "../lib/paths.ts";
import { fileURLToPath } from "node:url";
import { CONFIG_KEYS, envName } from "../lib/config.ts";
import { formatDuration } from "../lib/duration.ts";
import type { Logger } from "../lib/log.ts";
import { loadConfig } from "../lib/settings.ts";
import { openStore } from "../lib/store/open.ts";
import type { Store } from "../lib/store/store.ts";
import { libcPaths } from "./reaper.ts";
import { failLostJobs } from "./rescue.ts";
import { EXIT_STORE_REPLACED } from "./exit_codes.ts";
import { workerIdOf } from "./worker_id.ts";

export interface SupervisorOptions {
  db: string;
  count: number;
  logLevel: string;
  log: Logger;
}

/** Where supervisors leave their pid files: `<db>-run/<pid>.pid`. */
export function pidDir(db: string): string {
  return `${db}-run`;
}

/**
 * The command line that starts one worker. Under `deno run` it is `deno run <permissions>
 * main.ts __worker …`; in a compiled binary (`Deno.execPath()` is queuectl itself, permissions
 * baked in) it is `queuectl __worker …`.
 */
export function workerCommand(db: string, host: string, logLevel: string, nonce = "0") {
  const exec = Deno.execPath();
  const workerArgs = [
    "__worker",
    "--db",
    db,
    "--host",
    host,
    "--supervisor",
    String(Deno.pid),
    "--log-level",
    logLevel,
    "--nonce",
    nonce,
  ];
  const underDeno = /^deno(\.exe)?$/i.test(basename(exec));
  if (!underDeno) return { exec, args: workerArgs, cwd: undefined };
  const main = Deno.mainModule;
  const dataDir = dirname(db);
  const args = [
    "run",
    "--quiet",
    "--no-prompt",
    // The database, its -wal/-shm files, the logs and the pid files all live in this directory.
    `--allow-read=${dataDir}`,
    `--allow-write=${dataDir}`,
    // Deno.kill of a job's process group needs unscoped run permission; the worker runs arbitrary
    // commands through sh anyway, so a narrower list would protect nothing.
    "--allow-run",
    `--allow-env=${CONFIG_KEYS.map((k) => envName(k.name)).join(",")}`,
  ];
  // libc alone, for the subreaper that ends what a job leaves behind (reaper.ts).
  const libc = libcPaths();
  if (libc.length > 0) args.push(`--allow-ffi=${libc.join(",")}`);
  let cwd: string | undefined;
  if (main.startsWith("file:")) {
    // Run from the project directory so its deno.json (import map) and lock file apply.
    cwd = dirname(fileURLToPath(main));
    try {
      Deno.statSync(join(cwd, "deno.json"));
      args.push("--config", join(cwd, "deno.json"));
    } catch {
      // Installed without a config file: the module graph resolves on its own.
    }
  }
  return { exec, args: [...args, main, ...workerArgs], cwd };
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

/** Waits `ms`, or less when `signal` aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    if (signal.aborted) done();
    else signal.addEventListener("abort", done);
  });
}

interface Child {
  index: number;
  process: Deno.ChildProcess;
  workerId: string;
  startedAt: number;
}

export async function runSupervisor(opts: SupervisorOptions): Promise<number> {
  const { log } = opts;
  const host = Deno.hostname();
  const store: Store = await openStore(opts.db);
  try {
    await store.assertWritable();
  } catch (e) {
    await store.close();
    throw e;
  }
  const pidFile = join(pidDir(opts.db), `${Deno.pid}.pid`);
  Deno.mkdirSync(pidDir(opts.db), { recursive: true, mode: 0o700 });
  Deno.writeTextFileSync(pidFile, `${Deno.pid}\n`, { mode: 0o600 });

  let signals = 0;
  let storeGone = false;
  const children = new Map<number, Child>();
  const exits: Promise<void>[] = [];
  /** Per worker slot: the next restart delay of a worker that keeps failing as it starts. */
  const restartDelay = new Map<number, number>();
  const stopping = new AbortController();

  const spawn = (index: number) => {
    const nonce = crypto.randomUUID().slice(0, 6);
    const cmd = workerCommand(opts.db, host, opts.logLevel, nonce);
    const process = new Deno.Command(cmd.exec, {
      args: cmd.args,
      cwd: cmd.cwd,
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
          db: opts.db,
          action: "stopping all workers; start them again once the database is in place",
        });
        onSignal();
      }
      return;
    }
    if (status.success && signals > 0) return;
    // Died on its own (crash, kill -9, OOM): its job's processes outlived it in their own
    // session, so end them before the job goes back to the queue (now, not after the lease runs
    // out); otherwise the retry would run beside them.
    if (!status.success) await killJobsOf(child.workerId);
    const now = Date.now();
    try {
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
    if (signals > 0) return;
    const delay = nextRestartDelay(child.index, status, now - child.startedAt);
    log.warn("worker.died", {
      worker: child.process.pid,
      exit_code: status.code,
      signal: status.signal ?? undefined,
      restart_in: formatDuration(delay),
    });
    await sleep(delay, stopping.signal);
    if (signals === 0) spawn(child.index);
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

  const onSignal = () => {
    signals++;
    stopping.abort();
    const sig: Deno.Signal = signals >= 3 ? "SIGKILL" : "SIGTERM";
    if (signals === 1) {
      log.info("supervisor.stopping", {
        workers: children.size,
        hint: "running jobs finish first; press Ctrl+C again to stop them now",
      });
    } else if (signals === 2) {
      log.warn("supervisor.stopping_now", {
        hint: "interrupting running jobs; they go back to the queue",
      });
    }
    for (const c of children.values()) {
      try {
        c.process.kill(sig);
      } catch { /* already exited */ }
    }
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);

  log.info("supervisor.started", { workers: opts.count, db: opts.db, pid: Deno.pid });
  try {
    for (let i = 0; i < opts.count; i++) spawn(i);
    // Wait until every worker, restarted ones included, has exited.
    while (exits.length > 0) await exits.shift();
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
    try {
      Deno.removeSync(pidFile);
    } catch { /* gone */ }
    await store.close();
  }
  log.info("supervisor.stopped");
  return storeGone ? 1 : 0;
}
