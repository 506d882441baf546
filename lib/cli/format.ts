/**
 * Output for people and for machines: tables that fit the terminal, state colours (only on a
 * terminal; never with NO_COLOR, TERM=dumb or --no-color), relative times, and `--json` with
 * stable field names. No store access here.
 */
import { formatDuration } from "../duration.ts";
import { attemptsUsed, type JobState } from "../job.ts";
import { type Attempt, DEFAULT_QUEUE, type Job, type WorkerInfo } from "../store/store.ts";
import { writeAll } from "../write_all.ts";
import { parseInteger } from "../config.ts";
import { displayWidth, truncate } from "./width.ts";

/** Writes text to stdout, all of it, ending in a newline. */
export function out(text: string) {
  writeAll(Deno.stdout, text.endsWith("\n") ? text : text + "\n");
}

/** Prints a value as pretty JSON. */
export function outJson(value: unknown) {
  out(JSON.stringify(value, null, 2));
}

let colorAllowed = true;

/** The global `--no-color` flag: no colour for the rest of this process. */
export function disableColor() {
  colorAllowed = false;
}

/** Colour only on a terminal that shows it, and only when nobody asked for none. */
const useColor = () =>
  colorAllowed && !Deno.env.get("NO_COLOR") && Deno.env.get("TERM") !== "dumb" &&
  Deno.stdout.isTerminal();

/**
 * The columns tables may use: the terminal's width when stdout is one, else `COLUMNS` when set
 * to a positive integer, else no limit (a pipe or file gets every character).
 */
export function terminalWidth(): number {
  if (Deno.stdout.isTerminal()) {
    try {
      return Deno.consoleSize().columns;
    } catch {
      // No size to be had (some CI terminals): fall through to COLUMNS.
    }
  }
  const columns = parseInteger(Deno.env.get("COLUMNS") ?? "");
  return columns !== null && columns > 0 ? columns : Infinity;
}

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

export interface TableOptions {
  /**
   * Columns (by index) that may be cut with `…` to fit `width`, such as commands, errors and ids;
   * the widest is cut first. Default: the last column. Other columns are never cut.
   */
  fit?: number[];
  /** Columns cut only once the `fit` ones are as narrow as they go (ids). */
  fitLast?: number[];
  /** Columns available; default `terminalWidth()`. */
  width?: number;
}

/** Narrowest a cut column gets: its header, and enough to recognise a value. */
const MIN_FIT_WIDTH = 8;

/**
 * Renders rows under headers, columns padded to the widest cell by display width (CJK and emoji
 * take two columns). When the table is wider than the terminal, the `fit` columns are cut at a
 * word boundary with `…`; cells that hold colour codes are never cut.
 */
