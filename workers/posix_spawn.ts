/**
 * The fast spawn path (Linux): `sh -c COMMAND` started by libc's `posix_spawnp` through Deno's
 * FFI, with no wrapper process and no stream machinery. The child gets, from spawn attributes and
 * file actions alone (no fork of the worker, no pre-exec code): a session and process group of its
 * own (`POSIX_SPAWN_SETSID`, as `setsid sh -c` gave, so `kill(-pid)` ends its whole tree and no
 * terminal signal reaches it), every signal at its default and none blocked, stdin from
 * /dev/null, stdout and stderr on two pipes, the job's directory and environment. Two pipes keep
 * stderr apart for the job's `error` (its last lines), as the `Deno.Command` path does; the
 * output interleaves the two in the order the worker reads them, so lines printed to both within
 * one wake-up of the worker come stdout first.
 *
 * The worker reads the pipes only when they hold something: one `poll` on the two pipes and a
 * pidfd of the child runs on a thread of its own (a nonblocking FFI call), and wakes the event loop
 * when output arrives or the shell ends. A job that prints faster than the worker reads blocks on
 * its full pipe, so memory stays bounded, and nothing is ever written to disk.
 *
 * This module spawns, reads and reaps; deciding when to kill and what the outcome is belongs to
 * executor.ts. No store access here.
 */
import { cStringAt, type Libc, openLibc } from "./libc.ts";

const POSIX_SPAWN_SETSIGDEF = 0x04;
const POSIX_SPAWN_SETSIGMASK = 0x08;
const POSIX_SPAWN_SETSID = 0x80;
const O_RDONLY = 0;
const O_NONBLOCK = 0o4000;
const O_CLOEXEC = 0o2000000;
const F_GETFL = 3;
const F_SETFL = 4;

const POLLIN = 0x1;
const SYS_PIDFD_OPEN = 434;
const ENOENT = 2;
/** Generous upper bounds of glibc's and musl's opaque types (336, 80 and 128 bytes). */
const ATTR_BYTES = 512;
const FILE_ACTIONS_BYTES = 256;
const SIGSET_BYTES = 128;
/** Reads of one wake-up, at most: a job that never stops printing must not hold the event loop. */
const READS_PER_WAKE = 16;
/** How long `waitExit` may block the event loop for a shell whose pipes have just closed. */
const EXIT_SETTLE_MS = 1;
/** One `struct pollfd` for that synchronous poll (never shared across an await). */
const pidfdPoll = new Uint8Array(8);
/**
 * Jobs of this process between their spawn and `close` (spawns in flight included): a spawn goes
 * to a thread only when another job is there to be served meanwhile.
 */
let busy = 0;

/** Linux signal numbers (x86_64 and aarch64 agree) and Deno's names for them. */
const SIGNAL_NAMES: Record<number, Deno.Signal> = {
  1: "SIGHUP",
  2: "SIGINT",
  3: "SIGQUIT",
  4: "SIGILL",
  5: "SIGTRAP",
  6: "SIGABRT",
  7: "SIGBUS",
  8: "SIGFPE",
  9: "SIGKILL",
  10: "SIGUSR1",
  11: "SIGSEGV",
  12: "SIGUSR2",
  13: "SIGPIPE",
  14: "SIGALRM",
  15: "SIGTERM",
  16: "SIGSTKFLT",
  17: "SIGCHLD",
  18: "SIGCONT",
  19: "SIGSTOP",
  20: "SIGTSTP",
  21: "SIGTTIN",
  22: "SIGTTOU",
  23: "SIGURG",
  24: "SIGXCPU",
  25: "SIGXFSZ",
  26: "SIGVTALRM",
  27: "SIGPROF",
  28: "SIGWINCH",
  29: "SIGIO",
  30: "SIGPWR",
  31: "SIGSYS",
};

/** How the shell ended, in the shape of `Deno.CommandStatus`. */
export interface ExitStatus {
  success: boolean;
  /** The exit code, or 128 + the signal's number when a signal ended it (as Deno reports it). */
  code: number;
  signal: Deno.Signal | null;
}

