/**
 * What `queuectl enqueue` does: a job from a JSON spec, from flags and a command after `--`, or
 * many from a JSON array or NDJSON, stored in one durable transaction. Parse → store → print;
 * validation lives in `lib/spec.ts`. Text that is not JSON is never taken for a command: only what
 * follows `--` is one. Its flags and help are in `enqueue.ts`.
 *
 * No parser here: main.ts runs the common shapes of the command (`simpleEnqueueInput`) without
 * loading it, the whole start-up of one `enqueue` being the cost users see.
 */
import type { JobFlagValues } from "./job_flags.ts";
import { formatDuration } from "../duration.ts";
import { UsageError, UserError } from "../errors.ts";
import { loadConfig } from "../settings.ts";
import {
  parseJobArgument,
  parseJobsText,
  QUOTE_HINT,
  type SpecContext,
  toNewJob,
} from "../spec.ts";
import { DEFAULT_QUEUE, type ExistingJob, type NewJob } from "../store/store.ts";
import { type DbFlags, withStore } from "./context.ts";
import { writeAll } from "../write_all.ts";

export interface EnqueueFlags extends DbFlags, JobFlagValues {
  id?: string;
  delay?: string;
  runAt?: string;
  after?: string;
  file?: string;
  json: boolean;
}

// Not format.ts's `out`: that module loads the terminal-width tables, which enqueue never needs.
function out(text: string) {
  writeAll(Deno.stdout, text + "\n");
}

/** A job file this large (bytes) shows its progress on a terminal. */
const PROGRESS_MIN_BYTES = 1 << 20;

/**
 * The progress of a large `--file` on stderr, when stderr is a terminal: one line, redrawn as
 * each step starts (reading, checking, storing in one transaction); cleared at the end. Each step
 * is one synchronous pass, so the line names the step and its size rather than a percentage.
 * `null` when there is nothing to show: a small file, or stderr not a terminal.
 */
function fileProgress(name: string, bytes: number): ((step: string | null) => void) | null {
  if (bytes < PROGRESS_MIN_BYTES || !Deno.stderr.isTerminal()) return null;
  const started = Date.now();
  const mb = (bytes / (1 << 20)).toFixed(1);
  let shown = false;
  return (step) => {
    if (step === null) {
      if (shown) writeAll(Deno.stderr, "\r\x1b[K");
      shown = false;
      return;
    }
    const took = ((Date.now() - started) / 1000).toFixed(1);
    writeAll(Deno.stderr, `\r\x1b[Kenqueue ${name} (${mb} MB, ${took}s): ${step}`);
    shown = true;
  };
}

async function readInput(file: string): Promise<string> {
  try {
    if (file === "-") return await new Response(Deno.stdin.readable).text();
    return await Deno.readTextFile(file);
  } catch (e) {
    const why = e instanceof Deno.errors.NotFound
      ? "no such file"
      : e instanceof Deno.errors.IsADirectory
      ? "it is a directory; give a file of jobs, or - for stdin"
      : e instanceof Deno.errors.PermissionDenied
      ? "permission denied"
      : (e as Error).message;
    throw new UserError(`cannot read ${file}: ${why}`);
  }
}

/**
 * Refuses a job whose directory does not exist here and now: it could only fail at every
 * attempt. Each distinct directory is checked once, so a 100,000-job file costs one stat.
 */
function checkDirectories(jobs: NewJob[]) {
  const seen = new Set<string>();
  let last: string | undefined;
  for (const j of jobs) {
    if (j.cwd === last) continue; // most jobs of a file share one directory
    last = j.cwd;
    if (seen.has(j.cwd)) continue;
    seen.add(j.cwd);
    let isDir = false;
    try {
      isDir = Deno.statSync(j.cwd).isDirectory;
    } catch {
      // Missing or unreadable: said below.
    }
    if (!isDir) {
      throw new UsageError(
        `job "${j.id}": its directory ${j.cwd} does not exist or is not a directory; ` +
          `create it, or give "cwd" (--cwd) another one`,
      );
    }
  }
}

