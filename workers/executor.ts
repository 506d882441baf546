/**
 * Runs one job's command: `sh -c COMMAND` in its own session and process group, output streamed
 * into a bounded buffer (the worker moves it to the store), a timeout that kills the whole process
 * tree, and an outcome that keeps a non-zero exit, a failed spawn, a timeout and a kill apart. No
 * store access here.
 *
 * Two spawn paths, the same guarantees: on Linux, libc's `posix_spawnp` through FFI
 * (posix_spawn.ts: no wrapper process, output read only when there is some); elsewhere, or where
 * that path fails its self-check at first use, `Deno.Command` running `setsid sh -c` with its
 * output piped through streams. `QUEUECTL_SPAWN=command|posix` forces one.
 */
import { formatDurationExact } from "../lib/duration.ts";
import type { AttemptResult } from "../lib/store/store.ts";
import type { OutputBuffer } from "./output_buffer.ts";
import { type ExitStatus, PosixChild, SpawnError, unavailableReason } from "./posix_spawn.ts";
import { endOrphans, trackJob, trackSpawn, untrackJob } from "./reaper.ts";

export interface RunOptions {
  command: string;
  cwd: string;
  env: Record<string, string> | null;
  /** 0 means no limit. */
  timeoutMs: number;
  /** After SIGTERM (timeout or forced stop), wait this long before SIGKILL. */
  killGraceMs: number;
  /** Where the run's stdout and stderr go (interleaved); the worker moves it to the store. */
  output: OutputBuffer;
  /** Aborting it kills the job (forced shutdown): the outcome is `interrupted`. */
  interrupt: AbortSignal;
  /**
   * Aborting it kills the job because it is no longer this worker's (cancelled, or rescued after
   * a lost lease): the outcome is `interrupted`, and the store's guard drops it.
   */
  lost?: AbortSignal;
}

export type RunResult = AttemptResult & { durationMs: number };

const STDERR_TAIL_BYTES = 4096;
/** How long output pipes may stay open after the job's shell ended (held by an escaped child). */
const PIPE_DRAIN_MS = 2000;
const ERROR_LINES = 5;
const ERROR_MAX_CHARS = 500;

/** The newest `STDERR_TAIL_BYTES` of stderr, kept without an allocation per chunk. */
class StderrTail {
  #buf = new Uint8Array(STDERR_TAIL_BYTES);
  #len = 0;

  push(chunk: Uint8Array) {
    const cap = this.#buf.length;
    if (chunk.length >= cap) {
      this.#buf.set(chunk.subarray(chunk.length - cap));
      this.#len = cap;
      return;
    }
    if (this.#len + chunk.length > cap) {
      const keep = cap - chunk.length;
      this.#buf.copyWithin(0, this.#len - keep, this.#len);
      this.#len = keep;
    }
    this.#buf.set(chunk, this.#len);
    this.#len += chunk.length;
  }