/** Decodes a `waitpid` status word. */
export function decodeStatus(status: number): ExitStatus {
  const sig = status & 0x7f;
  if (sig === 0) {
    const code = (status >> 8) & 0xff;
    return { success: code === 0, code, signal: null };
  }
  return { success: false, code: 128 + sig, signal: SIGNAL_NAMES[sig] ?? null };
}

/** Why a spawn failed: libc's error number and its text. */
export class SpawnError extends Error {
  constructor(readonly errno: number, message: string) {
    super(message);
  }
  /** The directory or `sh` is missing. */
  get notFound(): boolean {
    return this.errno === ENOENT;
  }
}

const enc = new TextEncoder();
const dec = new TextDecoder();
const DEV_NULL = enc.encode("/dev/null\0");
const SH = enc.encode("sh\0");
/** One read buffer for every job of this process: reads are synchronous, so never shared. */
const scratch = new Uint8Array(64 * 1024);

let lib: Libc | null = null;
/**
 * `sh` as found once in the worker's PATH (as posix_spawnp would find it, the same for every job
 * since the worker's environment never changes), so each child execs it at once instead of trying
 * every directory before it; null where PATH holds a relative directory (then posix_spawnp
 * searches it, from the job's directory, as before).
 */
let shPath: Uint8Array | null = null;
/** The spawn attributes are the same for every job: built once. */
let attr: Uint8Array | null = null;

function errorText(l: Libc, errno: number): string {
  const p = BigInt(l.strerror(errno));
  return `${p ? dec.decode(cStringAt(l, p)) : "error"} (os error ${errno})`;
}

/**
 * Readies libc for spawning; returns why it cannot (a libc without what this needs), or null.
 * The real test is `selfCheck`.
 */
function prepare(): string | null {
  if (lib && attr) return null;
  const l = openLibc();
  if (!l) return "libc cannot be opened here (not Linux, or --allow-ffi does not name it)";
  if (!l.posix_spawn_file_actions_addchdir_np) {
    return "libc has no posix_spawn_file_actions_addchdir_np (glibc 2.29 or later needed)";
  }
  const a = new Uint8Array(ATTR_BYTES);
  const all = new Uint8Array(SIGSET_BYTES);
  const none = new Uint8Array(SIGSET_BYTES);
  if (
    l.posix_spawnattr_init(a) !== 0 || l.sigfillset(all) !== 0 || l.sigemptyset(none) !== 0 ||
    // A shell expects default dispositions and an empty mask; Deno ignores SIGPIPE, and a
    // handler's or an ignored disposition would otherwise pass on to the job.
    l.posix_spawnattr_setsigdefault(a, all) !== 0 ||
    l.posix_spawnattr_setsigmask(a, none) !== 0
  ) {
    return "posix_spawnattr_* failed";
  }
  const rc = l.posix_spawnattr_setflags(
    a,
    POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK,
  );
  if (rc !== 0) return `libc refuses POSIX_SPAWN_SETSID: ${errorText(l, rc)}`;
  lib = l;
  attr = a;
  shPath = findSh(l);
  return null;
}

const X_OK = 1;

function findSh(l: Libc): Uint8Array | null {
  const path = (parentEnv ??= readParentEnv(l)).find((p) => p.name === "PATH");
  // glibc's search path where PATH is not set.
  const dirs = path ? dec.decode(path.entry.subarray(5)).split(":") : ["/bin", "/usr/bin"];
  for (const dir of dirs) {
    if (!dir.startsWith("/")) return null;
    const name = enc.encode(`${dir.replace(/\/+$/, "")}/sh\0`);
    if (l.access(name, X_OK) !== 0) continue;
    const file = new Uint8Array(new ArrayBuffer(name.length));
    file.set(name);
    return file;
  }
  return null;
}

/** `pipe2(O_CLOEXEC)`, its read end made nonblocking (the child's end stays blocking). */
function pipe(l: Libc): [number, number] {
  const fds = new Int32Array(2);
  if (l.pipe2(fds, O_CLOEXEC) !== 0) throw new SpawnError(0, "cannot create a pipe");
  l.fcntl(fds[0], F_SETFL, l.fcntl(fds[0], F_GETFL, 0) | O_NONBLOCK);
  return [fds[0], fds[1]];
}