/** Builds a spec object from flags, so that flags and JSON share one validation path. */
export function specFromFlags(
  flags: EnqueueFlags,
  command: string | undefined,
): Record<string, unknown> {
  const spec: Record<string, unknown> = {};
  if (command !== undefined) spec.command = command;
  if (flags.id !== undefined) spec.id = flags.id;
  const num = (name: string, v: string) => {
    // Decimal digits only, as config values: Number() would also read "0x10" as 16, "1e1" as 10.
    if (!/^[+-]?\d+$/.test(v.trim())) {
      throw new UsageError(`--${name} must be an integer, got "${v}"`);
    }
    return Number(v.trim());
  };
  if (flags.retries !== undefined) spec.max_retries = num("retries", flags.retries);
  if (flags.priority !== undefined) spec.priority = num("priority", flags.priority);
  if (flags.delay !== undefined) spec.delay = flags.delay;
  if (flags.runAt !== undefined) spec.run_at = flags.runAt;
  if (flags.timeout !== undefined) spec.timeout = flags.timeout;
  if (flags.cwd !== undefined) spec.cwd = flags.cwd;
  if (flags.unique !== undefined) spec.unique_key = flags.unique;
  if (flags.queue !== undefined) spec.queue = flags.queue;
  if (flags.env) {
    const env: Record<string, string> = {};
    for (const pair of flags.env) {
      const eq = pair.indexOf("=");
      if (eq <= 0) throw new UsageError(`--env takes NAME=VALUE, got "${pair}"`);
      env[pair.slice(0, eq)] = pair.slice(eq + 1);
    }
    spec.env = env;
  }
  if (flags.after !== undefined) {
    const ids = flags.after.split(",").map((x) => x.trim());
    if (ids.some((x) => x === "")) {
      throw new UsageError(`--after takes job ids separated by commas, got "${flags.after}"`);
    }
    spec.after = ids;
  }
  return spec;
}

const SPEC_FLAGS = [
  "id",
  "retries",
  "priority",
  "delay",
  "runAt",
  "timeout",
  "cwd",
  "env",
  "unique",
  "after",
  "queue",
] as const;

/** JSON field → the flag that sets it, for messages about a job given as flags. */
const FLAG_FOR_FIELD: Record<string, string> = {
  id: "--id",
  max_retries: "--retries",
  priority: "--priority",
  delay: "--delay",
  run_at: "--run-at",
  timeout: "--timeout",
  cwd: "--cwd",
  env: "--env",
  unique_key: "--unique",
  after: "--after",
  queue: "--queue",
};

/** `e` with the JSON field it starts with named as its flag, for a job given as flags. */
function inFlagTerms(e: UsageError): UsageError {
  return new UsageError(
    e.message
      .replace(/^"(\w+)"/, (m, field: string) => FLAG_FOR_FIELD[field] ?? m)
      .replace(/^give either "run_at" or "delay"/, "give either --run-at or --delay"),
  );
}

/** Validates a spec built from flags, naming the flag (not the JSON field) in any message. */
export function jobFromFlags(spec: Record<string, unknown>, ctx: SpecContext): NewJob {
  try {
    return toNewJob(spec, ctx);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    throw inFlagTerms(e);
  }
}

/** The two ways to give a job on the command line, for every message about a job argument. */
const COMMAND_FORM = "a command after --: enqueue [flags] -- COMMAND…";
const BOTH_FORMS = `enqueue takes a JSON job ('{"command":"…"}') or ${COMMAND_FORM}`;

/**
 * How many of the positional arguments came after `--`. The parser drops the `--` itself; it is
 * always the escape, never a flag's value, so the first `--` in the process's arguments is the one
 * that ended the flags.
 */
export function countAfterDashes(argv: readonly string[]): number {
  const at = argv.indexOf("--");
  return at === -1 ? 0 : argv.length - at - 1;
}

/** Whether a word may start a JSON spec: `{` or `[` (a lone `{` or `[` is also shell syntax). */
function startsLikeJson(word: string): boolean {
  const c = word.trimStart()[0];
  return c === "{" || c === "[";
}

