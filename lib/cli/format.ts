/**
 * Output for people and for machines: aligned tables, state colours (only on a terminal, never
 * with NO_COLOR), relative times, and `--json` with stable field names. No store access here.
 */
import { formatDuration } from "../duration.ts";
import { attemptsUsed, type JobState } from "../job.ts";
import type { Attempt, Job, WorkerInfo } from "../store/store.ts";

const encoder = new TextEncoder();

/** Writes text to stdout, all of it. */
export function out(text: string) {
  const bytes = encoder.encode(text.endsWith("\n") ? text : text + "\n");
  let off = 0;
  while (off < bytes.length) off += Deno.stdout.writeSync(bytes.subarray(off));
}

/** Prints a value as pretty JSON. */
export function outJson(value: unknown) {
  out(JSON.stringify(value, null, 2));
}

const useColor = () => !Deno.env.get("NO_COLOR") && Deno.stdout.isTerminal();

const STATE_COLOR: Record<JobState, number> = {
  pending: 36,
  processing: 33,
  completed: 32,
  failed: 35,
  dead: 31,
  cancelled: 90,
};

export function colorState(state: JobState): string {
  return useColor() ? `\x1b[${STATE_COLOR[state]}m${state}\x1b[0m` : state;
}

// deno-lint-ignore no-control-regex -- strips the colour codes this module adds
const visibleLength = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, "").length;

/** Renders rows under headers, columns padded to the widest cell. */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) =>
    Math.max(visibleLength(h), ...rows.map((r) => visibleLength(r[i] ?? "")))
  );
  const line = (cells: string[]) =>
    cells.map((c, i) => i === cells.length - 1 ? c : c + " ".repeat(widths[i] - visibleLength(c)))
      .join("  ").trimEnd();
  return [line(headers), ...rows.map(line)].join("\n");
}

/** `3s ago`, `in 8s`, or an ISO time when far away. */
export function relativeTime(at: number | null, now: number): string {
  if (at === null) return "-";
  const d = at - now;
  if (Math.abs(d) > 7 * 86_400_000) return new Date(at).toISOString();
  return d > 0 ? `in ${formatDuration(d)}` : `${formatDuration(-d)} ago`;
}

export const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());

/** One line of text, cut to `max` characters. */
export function oneLine(text: string | null, max = 60): string {
  if (!text) return "";
  const s = text.replace(/\s*\n\s*/g, " ⏎ ");
  return s.length > max ? s.slice(0, max - 1) + "…" : s;
}

/** A job as `--json` shows it: stable snake_case fields, ISO times. */
export function jobJson(j: Job) {
  return {
    id: j.id,
    command: j.command,
    state: j.state,
    attempts: j.attempts,
    max_retries: j.maxRetries,
    priority: j.priority,
    run_at: iso(j.runAt),
    timeout_seconds: j.timeoutMs / 1000,
    cwd: j.cwd,
    env_keys: j.env ? Object.keys(j.env) : [],
    created_at: iso(j.createdAt),
    updated_at: iso(j.updatedAt),
    started_at: iso(j.startedAt),
    finished_at: iso(j.finishedAt),
    exit_code: j.exitCode,
    error: j.error,
    worker: j.workerId,
  };
}

export function attemptJson(a: Attempt) {
  return {
    attempt: a.attempt,
    outcome: a.outcome,
    exit_code: a.exitCode,
    signal: a.signal,
    worker: a.workerId,
    started_at: iso(a.startedAt),
    finished_at: iso(a.finishedAt),
    duration_ms: a.finishedAt - a.startedAt,
    error: a.error,
  };
}

export function workerJson(w: WorkerInfo, live: boolean) {
  return {
    id: w.id,
    pid: w.pid,
    host: w.host,
    supervisor_pid: w.supervisorPid,
    started_at: iso(w.startedAt),
    heartbeat_at: iso(w.heartbeatAt),
    stopped_at: iso(w.stoppedAt),
    alive: live,
    current_job: w.currentJob,
  };
}

/** A table of jobs, as `list` and `dlq list` print it. */
export function jobTable(jobs: Job[], now: number): string {
  return table(
    ["ID", "STATE", "ATTEMPTS", "PRI", "RUN AT", "UPDATED", "COMMAND", "LAST ERROR"],
    jobs.map((j) => [
      j.id,
      colorState(j.state),
      `${attemptsUsed(j)}/${j.maxRetries + 1}`,
      String(j.priority),
      j.state === "pending" || j.state === "failed" ? relativeTime(j.runAt, now) : "-",
      relativeTime(j.updatedAt, now),
      oneLine(j.command, 40),
      oneLine(j.error, 50),
    ]),
  );
}
