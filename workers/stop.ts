/**
 * The stop protocol, shared by the supervisor, its workers and `queuectl worker stop`.
 *
 * Signals (the same for a supervisor and for a worker):
 * - `SIGTERM` asks for a graceful stop: claim nothing more, let running jobs finish, exit 0.
 *   Asking again, however often, changes nothing: a graceful stop stays graceful.
 * - `SIGQUIT` forces the stop: running jobs are interrupted (process tree killed, SIGKILL after
 *   `kill-grace`) and go back to `pending` without using a retry; the supervisor exits 130.
 *   (Not SIGUSR1: Deno opens its debugger on SIGUSR1.) Ctrl+\ in the workers' terminal sends
 *   SIGQUIT to the supervisor and its workers alike, so it forces too.
 * - `SIGINT` (Ctrl+C) is the supervisor's alone: the first is graceful, the second forced, the
 *   third kills the workers. Workers ignore it, since Ctrl+C reaches the whole terminal group.
 *
 * A live supervisor holds an exclusive lock on its pid file, `<db>-run/<pid>.pid`, so a pid file
 * whose lock is free belongs to a supervisor that is gone (even by SIGKILL) and is removed here.
 * Its workers (orphans, draining on their own) are then signalled directly. No CLI code here.
 */
import { runDir } from "../lib/store/open.ts";
import { join } from "../lib/paths.ts";
import type { Store, WorkerInfo } from "../lib/store/store.ts";
import { isWorkerLive } from "./liveness.ts";

/** Asks a supervisor or a worker to stop after its running job. */
export const GRACEFUL_SIGNAL: Deno.Signal = "SIGTERM";
/** Makes a supervisor or a worker interrupt its running job and exit now. */
export const FORCE_SIGNAL: Deno.Signal = "SIGQUIT";

/**
 * Writes `<db>-run/<pid>.pid` and holds an exclusive lock on it until the returned handle is
 * disposed (or the process dies, however it dies). The file is locked before it appears under its
 * name, so a concurrent `worker stop` never takes a starting supervisor for a stale one.
 */
export function writePidFile(db: string): Disposable & { path: string } {
  const dir = runDir(db);
  Deno.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const path = join(dir, `${Deno.pid}.pid`);
  const tmp = `${path}.tmp`;
  const file = Deno.openSync(tmp, { write: true, create: true, truncate: true, mode: 0o600 });
  file.lockSync(true);
  file.writeSync(new TextEncoder().encode(`${Deno.pid}\n`));
  Deno.renameSync(tmp, path);
  return {
    path,
    [Symbol.dispose]() {
      try {
        Deno.removeSync(path);
      } catch { /* gone */ }
      file.close(); // releases the lock
    },
  };
}

/**
 * The pids of the supervisors of `db` that are alive on this host (their pid file is locked).
 * Removes the pid files of supervisors that are gone and returns them in `stale`.
 */
export function scanPidFiles(db: string): { live: number[]; stale: string[] } {
  const live: number[] = [];
  const stale: string[] = [];
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(runDir(db))];
  } catch {
    return { live, stale }; // no supervisor ever ran here
  }
  for (const e of entries) {
    const m = /^(\d+)\.pid$/.exec(e.name);
    if (!e.isFile || !m) continue;
    const path = join(runDir(db), e.name);
    let file: Deno.FsFile;
    try {
      file = Deno.openSync(path, { read: true, write: true });
    } catch {
      continue; // removed meanwhile
    }
    try {
      if (!file.tryLockSync(true)) {
        live.push(Number(m[1]));
        continue;
      }
      // Free lock: its supervisor is gone. Remove the file while holding the lock, so a new
      // supervisor that reused the pid (and locks before renaming into place) is never hit.
      Deno.removeSync(path);
      stale.push(path);
    } catch {
      // Could not lock or remove (permissions): leave it.
    } finally {
      file.close();
    }
  }
  return { live, stale };
}

