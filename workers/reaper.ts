/**
 * Finds and ends what a job left behind, however it detached. On Linux the worker makes itself a
 * child subreaper (`prctl(PR_SET_CHILD_SUBREAPER)`), so any process a job started that outlives
 * its parent (`setsid cmd &`, `nohup`, a double fork, `env -i`) is re-parented to the worker
 * instead of to init. Once the job's shell has ended, every remaining child of the worker is such
 * an escapee: `endOrphans` kills each one's process group and the process itself, and reaps it.
 *
 * libc is reached through Deno's FFI, with the permission scoped to libc's path
 * (`--allow-ffi=<libc>`). Where that is not available (macOS, a denied permission, a libc this
 * does not know), `enableSubreaper` returns false and the executor relies on the job's process
 * group and bounded waits alone.
 */

/** Where libc may live on the Linux systems queuectl runs on (glibc and musl). */
export const LIBC_CANDIDATES = [
  "/lib/x86_64-linux-gnu/libc.so.6",
  "/usr/lib/x86_64-linux-gnu/libc.so.6",
  "/lib/aarch64-linux-gnu/libc.so.6",
  "/usr/lib/aarch64-linux-gnu/libc.so.6",
  "/lib64/libc.so.6",
  "/usr/lib64/libc.so.6",
  "/lib/libc.so.6",
  "/usr/lib/libc.so.6",
  "/lib/ld-musl-x86_64.so.1",
  "/lib/ld-musl-aarch64.so.1",
];

/** The candidates that exist here, for the worker's `--allow-ffi=` list (empty off Linux). */
export function libcPaths(): string[] {
  if (Deno.build.os !== "linux") return [];
  return LIBC_CANDIDATES.filter((p) => {
    try {
      return Deno.statSync(p).isFile;
    } catch {
      return false;
    }
  });
}

const SYMBOLS = {
  prctl: { parameters: ["i32", "u64", "u64", "u64", "u64"], result: "i32" },
  waitpid: { parameters: ["i32", "pointer", "i32"], result: "i32" },
  open: { parameters: ["buffer", "i32"], result: "i32" },
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  close: { parameters: ["i32"], result: "i32" },
} as const;

const PR_SET_CHILD_SUBREAPER = 36;
const WNOHANG = 1;
const O_RDONLY = 0;

let libc: Deno.DynamicLibrary<typeof SYMBOLS> | null = null;

/**
 * Makes this process a child subreaper. Returns false where that is not possible here; then
 * `endOrphans` does nothing.
 */
export function enableSubreaper(): boolean {
  if (libc) return true;
  if (Deno.build.os !== "linux") return false;
  for (const path of LIBC_CANDIDATES) {
    try {
      const lib = Deno.dlopen(path, SYMBOLS);
      if (lib.symbols.prctl(PR_SET_CHILD_SUBREAPER, 1n, 0n, 0n, 0n) !== 0) {
        lib.close();
        return false;
      }
      libc = lib;
      return true;
    } catch {
      // Not there, or not allowed: try the next.
    }
  }
  return false;
}

/** Pids of this process's children (its main thread's, where re-parented orphans arrive). */
function children(): number[] {
  const lib = libc!;
  const path = new TextEncoder().encode(`/proc/${Deno.pid}/task/${Deno.pid}/children\0`);
  const fd = lib.symbols.open(path, O_RDONLY);
  if (fd < 0) return [];
  const buf = new Uint8Array(64 * 1024);
  let text = "";
  try {
    for (;;) {
      const n = Number(lib.symbols.read(fd, buf, BigInt(buf.length)));
      if (n <= 0) break;
      text += new TextDecoder().decode(buf.subarray(0, n));
    }
  } finally {
    lib.symbols.close(fd);
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
 * !!! `waitpid` is called only on pids Deno did not start (re-parented orphans); reaping one of
 * Deno's own children here would steal its exit status. !!!
 */
export async function endOrphans(keep: ReadonlySet<number> = new Set()): Promise<number> {
  if (!libc) return 0;
  const ended = new Set<number>();
  // Killing one orphan re-parents its own children to us; go round until none is left (bounded:
  // a fork bomb must not hold the worker).
  for (let round = 0; round < 50; round++) {
    const pids = children().filter((p) => !keep.has(p));
    if (pids.length === 0) break;
    for (const pid of pids) {
      kill(-pid);
      kill(pid);
      ended.add(pid);
    }
    await new Promise((r) => setTimeout(r, round < 5 ? 2 : 20));
    for (const pid of pids) libc.symbols.waitpid(pid, null, WNOHANG);
  }
  return ended.size;
}