export function table(headers: string[], rows: string[][], opts: TableOptions = {}): string {
  const width = opts.width ?? terminalWidth();
  const fit = opts.fit ?? [headers.length - 1];
  const tiers = [fit, opts.fitLast ?? []];
  const cuttable = new Set(tiers.flat());
  const widths = headers.map((h, i) =>
    Math.max(displayWidth(h), ...rows.map((r) => displayWidth(r[i] ?? "")))
  );
  const floor = (i: number) => Math.max(displayWidth(headers[i]), MIN_FIT_WIDTH);
  let excess = widths.reduce((a, b) => a + b, 0) + 2 * (headers.length - 1) - width;
  for (const tier of tiers) {
    while (excess > 0) {
      // Take a column from the widest cuttable column, one at a time, so the cuts are even.
      const i = tier.filter((c) => widths[c] > floor(c)).sort((a, b) => widths[b] - widths[a])[0];
      if (i === undefined) break; // as narrow as it goes: next tier, or the terminal wraps
      widths[i]--;
      excess--;
    }
  }
  const cell = (c: string, i: number) =>
    cuttable.has(i) && !c.includes("\x1b") ? truncate(c, widths[i]) : c;
  const line = (cells: string[]) =>
    cells.map((c, i) => {
      const shown = cell(c, i);
      return i === cells.length - 1 ? shown : shown + " ".repeat(widths[i] - displayWidth(shown));
    }).join("  ").trimEnd();
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

/** One line of text, cut to `max` columns at a word boundary (default: not cut). */
export function oneLine(text: string | null, max = Infinity): string {
  if (!text) return "";
  return truncate(text.replace(/\s*\n\s*/g, " ⏎ "), max);
}

/** A job as `--json` shows it: stable snake_case fields, ISO times. */
export function jobJson(j: Job) {
  return {
    id: j.id,
    command: j.command,
    state: j.state,
    queue: j.queue,
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
    unique_key: j.uniqueKey,
    waiting_on: j.waitingOn,
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
    running_jobs: w.runningJobs,
  };
}

/**
 * A table of jobs, as `list` and `dlq list` print it. A QUEUE column only when a job shown is in
 * a queue other than `default`, so users of one queue see the table they know.
 */
export function jobTable(jobs: Job[], now: number): string {
  const queues = jobs.some((j) => j.queue !== DEFAULT_QUEUE);
  return table(
    [
      "ID",
      "STATE",
      ...(queues ? ["QUEUE"] : []),
      "ATTEMPTS",
      "PRI",
      "RUN AT",
      "UPDATED",
      "COMMAND",
      "LAST ERROR",
    ],
    jobs.map((j) => [
      j.id,
      colorState(j.state),
      ...(queues ? [j.queue] : []),
      `${attemptsUsed(j)}/${j.maxRetries + 1}`,
      String(j.priority),
      j.state === "pending" && j.waitingOn > 0
        ? `waiting on ${j.waitingOn}`
        : j.state === "pending" || j.state === "failed"
        ? relativeTime(j.runAt, now)
        : "-",
      relativeTime(j.updatedAt, now),
      oneLine(j.command),
      oneLine(j.error),
    ]),
    // Commands and errors give way first, then ids (schedules' ids end in their tick's time, so
    // they are cut last); a pipe without COLUMNS gets everything whole.
    { fit: queues ? [7, 8] : [6, 7], fitLast: [0] },
  );
}

/** Help lines stay within this many columns, whatever the terminal. */
export const HELP_WIDTH = 80;

/** Splits `text` at spaces outside brackets: `[--db path]` stays one piece. */
function usagePieces(text: string): string[] {
  const pieces: string[] = [];
  let depth = 0;
  let cur = "";
  for (const ch of text) {
    if ("[(<".includes(ch)) depth++;
    if ("])>".includes(ch)) depth--;
    if (ch === " " && depth === 0) {
      if (cur) pieces.push(cur);
      cur = "";
    } else cur += ch;
  }
  if (cur) pieces.push(cur);
  return pieces;
}

/** Fills `pieces` into lines: the first starts with `first`, the rest with `indent`. */
function fill(pieces: string[], first: string, indent: string, width: number): string[] {
  const lines: string[] = [];
  let cur = first;
  let fresh = true;
  for (const p of pieces) {
    if (!fresh && displayWidth(cur) + 1 + displayWidth(p) > width) {
      lines.push(cur);
      cur = indent + p;
    } else cur += (fresh ? "" : " ") + p;
    fresh = false;
  }
  lines.push(cur);
  return lines;
}

/**
 * Prose paragraphs (lines at the left margin, between blank lines) with a line too long are
 * filled again as a whole, so a long line does not leave a short one behind it.
 */
function reflowParagraphs(lines: string[], width: number): string[] {
  const out: string[] = [];
  let para: string[] = [];
  const flush = () => {
    if (para.some((l) => displayWidth(l) > width)) {
      out.push(...fill(para.join(" ").split(/ +/), "", "", width));
    } else out.push(...para);
    para = [];
  };
  for (const line of lines) {
    const prose = line !== "" && !/^\s/.test(line) && !/^[A-Z]+$/.test(line);
    if (prose) para.push(line);
    else {
      flush();
      out.push(line);
    }
  }
  flush();
  return out;
}

/**
 * Fits the parser's help text in `width` columns: a long usage line continues under its first
 * flag, a flag or command row under its description, prose under itself; `[default = …]` follows
 * the description instead of a far-right column, and `[default = false]` of a switch is dropped.
 */
export function fitHelp(text: string, width = HELP_WIDTH): string {
  const out: string[] = [];
  let section = "";
  for (let line of reflowParagraphs(text.split("\n"), width)) {
    if (/^[A-Z]+$/.test(line)) section = line;
    else if (line === "" && section === "USAGE") section = "DESCRIPTION";
    if (section === "FLAGS") {
      line = line.replace(/\s+\[default = false\]$/, "")
        .replace(/\s{2,}(\[(?:default|separator) = [^\]]*\])$/, " $1");
    }
    if (displayWidth(line) <= width) {
      out.push(line);
      continue;
    }
    const lead = /^\s*/.exec(line)![0];
    const body = line.slice(lead.length);
    if (section === "USAGE") {
      const pieces = usagePieces(body);
      const words = pieces.findIndex((p) => /^[[(<-]/.test(p));
      const head = pieces.slice(0, Math.max(1, words)).join(" ") + " ";
      out.push(
        ...fill(
          pieces.slice(Math.max(1, words)),
          lead + head,
          " ".repeat(lead.length + head.length),
          width,
        ),
      );
      continue;
    }
    // A table row (flag or command, then two or more spaces, then its description).
    const row = /^(\s*(?:-\S \s*)?\S+\s{2,})(.*)$/.exec(line);
    const [first, rest] = row && displayWidth(row[1]) < width / 2 ? [row[1], row[2]] : [lead, body];
    out.push(...fill(rest.split(/ +/), first, " ".repeat(displayWidth(first)), width));
  }
  return out.join("\n");
}