/** What one `worker stop` asked for. */
export interface StopRequest {
  store: Store;
  db: string;
  host: string;
  leaseTimeoutMs: number;
  /** `true`: interrupt running jobs (`FORCE_SIGNAL`); otherwise they finish first. */
  force: boolean;
}

export interface StopTargets {
  /** The live workers of this host that were asked to stop. */
  workers: WorkerInfo[];
  /** Live supervisors that were signalled (they pass the request on to their workers). */
  supervisors: number[];
  /** Workers whose supervisor is gone, signalled directly. */
  orphans: WorkerInfo[];
  /** Pid files of supervisors that are gone, removed. */
  stalePidFiles: string[];
}

function signal(pid: number, sig: Deno.Signal): boolean {
  try {
    Deno.kill(pid, sig);
    return true;
  } catch {
    return false; // exited meanwhile
  }
}

/** Live workers of `host` (of every host without it) in the store, by the one liveness rule. */
export async function liveWorkers(
  store: Store,
  host: string | undefined,
  leaseTimeoutMs: number,
): Promise<WorkerInfo[]> {
  const now = await store.now();
  return (await store.listWorkers()).filter((w) =>
    (host === undefined || w.host === host) && isWorkerLive(w, leaseTimeoutMs, now)
  );
}

/**
 * `worker stop --host H | --all-hosts`: asks the supervisors of `target`'s workers, on whatever
 * host, through the store (each looks every second). Returns the live workers asked.
 */
export async function requestStopThroughStore(
  store: Store,
  target: { host?: string },
  force: boolean,
  leaseTimeoutMs: number,
): Promise<WorkerInfo[]> {
  const now = await store.now();
  return (await store.requestStop(target, force ? "now" : "graceful", now)).filter((w) =>
    isWorkerLive(w, leaseTimeoutMs, now)
  );
}

/** Polls until none of `workers` is live any more, or until `deadline`; returns those still live. */
export async function waitWorkersGone(
  store: Store,
  workers: WorkerInfo[],
  leaseTimeoutMs: number,
  deadline: number,
): Promise<WorkerInfo[]> {
  const ids = new Set(workers.map((w) => w.id));
  for (;;) {
    const left = (await liveWorkers(store, undefined, leaseTimeoutMs)).filter((w) => ids.has(w.id));
    if (left.length === 0 || Date.now() >= deadline) return left;
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * Sends the stop signal to every live supervisor of `db` on this host, and directly to the live
 * workers whose supervisor is gone. Worker pids come from the store, where only a worker with a
 * fresh heartbeat counts, so a stale pid is never signalled.
 */
export async function signalStop(req: StopRequest): Promise<StopTargets> {
  const sig = req.force ? FORCE_SIGNAL : GRACEFUL_SIGNAL;
  const { live, stale } = scanPidFiles(req.db);
  const workers = await liveWorkers(req.store, req.host, req.leaseTimeoutMs);
  const supervisors = live.filter((pid) => signal(pid, sig));
  const orphans = workers.filter((w) => !live.includes(w.supervisorPid));
  for (const w of orphans) signal(w.pid, sig);
  return { workers, supervisors, orphans, stalePidFiles: stale };
}

/**
 * Polls until every targeted worker has unregistered (or lost its lease) and every targeted
 * supervisor has exited, or until `deadline`. Returns the workers still running.
 */
export async function waitStopped(
  req: StopRequest,
  targets: StopTargets,
  deadline: number,
): Promise<{ workers: WorkerInfo[]; supervisors: number[] }> {
  const ids = new Set(targets.workers.map((w) => w.id));
  for (;;) {
    const workers = (await liveWorkers(req.store, req.host, req.leaseTimeoutMs))
      .filter((w) => ids.has(w.id));
    const live = scanPidFiles(req.db).live;
    const supervisors = targets.supervisors.filter((pid) => live.includes(pid));
    if ((workers.length === 0 && supervisors.length === 0) || Date.now() >= deadline) {
      return { workers, supervisors };
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}
