/**
 * libc, reached through Deno's FFI, opened once per process for the subreaper (reaper.ts) and
 * the posix_spawn path (posix_spawn.ts). The permission is scoped to libc's own path
 * (`--allow-ffi=<libc>`, see `libcPaths`), so the library is opened by full path, never by soname.
 * Where libc cannot be opened (macOS, Windows, a denied permission), `openLibc` returns null and
 * each caller keeps its fallback. Declarations only; what the calls mean lives with their callers.
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
  waitpid: { parameters: ["i32", "buffer", "i32"], result: "i32" },
  open: { parameters: ["buffer", "i32"], result: "i32" },
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  close: { parameters: ["i32"], result: "i32" },
  // The spawn path. Everything it needs beyond POSIX is optional, so that a libc without it
  // still serves the subreaper; posix_spawn.ts checks what it needs.
  posix_spawnp: {
    parameters: ["buffer", "buffer", "buffer", "buffer", "buffer", "buffer"],
    result: "i32",
  },
  posix_spawn: {
    parameters: ["buffer", "buffer", "buffer", "buffer", "buffer", "buffer"],
    result: "i32",
  },
  /**
   * posix_spawn(p) on a thread of its own: the worker's event loop runs on while the kernel
   * clones and the child reaches its exec (the caller waits for that much).
   */
  posix_spawnAsync: {
    name: "posix_spawn",
    parameters: ["buffer", "buffer", "buffer", "buffer", "buffer", "buffer"],
    result: "i32",
    nonblocking: true,
  },
  posix_spawnpAsync: {
    name: "posix_spawnp",
    parameters: ["buffer", "buffer", "buffer", "buffer", "buffer", "buffer"],
    result: "i32",
    nonblocking: true,
  },
  posix_spawn_file_actions_init: { parameters: ["buffer"], result: "i32" },
  posix_spawn_file_actions_destroy: { parameters: ["buffer"], result: "i32" },
  posix_spawn_file_actions_addopen: {
    parameters: ["buffer", "i32", "buffer", "i32", "u32"],
    result: "i32",
  },
  posix_spawn_file_actions_adddup2: { parameters: ["buffer", "i32", "i32"], result: "i32" },
  posix_spawn_file_actions_addchdir_np: {
    parameters: ["buffer", "buffer"],
    result: "i32",
    optional: true,
  },
  posix_spawnattr_init: { parameters: ["buffer"], result: "i32" },
  posix_spawnattr_setflags: { parameters: ["buffer", "i16"], result: "i32" },
  posix_spawnattr_setsigmask: { parameters: ["buffer", "buffer"], result: "i32" },
  posix_spawnattr_setsigdefault: { parameters: ["buffer", "buffer"], result: "i32" },
  sigemptyset: { parameters: ["buffer"], result: "i32" },
  sigfillset: { parameters: ["buffer"], result: "i32" },
  pipe2: { parameters: ["buffer", "i32"], result: "i32" },
  fcntl: { parameters: ["i32", "i32", "i32"], result: "i32" },
  pidfd_open: { parameters: ["i32", "u32"], result: "i32", optional: true },
  syscall: { parameters: ["i64", "i64", "i64"], result: "i64" },
  poll: { parameters: ["buffer", "u64", "i32"], result: "i32" },
  access: { parameters: ["buffer", "i32"], result: "i32" },
  /** Waits on a thread of its own, so the event loop runs on while a job does. */
  pollAsync: {
    name: "poll",
    parameters: ["buffer", "u64", "i32"],
    result: "i32",
    nonblocking: true,
  },
  // With `--allow-ffi` scoped to a path, Deno refuses its pointer helpers (UnsafePointerView,
  // UnsafePointer.of): memory is read, and addresses taken, through libc calls instead, with
  // addresses passed as integers.
  strlen: { parameters: ["usize"], result: "usize" },
  strerror: { parameters: ["i32"], result: "usize" },
  /** memcpy(dst, src, n) from an address. */
  copyFrom: { name: "memcpy", parameters: ["buffer", "usize", "usize"], result: "usize" },
  /** memcpy(dst, src, n) from a pointer object (a static's address). */
  copyFromPointer: { name: "memcpy", parameters: ["buffer", "pointer", "usize"], result: "usize" },
  /** memcpy(b, b, 0) returns b: the address of a buffer's bytes. */
  addressOf: { name: "memcpy", parameters: ["buffer", "buffer", "usize"], result: "usize" },
  /** The address of libc's `environ` variable. */
  environ: { type: "pointer" },
} as const;

export type Libc = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

/** The NUL-ended string at `address`, as bytes (copied). */
export function cStringAt(l: Libc, address: bigint): Uint8Array {
  const n = Number(l.strlen(address));
  const bytes = new Uint8Array(n);
  if (n > 0) l.copyFrom(bytes, address, BigInt(n));
  return bytes;
}

let opened: Libc | null | undefined;

/** libc's symbols, opened on first use; null where libc cannot be opened here. */
export function openLibc(): Libc | null {
  if (opened !== undefined) return opened;
  opened = null;
  if (Deno.build.os !== "linux") return opened;
  for (const path of LIBC_CANDIDATES) {
    try {
      // Held for the life of the process, like libc itself.
      opened = Deno.dlopen(path, SYMBOLS).symbols;
      break;
    } catch {
      // Not there, or not allowed: try the next.
    }
  }
  return opened;
}
