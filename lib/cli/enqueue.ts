/**
 * `queuectl enqueue`: a job from a JSON spec, from flags and a command, or many from NDJSON, stored
 * in one durable transaction. Parse → store → print; validation lives in `lib/spec.ts`.
 */
import { buildCommand } from "@stricli/core";
import { formatDuration } from "../duration.ts";
import { UsageError, UserError } from "../errors.ts";
import { loadConfig } from "../settings.ts";
import { parseJsonText, type SpecContext, toNewJob } from "../spec.ts";
import { parseNdjson } from "../spec.ts";
import type { NewJob } from "../store/store.ts";
import { type Context, dbFlag, type DbFlags, jsonFlag, withStore } from "./context.ts";
import { out, outJson } from "./format.ts";

interface EnqueueFlags extends DbFlags {
  id?: string;
  retries?: string;
  priority?: string;
  delay?: string;
  runAt?: string;
  timeout?: string;
  cwd?: string;
  env?: string[];
  file?: string;
  json: boolean;
}

async function readInput(file: string): Promise<string> {
  try {
    if (file === "-") return await new Response(Deno.stdin.readable).text();
    return await Deno.readTextFile(file);
  } catch (e) {
    const why = e instanceof Deno.errors.NotFound ? "no such file" : (e as Error).message;
    throw new UserError(`cannot read ${file}: ${why}`);
  }
}

/**
 * Refuses a job whose directory does not exist here and now: it could only fail at every
 * attempt. Each distinct directory is checked once, so a 100,000-job file costs one stat.
 */