/**
 * The worker's own environment, read once from libc's `environ` at the first spawn (as bytes, with
 * each variable's name). Nothing in a worker changes its environment after it starts.
 */
let parentEnv: { name: string; entry: Uint8Array }[] | undefined;

function readParentEnv(l: Libc) {
  const env: { name: string; entry: Uint8Array }[] = [];
  const word = new BigUint64Array(1);
  l.copyFromPointer(word, l.environ, 8n);
  const environ = word[0];
  if (environ) {
    for (let at = environ;; at += 8n) {
      l.copyFrom(word, at, 8n);
      if (!word[0]) break;
      const entry = cStringAt(l, word[0]);
      const eq = entry.indexOf(0x3d);
      env.push({ name: dec.decode(entry.subarray(0, eq < 0 ? entry.length : eq)), entry });
    }
  }
  return env;
}

/**
 * What one spawn hands libc: a block of NUL-ended strings (argv, envp, the directory), the two
 * NULL-ended pointer arrays into it, the file actions and the pid slot. The spawn runs on a thread
 * of its own while the event loop goes on (and may start other spawns), so each spawn holds its
 * own set until libc returns; then the set goes back to a pool, and a job costs no garbage here.
 * The block is an ArrayBuffer of its own, whose bytes never move, so the addresses taken of it
 * stay valid; it only grows.
 */
class SpawnArgs {
  block = new Uint8Array(0);
  blockBase = 0n;
  pointers = new BigUint64Array(0);
  // Each on an ArrayBuffer of its own (never a small typed array V8 may keep on its heap and
  // move), since a thread reads or writes them while the event loop runs.
  readonly fa = new Uint8Array(new ArrayBuffer(FILE_ACTIONS_BYTES));
  readonly pid = new Int32Array(new ArrayBuffer(4));
  argv = this.pointers;
  envp = this.pointers;
  cwd = this.block;

  /**
   * Fills `argv` (`sh -c command`), `envp` (the worker's environment with the job's variables
   * replacing or adding to it, as `Deno.Command`'s `env` does) and `cwd`.
   */
  fill(l: Libc, command: string, cwd: string, env: Record<string, string> | null) {
    const parent = parentEnv ??= readParentEnv(l);
    const own = env ? Object.entries(env) : [];
    // UTF-8 takes at most 3 bytes per UTF-16 unit.
    let need = 6 + 3 * (command.length + cwd.length) + 2;
    for (const p of parent) need += p.entry.length + 1;
    for (const [k, v] of own) need += 3 * (k.length + v.length) + 2;
    if (this.block.length < need) {
      this.block = new Uint8Array(new ArrayBuffer(Math.max(need, 2 * this.block.length, 16384)));
      this.blockBase = BigInt(l.addressOf(this.block, this.block, 0n));
    }
    const count = 3 + 1 + parent.length + own.length + 1;
    if (this.pointers.length < count) {
      this.pointers = new BigUint64Array(
        new ArrayBuffer(8 * Math.max(count, 2 * this.pointers.length, 64)),
      );
    }
    const { block, blockBase, pointers } = this;
    let at = 0;
    let i = 0;
    const put = (s: string) => {
      if (s.includes("\0")) throw new SpawnError(0, "its command or environment holds a NUL byte");
      pointers[i++] = blockBase + BigInt(at);
      at += enc.encodeInto(s, block.subarray(at)).written;
      block[at++] = 0;
    };
    put("sh");
    put("-c");
    put(command);
    pointers[i++] = 0n;
    const envStart = i;
    for (const p of parent) {
      if (env && Object.hasOwn(env, p.name)) continue;
      pointers[i++] = blockBase + BigInt(at);
      block.set(p.entry, at);
      at += p.entry.length;
      block[at++] = 0;
    }
    for (const [k, v] of own) put(`${k}=${v}`);
    pointers[i++] = 0n;
    const cwdAt = at;
    at += enc.encodeInto(cwd, block.subarray(at)).written;
    block[at++] = 0;
    this.argv = pointers.subarray(0, envStart);
    this.envp = pointers.subarray(envStart, i);
    this.cwd = block.subarray(cwdAt, at);
  }
}

