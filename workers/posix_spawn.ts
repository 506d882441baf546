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
/** Spawning is synchronous: one set of file actions and one pid slot serve every spawn. */
const fa = new Uint8Array(FILE_ACTIONS_BYTES);
const pidOut = new Int32Array(1);

let lib: Libc | null = null;
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
 * One block of NUL-ended strings and one pointer array, reused by every spawn (spawning is
 * synchronous): a job costs the worker no garbage here. The block is an ArrayBuffer of its own,
 * whose bytes never move, so the addresses taken of it stay valid; it only grows.
 */
let block = new Uint8Array(0);
let blockBase = 0n;
let pointers = new BigUint64Array(0);

/**
 * `argv` then `envp`, as two NULL-ended pointer arrays into the shared block: `sh -c command`,
 * and the worker's environment with the job's variables replacing or adding to it, as
 * `Deno.Command`'s `env` does.
 */
function argvEnvp(l: Libc, command: string, env: Record<string, string> | null) {
  const own = Object.entries(env ?? {});
  const parent = (parentEnv ??= readParentEnv(l)).filter((p) =>
    !env || !Object.hasOwn(env, p.name)
  );
  // UTF-8 takes at most 3 bytes per UTF-16 unit.
  let need = 6 + 3 * command.length + 1;
  for (const p of parent) need += p.entry.length + 1;
  for (const [k, v] of own) need += 3 * (k.length + v.length) + 2;
  if (block.length < need) {
    block = new Uint8Array(new ArrayBuffer(Math.max(need, 2 * block.length, 64 * 1024)));
    blockBase = BigInt(l.addressOf(block, block, 0n));
  }
  const count = 3 + 1 + parent.length + own.length + 1;
  if (pointers.length < count) pointers = new BigUint64Array(Math.max(count, 2 * pointers.length));
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
    pointers[i++] = blockBase + BigInt(at);
    block.set(p.entry, at);
    at += p.entry.length;
    block[at++] = 0;
  }
  for (const [k, v] of own) put(`${k}=${v}`);
  pointers[i++] = 0n;
  return { argv: pointers.subarray(0, envStart), envp: pointers.subarray(envStart, i) };
}

/** One job's shell started by posix_spawnp: its pid, its output pipes and a pidfd. */
export class PosixChild {
  #fds: { fd: number; sink: (chunk: Uint8Array) => void; open: boolean }[];
  #exited = false;
  #reaped: ExitStatus | null = null;

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
   * Starts `sh -c command` in `cwd`. Throws `SpawnError` when it cannot start (a missing
   * directory or shell: `notFound`). Its output goes to `onStdout` and `onStderr` while
   * `waitExit` and `drain` run; each chunk is valid only during the call.
   */
  static spawn(
    command: string,
    cwd: string,
    env: Record<string, string> | null,
    onStdout: (chunk: Uint8Array) => void,
    onStderr: (chunk: Uint8Array) => void,
  ): PosixChild {
    const why = prepare();
    if (why) throw new SpawnError(0, why);
    const l = lib!;
    const { argv, envp } = argvEnvp(l, command, env);
    const cwdZ = enc.encode(cwd + "\0");
    const [outR, outW] = pipe(l);
    let errR = -1, errW = -1;
    let pid = -1;
    let actions = false;
    try {
      [errR, errW] = pipe(l);
      actions = l.posix_spawn_file_actions_init(fa) === 0;
      if (
        !actions ||
        l.posix_spawn_file_actions_addopen(fa, 0, DEV_NULL, O_RDONLY, 0) !== 0 ||
        l.posix_spawn_file_actions_adddup2(fa, outW, 1) !== 0 ||
        l.posix_spawn_file_actions_adddup2(fa, errW, 2) !== 0 ||
        l.posix_spawn_file_actions_addchdir_np!(fa, cwdZ) !== 0
      ) {
        throw new SpawnError(0, "posix_spawn_file_actions_* failed");
      }
      const rc = l.posix_spawnp(pidOut, SH, fa, attr!, argv, envp);
      if (rc !== 0) throw new SpawnError(rc, errorText(l, rc));
      pid = pidOut[0];
    } catch (e) {
      l.close(outR);
      if (errR >= 0) l.close(errR);
      throw e;
    } finally {
      // Only what init set up: `fa` is reused, and destroying it twice would free twice.
      if (actions) l.posix_spawn_file_actions_destroy(fa);
      l.close(outW);
      if (errW >= 0) l.close(errW);
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
      await this.#poll(-1);
    }
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