function checkDirectories(jobs: NewJob[]) {
  const seen = new Set<string>();
  for (const j of jobs) {
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
function specFromFlags(flags: EnqueueFlags, command: string | undefined): Record<string, unknown> {
  const spec: Record<string, unknown> = {};
  if (command !== undefined) spec.command = command;
  if (flags.id !== undefined) spec.id = flags.id;
  const num = (name: string, v: string) => {
    const n = Number(v);
    if (v.trim() === "" || !Number.isFinite(n)) {
      throw new UsageError(`--${name} must be an integer, got "${v}"`);
    }
    return n;
  };
  if (flags.retries !== undefined) spec.max_retries = num("retries", flags.retries);
  if (flags.priority !== undefined) spec.priority = num("priority", flags.priority);
  if (flags.delay !== undefined) spec.delay = flags.delay;
  if (flags.runAt !== undefined) spec.run_at = flags.runAt;
  if (flags.timeout !== undefined) spec.timeout = flags.timeout;
  if (flags.cwd !== undefined) spec.cwd = flags.cwd;
  if (flags.env) {
    const env: Record<string, string> = {};
    for (const pair of flags.env) {
      const eq = pair.indexOf("=");
      if (eq <= 0) throw new UsageError(`--env takes NAME=VALUE, got "${pair}"`);
      env[pair.slice(0, eq)] = pair.slice(eq + 1);
    }
    spec.env = env;
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
};

/** Validates a spec built from flags, naming the flag (not the JSON field) in any message. */
function jobFromFlags(spec: Record<string, unknown>, ctx: SpecContext): NewJob {
  try {
    return toNewJob(spec, ctx);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    const message = e.message
      .replace(/^"(\w+)"/, (m, field: string) => FLAG_FOR_FIELD[field] ?? m)
      .replace(/^give either "run_at" or "delay"/, "give either --run-at or --delay");
    throw new UsageError(message);
  }
}

/**
 * Whether the words look like a JSON spec rather than a shell command. A lone `{` is a shell brace
 * group (`-- { echo a; echo b; }`); `[ -f x ]` is a test; `{"command":…}` split into several words
 * means the shell took the quotes off.
 */
function looksLikeJson(args: string[]): boolean {
  const first = (args[0] ?? "").trimStart();
  if (/^\[\s*[{["\]]/.test(first)) return true;
  return first.startsWith("{") && (args.length === 1 || first !== "{");
}

async function enqueue(this: Context, flags: EnqueueFlags, ...args: string[]) {
  const usedSpecFlags = SPEC_FLAGS.filter((f) => flags[f] !== undefined);
  const asJson = looksLikeJson(args);
  if (asJson && args.length > 1) {
    throw new UsageError(
      `the JSON job spec must be one argument; quote all of it in single quotes, like ` +
        `'{"command":"echo hi"}' (${args.length} arguments were given)`,
    );
  }
  if (flags.file !== undefined && args.length > 0) {
    throw new UsageError("give either --file or a job on the command line, not both");
  }
  if (flags.file === undefined && args.length === 0) {
    throw new UsageError(
      `missing job: queuectl enqueue '{"command":"echo hi"}' or queuectl enqueue -- echo hi`,
    );
  }
  if ((asJson || flags.file !== undefined) && usedSpecFlags.length > 0) {
    throw new UsageError(
      `--${usedSpecFlags[0]} cannot be combined with a JSON spec or --file; ` +
        `put the field in the JSON instead`,
    );
  }
  const fileText = flags.file !== undefined ? await readInput(flags.file) : undefined;

  await withStore(flags, async (store) => {
    const ctx: SpecContext = { config: await loadConfig(store), cwd: Deno.cwd(), now: Date.now() };
    let jobs: NewJob[];
    if (fileText !== undefined) {
      jobs = parseNdjson(fileText, ctx, flags.file === "-" ? "stdin" : flags.file!);
    } else if (asJson) {
      jobs = [toNewJob(parseJsonText(args[0]), ctx)];
    } else {
      jobs = [jobFromFlags(specFromFlags(flags, args.join(" ")), ctx)];
    }
    checkDirectories(jobs);
    await store.enqueue(jobs, ctx.now);
    if (flags.json) {
      outJson(jobs.map((j) => ({ id: j.id, run_at: new Date(j.runAt).toISOString() })));
    } else if (jobs.length === 1) {
      const j = jobs[0];
      const later = j.runAt > ctx.now ? ` (runs in ${formatDuration(j.runAt - ctx.now)})` : "";
      out(`enqueued ${j.id}${later}`);
    } else {
      out(`enqueued ${jobs.length} jobs`);
    }
  });
}

export const enqueueCommand = buildCommand({
  func: enqueue,
  parameters: {
    flags: {
      ...dbFlag,
      id: {
        kind: "parsed",
        parse: String,
        brief: "Job id (default: generated)",
        optional: true,
        placeholder: "id",
      },
      retries: {
        kind: "parsed",
        parse: String,
        brief: "Retries after the first attempt [config max-retries]",
        optional: true,
        placeholder: "n",
      },
      priority: {
        kind: "parsed",
        parse: String,
        brief: "Higher runs first (default 0)",
        optional: true,
        placeholder: "n",
      },
      delay: {
        kind: "parsed",
        parse: String,
        brief: "Run after this long: seconds, or 90s, 5m, 2h",
        optional: true,
        placeholder: "duration",
      },
      runAt: {
        kind: "parsed",
        parse: String,
        brief: "Run at this ISO 8601 time, e.g. 2026-12-01T09:00:00Z",
        optional: true,
        placeholder: "time",
      },
      timeout: {
        kind: "parsed",
        parse: String,
        brief: "Kill the job after this long; 0 = none [config job-timeout]",
        optional: true,
        placeholder: "duration",
      },
      cwd: {
        kind: "parsed",
        parse: String,
        brief: "Directory to run in (default: the current one)",
        optional: true,
        placeholder: "dir",
      },
      env: {
        kind: "parsed",
        parse: String,
        brief: "Extra environment variable NAME=VALUE (repeatable)",
        optional: true,
        variadic: true,
        placeholder: "NAME=VALUE",
      },
      file: {
        kind: "parsed",
        parse: String,
        brief: "Enqueue every line of an NDJSON file (- for stdin), all or nothing",
        optional: true,
        placeholder: "path",
      },
      json: { ...jsonFlag.json, brief: "Print the new job ids and run times as JSON" },
    },
    aliases: { f: "file", r: "retries", p: "priority" },
    positional: {
      kind: "array",
      parameter: {
        brief: "A JSON job spec, or the command after --",
        parse: String,
        placeholder: "job",
      },
    },
  },
  docs: {
    brief: "Add a job to the queue",
    fullDescription: [
      "Adds a job and prints its id. The job is stored durably before this command exits.",
      "",
      "Job spec fields: id, command (required), max_retries, priority, run_at or delay, timeout,",
      "cwd (default: the current directory), env (an object of strings). Unknown fields are refused.",
      "",
      "Examples:",
      `  queuectl enqueue '{"id":"job1","command":"sleep 2"}'`,
      `  queuectl enqueue '{"command":"./backup.sh","max_retries":5,"timeout":"10m"}'`,
      "  queuectl enqueue --id j1 --retries 2 --delay 10s -- echo hi",
      "  queuectl enqueue --env TOKEN=abc --cwd /srv/app -- ./deploy.sh",
      "  queuectl enqueue --file jobs.ndjson      # one JSON spec per line; - reads stdin",
    ].join("\n"),
  },
});