/** Sets of spawn arguments not in use (as many as spawns ever ran at once). */
const pool: SpawnArgs[] = [];

/** One job's shell started by posix_spawnp: its pid, its output pipes and a pidfd. */
export class PosixChild {
  #fds: { fd: number; sink: (chunk: Uint8Array) => void; open: boolean }[];
  #exited = false;
  #reaped: ExitStatus | null = null;
  #closed = false;

  private constructor(
    readonly pid: number,
    readonly pidfd: number,
    stdout: number,
    stderr: number,
    onStdout: (chunk: Uint8Array) => void,
    onStderr: (chunk: Uint8Array) => void,
  ) {
    this.#fds = [
      { fd: stdout, sink: onStdout, open: true },
      { fd: stderr, sink: onStderr, open: true },
    ];
  }

  /**
   * Starts `sh -c command` in `cwd`. Rejects with `SpawnError` when it cannot start (a missing
   * directory or shell: `notFound`). Its output goes to `onStdout` and `onStderr` while
   * `waitExit` and `drain` run; each chunk is valid only during the call.
   *
   * !!! The child exists before this resolves: whoever reaps unknown children (reaper.ts) must
   * wait for spawns in flight, or it would take this one for an orphan. !!!
   */
  static async spawn(
    command: string,
    cwd: string,
    env: Record<string, string> | null,
    onStdout: (chunk: Uint8Array) => void,
    onStderr: (chunk: Uint8Array) => void,
  ): Promise<PosixChild> {
    const why = prepare();
    if (why) throw new SpawnError(0, why);
    const l = lib!;
    const args = pool.pop() ?? new SpawnArgs();
    let outR = -1, outW = -1, errR = -1, errW = -1;
    let pid = -1;
    let actions = false;
    let counted = false;
    try {
      args.fill(l, command, cwd, env);
      [outR, outW] = pipe(l);
      [errR, errW] = pipe(l);
      const fa = args.fa;
      actions = l.posix_spawn_file_actions_init(fa) === 0;
      if (
        !actions ||
        l.posix_spawn_file_actions_addopen(fa, 0, DEV_NULL, O_RDONLY, 0) !== 0 ||
        l.posix_spawn_file_actions_adddup2(fa, outW, 1) !== 0 ||
        l.posix_spawn_file_actions_adddup2(fa, errW, 2) !== 0 ||
        l.posix_spawn_file_actions_addchdir_np!(fa, args.cwd) !== 0
      ) {
        throw new SpawnError(0, "posix_spawn_file_actions_* failed");
      }
      // `args` (every buffer libc reads or writes) is held until the call returns.
      // With no other job in this process the event loop has nothing to do while the kernel
      // clones and the child reaches its exec; with others it reads their pipes and reaps them,
      // and starts their successors, meanwhile.
      const onThread = busy > 0;
      busy++;
      counted = true;
      const rc = shPath
        ? (onThread
          ? await l.posix_spawnAsync(args.pid, shPath, fa, attr!, args.argv, args.envp)
          : l.posix_spawn(args.pid, shPath, fa, attr!, args.argv, args.envp))
        : (onThread
          ? await l.posix_spawnpAsync(args.pid, SH, fa, attr!, args.argv, args.envp)
          : l.posix_spawnp(args.pid, SH, fa, attr!, args.argv, args.envp));
      if (rc !== 0) throw new SpawnError(rc, errorText(l, rc));
      pid = args.pid[0];
    } catch (e) {
      if (counted) busy--;
      if (outR >= 0) l.close(outR);
      if (errR >= 0) l.close(errR);
      throw e;
    } finally {
      if (actions) l.posix_spawn_file_actions_destroy(args.fa);
      if (outW >= 0) l.close(outW);
      if (errW >= 0) l.close(errW);
      pool.push(args);
    }
    const pidfd = l.pidfd_open
      ? l.pidfd_open(pid, 0)
      : Number(l.syscall(BigInt(SYS_PIDFD_OPEN), BigInt(pid), 0n));
    if (pidfd < 0) {
      // Without a pidfd its end cannot be seen without blocking: end it now (it has only just
      // started) and report a failed spawn.
      try {
        Deno.kill(-pid, "SIGKILL");
      } catch { /* gone */ }
      l.waitpid(pid, null, 0);
      l.close(outR);
      l.close(errR);
      busy--;
      throw new SpawnError(0, "cannot watch the job's process (pidfd_open failed)");
    }
    return new PosixChild(pid, pidfd, outR, errR, onStdout, onStderr);
  }

  /** Reads what the pipes hold now (bounded); marks a pipe closed at its end of file. */
  #readAvailable() {
    const l = lib!;
    for (const f of this.#fds) {
      for (let i = 0; f.open && i < READS_PER_WAKE; i++) {
        const n = Number(l.read(f.fd, scratch, BigInt(scratch.length)));
        if (n > 0) f.sink(scratch.subarray(0, n));
        else if (n === 0) f.open = false;
        // -1: EAGAIN (nothing now) or EINTR; poll says when to try again.
        if (n < scratch.length) break;
      }
    }
  }

  /** Polls the open pipes (and the pidfd, until the shell ended) for up to `timeoutMs` (-1: no limit). */
  async #poll(timeoutMs: number): Promise<void> {
    const watched = this.#fds.filter((f) => f.open).map((f) => f.fd);
    if (!this.#exited) watched.push(this.pidfd);
    if (watched.length === 0) return;
    const pfds = new Uint8Array(8 * watched.length);
    const view = new DataView(pfds.buffer);
    watched.forEach((fd, i) => {
      view.setInt32(i * 8, fd, true);
      view.setInt16(i * 8 + 4, POLLIN, true);
    });
    await lib!.pollAsync(pfds, BigInt(watched.length), timeoutMs);
    if (!this.#exited && view.getInt16((watched.length - 1) * 8 + 6, true) !== 0) {
      this.#exited = true;
    }
  }

  /**
   * Resolves once the shell has ended, passing on its output meanwhile. Its process stays a
   * zombie (its pid and group are not reused) until `reap`.
   */
  async waitExit(): Promise<void> {
    for (;;) {
      this.#readAvailable();
      if (this.#exited) return;
      // Both pipes at their end: the shell is most likely exiting this moment (its files close
      // just before its pidfd turns readable). A short wait here, on the event loop's thread,
      // saves a second trip through the poll thread for nearly every job.
      if (this.#fds.every((f) => !f.open) && this.#exitedWithin(EXIT_SETTLE_MS)) return;
      await this.#poll(-1);
    }
  }

  /** Whether the pidfd turns readable within `ms` (a blocking poll: keep `ms` tiny). */
  #exitedWithin(ms: number): boolean {
    const view = new DataView(pidfdPoll.buffer);
    view.setInt32(0, this.pidfd, true);
    view.setInt16(4, POLLIN, true);
    view.setInt16(6, 0, true);
    if (lib!.poll(pidfdPoll, 1n, ms) === 1 && view.getInt16(6, true) !== 0) this.#exited = true;
    return this.#exited;
  }

  /** Takes the ended shell's exit status, freeing its pid. Call once `waitExit` has resolved. */
  reap(): ExitStatus {
    if (this.#reaped) return this.#reaped;
    const status = new Int32Array(1);
    // The shell has ended (its pidfd said so): this does not block.
    const r = lib!.waitpid(this.pid, status, 0);
    this.#reaped = r === this.pid
      ? decodeStatus(status[0])
      : { success: false, code: -1, signal: null };
    return this.#reaped;
  }

  /**
   * Reads the pipes to their end of file, for at most `timeoutMs` (a process that escaped the
   * job's group may hold them open). True when both reached their end.
   */
  async drain(timeoutMs: number): Promise<boolean> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      this.#readAvailable();
      if (this.#fds.every((f) => !f.open)) return true;
      const left = Math.ceil(deadline - performance.now());
      if (left <= 0) return false;
      await this.#poll(left);
    }
  }

  /** Closes the pipes and the pidfd. */
  close() {
    if (this.#closed) return;
    this.#closed = true;
    busy--;
    const l = lib!;
    for (const f of this.#fds) l.close(f.fd);
    l.close(this.pidfd);
    this.#fds = [];
  }
}

/** Why this path cannot be used here (libc missing or lacking a feature), or null. */
export function unavailableReason(): string | null {
  return prepare();
}
