/**
 * Finds and ends what a job left behind, however it detached. On Linux the worker makes itself a
 * child subreaper (`prctl(PR_SET_CHILD_SUBREAPER)`), so any process a job started that outlives
 * its parent (`setsid cmd &`, `nohup`, a double fork, `env -i`) is re-parented to the worker
 * instead of to init. Once the job's shell has ended, every remaining child of the worker is such
 * an escapee: `endOrphans` kills each one's process group and the process itself, and reaps it.
 *
 * libc is reached through Deno's FFI (libc.ts), with the permission scoped to libc's path
 * (`--allow-ffi=<libc>`). Where that is not available (macOS, a denied permission, a libc this
 * does not know), `enableSubreaper` returns false and the executor relies on the job's process
 * group and bounded waits alone.
 */
import { type Libc, openLibc } from "./libc.ts";

export { libcPaths } from "./libc.ts";

const PR_SET_CHILD_SUBREAPER = 36;
const WNOHANG = 1;
const O_RDONLY = 0;

let libc: Libc | null = null;

/**
 * Pids of jobs this process runs now (whichever spawn path started them). Their exit status
 * belongs to the executor that started them: `endOrphans` never kills or reaps them.
 */
const jobPids = new Set<number>();

/** Marks `pid` as a running job's own process until `untrackJob`. */
export function trackJob(pid: number) {
  jobPids.add(pid);
}

/** The job's process has been reaped (or its status taken) by its executor. */
export function untrackJob(pid: number) {
  jobPids.delete(pid);
}

/**
 * Makes this process a child subreaper. Returns false where that is not possible here; then
 * `endOrphans` does nothing.
 */
export function enableSubreaper(): boolean {
  if (libc) return true;
  const lib = openLibc();
  if (!lib || lib.prctl(PR_SET_CHILD_SUBREAPER, 1n, 0n, 0n, 0n) !== 0) return false;
  libc = lib;
  return true;
}

/** Spawns in flight: their child exists, but its pid is not known (or tracked) yet. */
const spawning = new Set<Promise<unknown>>();

/**
 * Marks a spawn in flight until `spawn` settles; resolve it only once the child's pid is tracked
 * (`trackJob`), so that `endOrphans` never takes a job's own process for an orphan.
 */
export function trackSpawn<T>(spawn: Promise<T>): Promise<T> {
  spawning.add(spawn);
  spawn.then(() => spawning.delete(spawn), () => spawning.delete(spawn));
  return spawn;
}

/** Read once per job: allocated once. */
let childrenPath: Uint8Array | undefined;
const childrenBuf = new Uint8Array(64 * 1024);

/** Pids of this process's children (its main thread's, where re-parented orphans arrive). */
function children(): number[] {
  const lib = libc!;
  childrenPath ??= new TextEncoder().encode(`/proc/${Deno.pid}/task/${Deno.pid}/children\0`);
  const fd = lib.open(childrenPath, O_RDONLY);
  if (fd < 0) return [];
  const buf = childrenBuf;
  let text = "";
  try {
    for (;;) {
      const n = Number(lib.read(fd, buf, BigInt(buf.length)));
      if (n <= 0) break;
      text += new TextDecoder().decode(buf.subarray(0, n));
    }
  } finally {
    lib.close(fd);
  }
  return text.split(/\s+/).filter((s) => s !== "").map(Number).filter((n) => n > 0);
}

function kill(target: number) {
  try {
    Deno.kill(target, "SIGKILL");
  } catch {
    // Gone already, or not a group leader.
  }
}

/**
 * Kills and reaps every child this process has that is not in `keep` (its own live children,
 * such as a job still running). Call it after the job's shell has been awaited: the children left
 * then are processes the job started and abandoned. Returns how many it ended.
 *
 * !!! `waitpid` is called only on pids no executor waits for (re-parented orphans): never on a
 * pid in `keep` or tracked by `trackJob`, since reaping a job's own process here would steal its
 * exit status from the executor (Deno's, or the posix_spawn path's). !!!
 */
export async function endOrphans(keep: ReadonlySet<number> = new Set()): Promise<number> {
  if (!libc) return 0;
  const ended = new Set<number>();
  // Killing one orphan re-parents its own children to us; go round until none is left (bounded:
  // a fork bomb must not hold the worker).
  for (let round = 0; round < 50; round++) {
    while (spawning.size > 0) await Promise.allSettled(spawning);
    const pids = children().filter((p) => !keep.has(p) && !jobPids.has(p));
    if (pids.length === 0) break;
    for (const pid of pids) {
      kill(-pid);
      kill(pid);
      ended.add(pid);
    }
    await new Promise((r) => setTimeout(r, round < 5 ? 2 : 20));
    for (const pid of pids) libc.waitpid(pid, null, WNOHANG);
  }
  return ended.size;
}