  /** Its last lines, for the job's `error`. */
  text(): string | null {
    if (this.#len === 0) return null;
    const lines = new TextDecoder().decode(this.#buf.subarray(0, this.#len)).split("\n")
      .map((l) => l.trimEnd()).filter((l) => l !== "");
    if (lines.length === 0) return null;
    const text = lines.slice(-ERROR_LINES).join("\n");
    return text.length > ERROR_MAX_CHARS ? "…" + text.slice(-ERROR_MAX_CHARS) : text;
  }
}

/** Which way jobs are started in this process. */
export type SpawnPath = "posix" | "command";

let chosen: Promise<{ path: SpawnPath; reason?: string }> | undefined;

/**
 * The spawn path of this process, chosen at first use: `QUEUECTL_SPAWN` when set, else
 * posix_spawn when its self-check passes, else `Deno.Command`. Rejects when `QUEUECTL_SPAWN`
 * names an unknown path, or `posix` where that path does not work here.
 */
export function spawnPath(): Promise<{ path: SpawnPath; reason?: string }> {
  return chosen ??= choosePath();
}

/** The fields the worker's start line shows: `spawn=posix`, or `spawn=command` and why. */
export async function spawnLogFields(): Promise<Record<string, string>> {
  const { path, reason } = await spawnPath();
  return reason ? { spawn: path, spawn_reason: reason } : { spawn: path };
}

async function choosePath(): Promise<{ path: SpawnPath; reason?: string }> {
  let forced: string | undefined;
  try {
    forced = Deno.env.get("QUEUECTL_SPAWN");
  } catch {
    // Not readable under this process's permissions: not set for it.
  }
  if (forced === "command") return { path: "command", reason: "QUEUECTL_SPAWN=command" };
  if (forced !== undefined && forced !== "" && forced !== "posix") {
    throw new Error(`QUEUECTL_SPAWN must be "posix" or "command", not "${forced}"`);
  }
  const failed = await selfCheck();
  if (!failed) return { path: "posix" };
  if (forced === "posix") {
    throw new Error(`QUEUECTL_SPAWN=posix, but that spawn path does not work here: ${failed}`);
  }
  return { path: "command", reason: failed };
}

/** Runs `echo ok; exit 3` through posix_spawn; returns what went wrong, or null. */
async function selfCheck(): Promise<string | null> {
  const unavailable = unavailableReason();
  if (unavailable) return unavailable;
  let out = "";
  let child: PosixChild;
  try {
    child = await spawnTracked("echo ok; exit 3", "/", null, (c) => {
      out += new TextDecoder().decode(c);
    }, () => {});
  } catch (e) {
    return `posix_spawn self-check: ${(e as Error).message}`;
  }
  try {
    await child.waitExit();
    const status = child.reap();
    await child.drain(PIPE_DRAIN_MS);
    if (status.code !== 3 || out !== "ok\n") {
      return `posix_spawn self-check: exit code ${status.code}, output ${JSON.stringify(out)}`;
    }
    return null;
  } finally {
    untrackJob(child.pid);
    child.close();
  }
}

/** `PosixChild.spawn`, its pid tracked (reaper.ts) before the spawn counts as settled. */
function spawnTracked(...args: Parameters<typeof PosixChild.spawn>): Promise<PosixChild> {
  return trackSpawn(
    PosixChild.spawn(...args).then((child) => {
      trackJob(child.pid);
      return child;
    }),
  );
}

/** Runs the command to its end and says how it ended. Never throws for a job's own failure. */
export async function runJob(opts: RunOptions): Promise<RunResult> {
  const { path } = await spawnPath();
  return path === "posix" ? runPosix(opts) : runCommand(opts);
}

function spawnFailed(opts: RunOptions, e: unknown, started: number): RunResult {
  const notFound = e instanceof Deno.errors.NotFound || (e instanceof SpawnError && e.notFound);
  return {
    outcome: "spawn_error",
    exitCode: null,
    signal: null,
    error: notFound
      ? `cannot start the job: its directory ${opts.cwd} does not exist (or sh is missing)`
      : `cannot start the job: ${(e as Error).message}`,
    durationMs: performance.now() - started,
  };
}

/** Sends `signal` to the whole process group led by `pid`; a group already gone is fine. */
function killGroup(pid: number, signal: Deno.Signal) {
  try {
    Deno.kill(-pid, signal);
  } catch {
    // ESRCH: every process of the group has exited.
  }
}

/**
 * Kills the job's group when its timeout passes, a forced stop comes, or the job is lost: SIGTERM,
 * then SIGKILL after the grace. `done` ends the watch and says why the job was stopped, if it was.
 */
function watch(pid: number, opts: RunOptions) {
  let ended: "timeout" | "interrupted" | "lost" | null = null;
  let graceTimer: ReturnType<typeof setTimeout> | undefined;
  const stop = (why: "timeout" | "interrupted" | "lost") => {
    if (ended) return;
    ended = why;
    killGroup(pid, "SIGTERM");
    graceTimer = setTimeout(() => killGroup(pid, "SIGKILL"), opts.killGraceMs);
  };
  const timer = opts.timeoutMs > 0 ? setTimeout(() => stop("timeout"), opts.timeoutMs) : undefined;
  const onInterrupt = () => stop("interrupted");
  const onLost = () => stop("lost");
  if (opts.interrupt.aborted) onInterrupt();
  else opts.interrupt.addEventListener("abort", onInterrupt);
  if (opts.lost?.aborted) onLost();
  else opts.lost?.addEventListener("abort", onLost);
  return {
    done() {
      clearTimeout(timer);
      clearTimeout(graceTimer);
      opts.interrupt.removeEventListener("abort", onInterrupt);
      opts.lost?.removeEventListener("abort", onLost);
      return ended;
    },
  };
}

/** The fast path: posix_spawnp, pipes read only when they hold something (posix_spawn.ts). */
async function runPosix(opts: RunOptions): Promise<RunResult> {
  const started = performance.now();
  const stderrTail = new StderrTail();
  let child: PosixChild;
  try {
    child = await spawnTracked(
      opts.command,
      opts.cwd,
      opts.env,
      (c) => opts.output.write(c),
      (c) => {
        opts.output.write(c);
        stderrTail.push(c);
      },
    );
  } catch (e) {
    return spawnFailed(opts, e, started);
  }
  let status: ExitStatus;
  let ended: "timeout" | "interrupted" | "lost" | null;
  try {
    const watcher = watch(child.pid, opts);
    await child.waitExit();
    ended = watcher.done();
    // !!! The shell is gone, but its pid is not freed until `reap`: its group is killed while
    // its id cannot have been reused. Then whatever left the group (setsid, a double fork) and
    // was re-parented to this worker, the subreaper; then the pipes get a bounded wait, since a
    // process that escaped even that (no subreaper here) may still hold them open. !!!
    killGroup(child.pid, "SIGKILL");
    status = child.reap();
    untrackJob(child.pid);
    await endOrphans();
    await child.drain(PIPE_DRAIN_MS);
  } finally {
    untrackJob(child.pid);
    child.close();
  }
  return outcomeOf(opts, ended, status, stderrTail.text(), performance.now() - started);
}

let setsidFound: boolean | undefined;

/**
 * Whether `setsid` (util-linux, busybox) runs here; asked once per process. A child of the
 * worker is never a process group leader, so setsid makes it a session leader in place (same
 * pid) instead of forking.
 */
function hasSetsid(): boolean {
  if (setsidFound === undefined) {
    try {
      setsidFound = new Deno.Command("setsid", { args: ["true"], stdout: "null", stderr: "null" })
        .outputSync().success;
    } catch {
      setsidFound = false;
    }
  }
  return setsidFound;
}

/** The portable path: `Deno.Command`, output pumped through streams. */
async function runCommand(opts: RunOptions): Promise<RunResult> {
  const started = performance.now();
  let child: Deno.ChildProcess;
  try {
    // Its own session and process group, so a timeout can kill the whole tree and a Ctrl+C in
    // the supervisor's terminal reaches the supervisor, not the job. `setsid sh -c …` gets that
    // through Deno's fast spawn path; `detached: true` forks the whole worker (~1 ms more per
    // job, PLATFORM.md), so it is only the fallback where there is no setsid (macOS).
    const viaSetsid = hasSetsid();
    child = new Deno.Command(viaSetsid ? "setsid" : "sh", {
      args: viaSetsid ? ["sh", "-c", opts.command] : ["-c", opts.command],
      cwd: opts.cwd,
      env: opts.env ?? undefined,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      detached: !viaSetsid,
    }).spawn();
  } catch (e) {
    return spawnFailed(opts, e, started);
  }
  trackJob(child.pid);

  const stderrTail = new StderrTail();
  const readers = [child.stdout.getReader(), child.stderr.getReader()];
  const pump = async (reader: ReadableStreamDefaultReader<Uint8Array>, isErr: boolean) => {
    for (;;) {
      const { value: chunk, done } = await reader.read();
      if (done) return;
      opts.output.write(chunk);
      if (isErr) stderrTail.push(chunk);
    }
  };
  const pumps = Promise.allSettled([pump(readers[0], false), pump(readers[1], true)]);

  const watcher = watch(child.pid, opts);
  const status = await child.status;
  untrackJob(child.pid);
  const ended = watcher.done();
  // !!! The shell is gone; nothing it started may outlive it or hold this worker. Its process
  // group goes first; then whatever left the group (setsid, a double fork) and was re-parented
  // to this worker, the subreaper; then the output pipes get a bounded wait, since a process
  // that escaped even that (no subreaper here) may still hold them open. !!!
  killGroup(child.pid, "SIGKILL");
  await endOrphans();
  let drained = false;
  let drainTimer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([
    pumps.then(() => drained = true),
    new Promise((r) => drainTimer = setTimeout(r, PIPE_DRAIN_MS)),
  ]);
  clearTimeout(drainTimer);
  if (!drained) {
    for (const r of readers) r.cancel().catch(() => {});
    await pumps;
  }
  return outcomeOf(opts, ended, status, stderrTail.text(), performance.now() - started);
}

function outcomeOf(
  opts: RunOptions,
  ended: "timeout" | "interrupted" | "lost" | null,
  status: ExitStatus,
  tail: string | null,
  durationMs: number,
): RunResult {
  if (ended === "timeout") {
    return {
      outcome: "timeout",
      exitCode: status.code,
      signal: status.signal,
      error: `timed out after ${formatDurationExact(opts.timeoutMs)}` + (tail ? `\n${tail}` : ""),
      durationMs,
    };
  }
  if (ended === "lost") {
    return {
      outcome: "interrupted",
      exitCode: status.code,
      signal: status.signal,
      error: "stopped: the job was cancelled or rescued while it ran",
      durationMs,
    };
  }
  if (ended === "interrupted") {
    return {
      outcome: "interrupted",
      exitCode: status.code,
      signal: status.signal,
      error: "interrupted by a forced worker stop",
      durationMs,
    };
  }
  if (status.success) {
    return { outcome: "completed", exitCode: 0, signal: null, error: null, durationMs };
  }
  if (status.signal) {
    return {
      outcome: "signalled",
      exitCode: status.code,
      signal: status.signal,
      error: `killed by ${status.signal}` + (tail ? `\n${tail}` : ""),
      durationMs,
    };
  }
  return {
    outcome: "exited",
    exitCode: status.code,
    signal: null,
    error: tail ?? `exited with code ${status.code}`,
    durationMs,
  };
}