/**
 * Whether the first of several words is the start of a JSON spec that the shell split (and took
 * the quotes off). A lone `{` opens a shell brace group (`{ echo a; }`), `[ -f x ]` is a test.
 */
function looksLikeSplitJson(word: string): boolean {
  const t = word.trimStart();
  return /^\[\s*[{["\]]/.test(t) || (t.startsWith("{") && t !== "{");
}

/** Whether the text is JSON that holds a job spec: an object, or an array of them. */
/** A JSON object (not an array, not null): what one job spec is. */
function isJobObject(v: unknown): boolean {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function isJsonSpec(text: string): boolean {
  if (!startsLikeJson(text)) return false;
  try {
    const v = JSON.parse(text);
    return isJobObject(v) || (Array.isArray(v) && v.length > 0 && v.every(isJobObject));
  } catch {
    return false;
  }
}

/** Whether the text is a JSON array without a single object in it: `[]`, `[1]`, `["echo hi"]`. */
function holdsNoJob(text: string): boolean {
  if (text.trimStart()[0] !== "[") return false;
  try {
    const v = JSON.parse(text);
    return Array.isArray(v) && !v.some(isJobObject);
  } catch {
    return false;
  }
}

/**
 * The refusal of a lone argument that is neither a JSON spec nor after `--`: both forms, what was
 * given (never the text itself: it may hold secrets) and, where the mistake is a known one, the fix.
 */
function notAJob(word: string): UsageError {
  if (word === "-") {
    return new UsageError(`${BOTH_FORMS}; to read jobs from stdin, use --file -`);
  }
  let value: unknown;
  let json = true;
  try {
    value = JSON.parse(word);
  } catch {
    json = false;
  }
  if (!json && isFile(word)) {
    return new UsageError(
      `${BOTH_FORMS}; to enqueue the jobs in the file ${word}, use --file ${word}`,
    );
  }
  const got = word.trim() === ""
    ? "an empty argument"
    : !json
    ? "text that is not JSON"
    : value === null
    ? "JSON null"
    : Array.isArray(value) && value.length === 0
    ? "an empty JSON array"
    : Array.isArray(value)
    ? "a JSON array without a job object in it"
    : `a JSON ${typeof value}`;
  return new UsageError(`${BOTH_FORMS}; got ${got}`);
}

function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

/** Words the shell passes through unchanged, needing no quotes. */
const SHELL_SAFE = /^[A-Za-z0-9_@%+=:,.\/-]+$/;

/**
 * The shell command for the words after `--`: one word is a command line as written
 * (`-- 'tar czf x.tgz dir | wc -c'`); several are a program and its arguments, each quoted where
 * the shell would change it, so `-- sh -c 'echo hi; sleep 3'` runs exactly that argv.
 */
export function commandOf(words: string[]): string {
  if (words.length === 1) return words[0];
  return words.map((w) => SHELL_SAFE.test(w) ? w : `'${w.replaceAll("'", `'\\''`)}'`).join(" ");
}

/**
 * Sorts the positional arguments into one JSON spec (`json`) or a command (`command`), or refuses
 * them. Without `--`, the only job an argument can be is JSON; after `--`, words are a command.
 */
function readArguments(
  args: string[],
  afterDashes: number,
): { json: string; command?: undefined } | { command: string; json?: undefined } {
  const before = args.slice(0, args.length - afterDashes);
  const after = args.slice(args.length - afterDashes);
  if (before.length === 0) {
    if (after.length === 1 && isJsonSpec(after[0])) {
      throw new UsageError(
        `after -- comes a shell command, but this is a JSON job; give it without --: ` +
          `enqueue '{"command":"…"}'`,
      );
    }
    return { command: commandOf(after) };
  }
  if (looksLikeSplitJson(before[0]) && (before.length > 1 || after.length > 0)) {
    // `{"command":…}` split into several words: the shell took the quotes off.
    throw new UsageError(
      `the JSON job spec must be one argument; quote all of it in single quotes, like ` +
        `'{"command":"echo hi"}' (${args.length} arguments were given)`,
    );
  }
  if (after.length > 0) {
    const n = before.length;
    throw new UsageError(`${BOTH_FORMS}; got ${n} argument${n > 1 ? "s" : ""} before the --`);
  }
  if (before.length > 1) {
    throw new UsageError(`${BOTH_FORMS}; got ${before.length} arguments without --`);
  }
  if (!startsLikeJson(before[0]) || holdsNoJob(before[0])) throw notAJob(before[0]);
  return { json: before[0] };
}

export async function enqueue(flags: EnqueueFlags, ...args: string[]): Promise<void> {
  const usedSpecFlags = SPEC_FLAGS.filter((f) => flags[f] !== undefined);
  if (flags.file !== undefined && args.length > 0) {
    throw new UsageError("give either --file or a job on the command line, not both");
  }
  if (flags.file === undefined && args.length === 0) {
    throw new UsageError(
      `missing job: queuectl enqueue '{"command":"echo hi"}' or queuectl enqueue -- echo hi`,
    );
  }
  const given = args.length > 0 ? readArguments(args, countAfterDashes(Deno.args)) : undefined;
  if ((given?.json !== undefined || flags.file !== undefined) && usedSpecFlags.length > 0) {
    throw new UsageError(
      `--${usedSpecFlags[0]} cannot be combined with a JSON spec or --file; ` +
        `put the field in the JSON instead`,
    );
  }
  const fileText = flags.file !== undefined ? await readInput(flags.file) : undefined;
  const fileName = flags.file === "-" ? "stdin" : flags.file!;
  const progress = fileText !== undefined ? fileProgress(fileName, fileText.length) : null;
  try {
    await enqueueInStore(flags, fileText, fileName, given, progress);
  } finally {
    progress?.(null);
  }
}

async function enqueueInStore(
  flags: EnqueueFlags,
  fileText: string | undefined,
  fileName: string,
  given: ReturnType<typeof readArguments> | undefined,
  progress: ((step: string | null) => void) | null,
) {
  await withStore(flags, async (store) => {
    const ctx: SpecContext = {
      config: await loadConfig(store),
      cwd: Deno.cwd(),
      now: await store.now(),
    };
    let jobs: NewJob[];
    if (fileText !== undefined) {
      progress?.("checking the jobs…");
      jobs = parseJobsText(fileText, ctx, fileName);
    } else if (given?.json !== undefined) {
      jobs = parseJobArgument(given.json, ctx, `${QUOTE_HINT}, or give ${COMMAND_FORM}`);
    } else {
      jobs = [jobFromFlags(specFromFlags(flags, given!.command), ctx)];
    }
    checkDirectories(jobs);
    progress?.(`storing ${jobs.length} jobs in one transaction…`);
    const existing = await store.enqueue(jobs, ctx.now).catch((e) => {
      // The store names the spec field ("after"); a job given as flags had it as a flag.
      const fromFlags = fileText === undefined && given?.json === undefined;
      if (!fromFlags || !(e instanceof UsageError)) throw e;
      throw inFlagTerms(e);
    }).finally(() => progress?.(null));
    if (flags.json) {
      out(JSON.stringify(enqueuedJson(jobs, existing), null, 2));
    } else if (jobs.length === 1 && existing.length === 1) {
      out(alreadyQueued(jobs[0], existing[0], ctx.now));
    } else if (jobs.length === 1) {
      const j = jobs[0];
      const later = j.runAt > ctx.now ? ` (runs in ${formatDuration(j.runAt - ctx.now)})` : "";
      const stored = j.after?.length ? await store.getJob(j.id) : null;
      if (stored?.state === "dead") {
        out(
          `enqueued ${j.id} straight into dead (${stored.error}); retrying that job brings it back`,
        );
      } else if (stored && stored.waitingOn > 0) {
        out(`enqueued ${j.id}${later} (waiting on ${stored.waitingOn}: ${j.after!.join(", ")})`);
      } else out(`enqueued ${j.id}${later}`);
    } else if (existing.length === 0) {
      out(`enqueued ${jobs.length} jobs`);
    } else {
      const n = existing.length;
      out(
        `enqueued ${jobs.length - n} jobs; ${n} already queued under their unique key ` +
          `(--json lists them)`,
      );
    }
  });
}

/** "job X already queued with unique key K (state pending)", with when it runs if later. */
function alreadyQueued(job: NewJob, holder: ExistingJob, now: number): string {
  const later = holder.state !== "processing" && holder.runAt > now
    ? `, runs in ${formatDuration(holder.runAt - now)}`
    : "";
  return `job ${holder.id} already queued with unique key ${job.uniqueKey} ` +
    `(state ${holder.state}${later})`;
}

/**
 * `--json` of an enqueue: each job's id and run time in batch order; a job with a unique key also
 * has `unique_key` and `existing` (true when the key was held: then `id`, `run_at` and `state`
 * are the holder's).
 */
function enqueuedJson(jobs: NewJob[], existing: ExistingJob[]) {
  let e = 0;
  return jobs.map((j, i) => {
    const held = existing[e]?.index === i ? existing[e++] : undefined;
    if (held) {
      return {
        id: held.id,
        run_at: new Date(held.runAt).toISOString(),
        queue: j.queue ?? DEFAULT_QUEUE,
        unique_key: j.uniqueKey,
        existing: true,
        state: held.state,
      };
    }
    const row = {
      id: j.id,
      run_at: new Date(j.runAt).toISOString(),
      queue: j.queue ?? DEFAULT_QUEUE,
    };
    return j.uniqueKey == null ? row : { ...row, unique_key: j.uniqueKey, existing: false };
  });
}

/**
 * The command line of an `enqueue` in one of its common shapes, read without the parser: a job
 * argument, `--file PATH` or a command after `--`, with `--db PATH` and `--json`. Only input that
 * the parser would read exactly so is taken: anything else (another flag, a flag given twice, a
 * value that looks like a flag, `help`, no `enqueue`) is `null`, and the parser reads it, with
 * its help and its messages.
 */
export function simpleEnqueueInput(
  argv: readonly string[],
): { flags: EnqueueFlags; args: string[] } | null {
  const dashes = argv.indexOf("--");
  // `--no-color` is global: main.ts drops it wherever it comes before `--`.
  const input = argv.filter((a, i) => a !== "--no-color" || (dashes !== -1 && i > dashes));
  const flags: EnqueueFlags = { json: false };
  const args: string[] = [];
  let db: string | undefined;
  let file: string | undefined;
  let json = false;
  let command = false;
  for (let i = 0; i < input.length; i++) {
    const a = input[i];
    if (a === "--") {
      if (!command) return null;
      args.push(...input.slice(i + 1));
      break;
    }
    let flag: "db" | "file" | "json" | null = null;
    let value: string | undefined;
    const withValue = /^--(db|file)=(.+)$/.exec(a); // as the parser reads `--name=value`
    if (withValue) [flag, value] = [withValue[1] as "db" | "file", withValue[2]];
    else if (a === "--db") flag = "db";
    else if (a === "--file" || (a === "-f" && command)) flag = "file";
    else if (a === "--json" && command) flag = "json";
    else if (a.startsWith("-")) return null;
    if (flag === null) {
      if (command) args.push(a);
      else if (a === "enqueue") command = true;
      else return null;
      continue;
    }
    if (flag === "json") {
      if (json) return null;
      json = true;
      continue;
    }
    if (value === undefined) {
      // The next word is the value, unless the parser would take it for a flag or the end.
      value = input[++i];
      if (value === undefined || value === "--" || (value.startsWith("-") && value !== "-")) {
        return null;
      }
    }
    if (flag === "db" ? db !== undefined : file !== undefined || !command) return null;
    if (flag === "db") db = value;
    else file = value;
  }
  if (!command) return null;
  flags.json = json;
  if (db !== undefined) flags.db = db;
  if (file !== undefined) flags.file = file;
  return { flags, args };
}
