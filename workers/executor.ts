/**
 * Runs one job's command: `sh -c COMMAND` in its own process group, output streamed into a bounded
 * buffer (the worker moves it to the store), a timeout that kills the whole process tree, and an outcome
 * that keeps a non-zero exit, a failed spawn, a timeout and a kill apart. No store access here.
 */
import { formatDurationExact } from "../lib/duration.ts";
import type { AttemptResult } from "../lib/store/store.ts";
import type { OutputBuffer } from "./output_buffer.ts";
import { endOrphans } from "./reaper.ts";

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

const STDERR_TAIL_BYTES = 4096;
/** How long output pipes may stay open after the job's shell ended (held by an escaped child). */
const PIPE_DRAIN_MS = 2000;
const ERROR_LINES = 5;
const ERROR_MAX_CHARS = 500;

/** The last lines of stderr, for the job's `error`. */
function tailText(bytes: Uint8Array): string | null {
  const lines = new TextDecoder().decode(bytes).split("\n").map((l) => l.trimEnd()).filter((l) =>
    l !== ""
  );
  if (lines.length === 0) return null;
  const text = lines.slice(-ERROR_LINES).join("\n");
  return text.length > ERROR_MAX_CHARS ? "…" + text.slice(-ERROR_MAX_CHARS) : text;
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

/**
 * The shells of the jobs this worker runs now: a worker running several jobs at once must not take
 * another job's shell for an orphan when one job ends.
 */
const liveShells = new Set<number>();

/** Sends `signal` to the whole process group led by `pid`; a group already gone is fine. */
function killGroup(pid: number, signal: Deno.Signal) {
  try {
    Deno.kill(-pid, signal);
  } catch {
    // ESRCH: every process of the group has exited.
  }
}

/** Runs the command to its end and says how it ended. Never throws for a job's own failure. */
export async function runJob(opts: RunOptions): Promise<AttemptResult & { durationMs: number }> {
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
    const reason = e instanceof Deno.errors.NotFound
      ? `cannot start the job: its directory ${opts.cwd} does not exist (or sh is missing)`
      : `cannot start the job: ${(e as Error).message}`;
    return {
      outcome: "spawn_error",
      exitCode: null,
      signal: null,
      error: reason,
      durationMs: performance.now() - started,
    };
  }

  liveShells.add(child.pid);
  let stderrTail = new Uint8Array(0);
  const readers = [child.stdout.getReader(), child.stderr.getReader()];
  const pump = async (reader: ReadableStreamDefaultReader<Uint8Array>, isErr: boolean) => {
    for (;;) {
      const { value: chunk, done } = await reader.read();
      if (done) return;
      opts.output.write(chunk);
      if (isErr) {
        const joined = new Uint8Array(
          Math.min(STDERR_TAIL_BYTES, stderrTail.length + chunk.length),
        );
        const all = new Uint8Array(stderrTail.length + chunk.length);
        all.set(stderrTail);
        all.set(chunk, stderrTail.length);
        joined.set(all.subarray(all.length - joined.length));
        stderrTail = joined;
      }
    }
  };
  const pumps = Promise.allSettled([pump(readers[0], false), pump(readers[1], true)]);

  let ended: "timeout" | "interrupted" | "lost" | null = null;
  let graceTimer: ReturnType<typeof setTimeout> | undefined;
  const stop = (why: "timeout" | "interrupted" | "lost") => {
    if (ended) return;
    ended = why;
    killGroup(child.pid, "SIGTERM");
    graceTimer = setTimeout(() => killGroup(child.pid, "SIGKILL"), opts.killGraceMs);
  };
  const timer = opts.timeoutMs > 0 ? setTimeout(() => stop("timeout"), opts.timeoutMs) : undefined;
  const onInterrupt = () => stop("interrupted");
  const onLost = () => stop("lost");
  if (opts.interrupt.aborted) onInterrupt();
  else opts.interrupt.addEventListener("abort", onInterrupt);
  if (opts.lost?.aborted) onLost();
  else opts.lost?.addEventListener("abort", onLost);

  const status = await child.status;
  liveShells.delete(child.pid);
  clearTimeout(timer);
  clearTimeout(graceTimer);
  opts.interrupt.removeEventListener("abort", onInterrupt);
  opts.lost?.removeEventListener("abort", onLost);
  // !!! The shell is gone; nothing it started may outlive it or hold this worker. Its process
  // group goes first; then whatever left the group (setsid, a double fork) and was re-parented
  // to this worker, the subreaper; then the output pipes get a bounded wait, since a process
  // that escaped even that (no subreaper here) may still hold them open. !!!
  killGroup(child.pid, "SIGKILL");
  await endOrphans(liveShells);
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
  const durationMs = performance.now() - started;
  const tail = tailText(stderrTail);
  return outcomeOf();

  function outcomeOf(): AttemptResult & { durationMs: number } {
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
}
