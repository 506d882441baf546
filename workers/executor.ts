/**
 * Runs one job's command: `sh -c COMMAND` in its own process group, output streamed to the job's
 * log file (capped, keeping the tail), a timeout that kills the whole process tree, and an outcome
 * that keeps a non-zero exit, a failed spawn, a timeout and a kill apart. No store access here.
 */
import { dirname } from "../lib/paths.ts";
import type { AttemptResult } from "../lib/store/store.ts";
import { writeAll } from "../lib/write_all.ts";

export interface RunOptions {
  command: string;
  cwd: string;
  env: Record<string, string> | null;
  /** 0 means no limit. */
  timeoutMs: number;
  /** After SIGTERM (timeout or forced stop), wait this long before SIGKILL. */
  killGraceMs: number;
  logFile: string;
  logMaxBytes: number;
  /** Written before this attempt's first output line when the log already has content. */
  logHeader: string;
  /** Aborting it kills the job (forced shutdown): the outcome is `interrupted`. */
  interrupt: AbortSignal;
}

const STDERR_TAIL_BYTES = 4096;
const ERROR_LINES = 5;
const ERROR_MAX_CHARS = 500;

/**
 * A log file capped at `maxBytes` that keeps the newest output: it writes into `path` until that
 * holds half the cap, then moves it to `path.1` and starts again, so the two never hold more than
 * the cap. `close()` joins them into `path`, trimmed to the cap.
 */
class CappedLog {
  #file: Deno.FsFile | null = null;
  #size = 0;
  #rotated = false;
  constructor(readonly path: string, readonly maxBytes: number, readonly header: string) {}

  #open() {
    Deno.mkdirSync(dirname(this.path), { recursive: true, mode: 0o700 });
    this.#file = Deno.openSync(this.path, { append: true, create: true, mode: 0o600 });
    this.#size = this.#file.statSync().size;
    if (this.#size > 0 && this.header) this.#writeRaw(new TextEncoder().encode(this.header));
  }

  #writeRaw(chunk: Uint8Array) {
    writeAll(this.#file!, chunk);
    this.#size += chunk.length;
  }

  write(chunk: Uint8Array) {
    if (!this.#file) this.#open();
    const half = Math.max(1, Math.floor(this.maxBytes / 2));
    if (chunk.length > half) chunk = chunk.subarray(chunk.length - half);
    if (this.#size + chunk.length > half) {
      this.#file!.close();
      Deno.renameSync(this.path, this.path + ".1");
      this.#rotated = true;
      this.#file = Deno.openSync(this.path, {
        write: true,
        create: true,
        truncate: true,
        mode: 0o600,
      });
      this.#size = 0;
    }
    this.#writeRaw(chunk);
  }

  close() {
    if (!this.#file) return;
    this.#file.close();
    this.#file = null;
    if (!this.#rotated) return;
    const old = Deno.readFileSync(this.path + ".1");
    const cur = Deno.readFileSync(this.path);
    const keep = Math.max(0, this.maxBytes - cur.length);
    const note = new TextEncoder().encode(
      `[queuectl: earlier output dropped; log capped at ${this.maxBytes} bytes]\n`,
    );
    const head = old.subarray(Math.max(0, old.length - Math.max(0, keep - note.length)));
    const out = new Uint8Array(note.length + head.length + cur.length);
    out.set(note);
    out.set(head, note.length);
    out.set(cur, note.length + head.length);
    Deno.writeFileSync(this.path, out.subarray(Math.max(0, out.length - this.maxBytes)), {
      mode: 0o600,
    });
    Deno.removeSync(this.path + ".1");
  }
}

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
  const log = new CappedLog(opts.logFile, opts.logMaxBytes, opts.logHeader);
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

  let stderrTail = new Uint8Array(0);
  const pump = async (stream: ReadableStream<Uint8Array>, isErr: boolean) => {
    for await (const chunk of stream) {
      log.write(chunk);
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
  const pumps = Promise.allSettled([pump(child.stdout, false), pump(child.stderr, true)]);

  let ended: "timeout" | "interrupted" | null = null;
  let graceTimer: ReturnType<typeof setTimeout> | undefined;
  const stop = (why: "timeout" | "interrupted") => {
    if (ended) return;
    ended = why;
    killGroup(child.pid, "SIGTERM");
    graceTimer = setTimeout(() => killGroup(child.pid, "SIGKILL"), opts.killGraceMs);
  };
  const timer = opts.timeoutMs > 0 ? setTimeout(() => stop("timeout"), opts.timeoutMs) : undefined;
  const onInterrupt = () => stop("interrupted");
  if (opts.interrupt.aborted) onInterrupt();
  else opts.interrupt.addEventListener("abort", onInterrupt);

  const status = await child.status;
  clearTimeout(timer);
  clearTimeout(graceTimer);
  opts.interrupt.removeEventListener("abort", onInterrupt);
  // The shell is gone; whatever it left behind in its group goes too, so nothing outlives the job
  // and the output pipes close.
  killGroup(child.pid, "SIGKILL");
  await pumps;
  try {
    log.close();
  } catch {
    // A log that cannot be written must not lose the job's result.
  }
  const durationMs = performance.now() - started;
  const tail = tailText(stderrTail);

  if (ended === "timeout") {
    return {
      outcome: "timeout",
      exitCode: status.code,
      signal: status.signal,
      error: `timed out after ${opts.timeoutMs / 1000}s` + (tail ? `\n${tail}` : ""),
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
