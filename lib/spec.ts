/**
 * Job specs as users write them (JSON objects, NDJSON lines, or flags) turned into validated
 * `NewJob`s with every default resolved. Pure: the caller passes config, cwd and `now`. Every
 * problem is a `UsageError` that names the field and what to write instead.
 */
import type { Config } from "./config.ts";
import { parseDurationMs, parseInstant } from "./duration.ts";
import { UsageError } from "./errors.ts";
import type { NewJob } from "./store/store.ts";

/** Fields a spec may have; `cmd` is accepted as another spelling of `command`. */
export const SPEC_FIELDS = [
  "id",
  "command",
  "max_retries",
  "priority",
  "run_at",
  "delay",
  "timeout",
  "cwd",
  "env",
] as const;

const ALIASES: Record<string, string> = { cmd: "command", retries: "max_retries" };

/** Linux refuses a single argument longer than this (MAX_ARG_STRLEN), and `sh -c` takes one. */
export const MAX_COMMAND_BYTES = 131_072;
export const MAX_ID_LENGTH = 200;
const PRIORITY_LIMIT = 1_000_000;

export interface SpecContext {
  config: Pick<Config, "maxRetries" | "jobTimeoutMs">;
  /** Directory a job runs in when the spec names none. */
  cwd: string;
  now: number;
}

/** A random id: 12 characters of [0-9a-z]. */
export function generateId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return Array.from(bytes, (b) => (b % 36).toString(36)).join("");
}

function describeType(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  return typeof v === "object" ? "an object" : `${typeof v} ${JSON.stringify(v)}`.slice(0, 60);
}

/** Parses JSON text, with a message that says where it broke. */
export function parseJsonText(text: string, where = "job spec"): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    const detail = (e as Error).message.replace(/^JSON\.parse: /, "");
    throw new UsageError(
      `${where} is not valid JSON: ${detail}; quote it in single quotes, like '{"command":"echo hi"}'`,
    );
  }
}

function integerField(name: string, v: unknown, min: number, max: number): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
    throw new UsageError(
      `"${name}" must be an integer between ${min} and ${max}, got ${describeType(v)}`,
    );
  }
  return v;
}

function durationField(name: string, v: unknown): number {
  const ms = typeof v === "number" || typeof v === "string" ? parseDurationMs(v) : null;
  if (ms === null || ms > 365 * 86_400_000) {
    throw new UsageError(
      `"${name}" must be seconds (a number ≥ 0) or a duration like "90s", "5m", "2h", ` +
        `up to 365d; got ${describeType(v)}`,
    );
  }
  return Math.round(ms);
}

/**
 * Validates one spec object and resolves its defaults. `source` prefixes messages (for example
 * `line 3`), so a user can find the bad spec in a file.
 */
export function toNewJob(raw: unknown, ctx: SpecContext, source?: string): NewJob {
  const at = (msg: string) => new UsageError(source ? `${source}: ${msg}` : msg);
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw at(
      `a job spec must be a JSON object like {"command":"echo hi"}, got ${describeType(raw)}`,
    );
  }
  const spec: Record<string, unknown> = {};
  const unknown: string[] = [];
  for (const [k, v] of Object.entries(raw)) {
    const name = ALIASES[k] ?? k;
    if (!(SPEC_FIELDS as readonly string[]).includes(name)) unknown.push(k);
    else if (name in spec) throw at(`"${k}" and "${name}" are the same field; give only one`);
    else spec[name] = v;
  }
  if (unknown.length > 0) {
    throw at(
      `unknown field${unknown.length > 1 ? "s" : ""} ${
        unknown.map((u) => `"${u.slice(0, 40)}"`).join(", ")
      }; allowed: ${SPEC_FIELDS.join(", ")}`,
    );
  }
  try {
    return resolveSpec(spec, ctx);
  } catch (e) {
    if (e instanceof UsageError && source) throw at(e.message);
    throw e;
  }
}

function resolveSpec(spec: Record<string, unknown>, ctx: SpecContext): NewJob {
  const command = spec.command;
  if (command === undefined) throw new UsageError(`missing "command": the shell command to run`);
  if (typeof command !== "string") {
    throw new UsageError(`"command" must be a string, got ${describeType(command)}`);
  }
  if (command.trim() === "") throw new UsageError(`"command" is empty; give a shell command`);
  if (command.includes("\0")) throw new UsageError(`"command" contains a NUL byte`);
  if (new TextEncoder().encode(command).length > MAX_COMMAND_BYTES) {
    throw new UsageError(`"command" is longer than ${MAX_COMMAND_BYTES} bytes`);
  }

  let id: string;
  if (spec.id === undefined || spec.id === null) id = generateId();
  else if (typeof spec.id === "number" && Number.isSafeInteger(spec.id)) id = String(spec.id);
  else if (typeof spec.id !== "string") {
    throw new UsageError(`"id" must be a string, got ${describeType(spec.id)}`);
  } else id = spec.id;
  // deno-lint-ignore no-control-regex -- ids are printed in tables: control characters are refused
  if (id.trim() === "" || id.length > MAX_ID_LENGTH || /[\x00-\x1f\x7f]/.test(id)) {
    throw new UsageError(
      `"id" must be 1 to ${MAX_ID_LENGTH} printable characters, got ${describeType(spec.id)}`,
    );
  }

  const maxRetries = spec.max_retries === undefined
    ? ctx.config.maxRetries
    : integerField("max_retries", spec.max_retries, 0, 100);
  const priority = spec.priority === undefined
    ? 0
    : integerField("priority", spec.priority, -PRIORITY_LIMIT, PRIORITY_LIMIT);

  if (spec.run_at !== undefined && spec.delay !== undefined) {
    throw new UsageError(`give either "run_at" or "delay", not both`);
  }
  let runAt = ctx.now;
  if (spec.run_at !== undefined) {
    const t = typeof spec.run_at === "string" ? parseInstant(spec.run_at) : null;
    if (t === null) {
      throw new UsageError(
        `"run_at" must be an ISO 8601 instant like "2026-12-01T09:30:00Z", got ${
          describeType(spec.run_at)
        }`,
      );
    }
    runAt = t;
  } else if (spec.delay !== undefined) {
    runAt = ctx.now + durationField("delay", spec.delay);
  }

  const timeoutMs = spec.timeout === undefined
    ? ctx.config.jobTimeoutMs
    : durationField("timeout", spec.timeout);

  let cwd = ctx.cwd;
  if (spec.cwd !== undefined) {
    if (typeof spec.cwd !== "string" || spec.cwd.trim() === "" || spec.cwd.includes("\0")) {
      throw new UsageError(`"cwd" must be a directory path, got ${describeType(spec.cwd)}`);
    }
    cwd = spec.cwd.startsWith("/") ? spec.cwd : `${ctx.cwd.replace(/\/$/, "")}/${spec.cwd}`;
  }

  let env: Record<string, string> | null = null;
  if (spec.env !== undefined && spec.env !== null) {
    if (typeof spec.env !== "object" || Array.isArray(spec.env)) {
      throw new UsageError(
        `"env" must be an object of strings like {"NAME":"value"}, got ${describeType(spec.env)}`,
      );
    }
    env = {};
    for (const [k, v] of Object.entries(spec.env)) {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) {
        throw new UsageError(`"env" name "${k.slice(0, 40)}" is not a valid variable name`);
      }
      if (typeof v !== "string" && typeof v !== "number" && typeof v !== "boolean") {
        throw new UsageError(`"env.${k}" must be a string, got ${describeType(v)}`);
      }
      if (String(v).includes("\0")) throw new UsageError(`"env.${k}" contains a NUL byte`);
      env[k] = String(v);
    }
  }

  return { id, command, maxRetries, priority, runAt, timeoutMs, cwd, env };
}

/**
 * Parses NDJSON text: one spec per non-blank line. Errors name the line. Duplicate ids within
 * the text are refused here, before anything is stored.
 */
export function parseNdjson(text: string, ctx: SpecContext, name: string): NewJob[] {
  const jobs: NewJob[] = [];
  const seen = new Set<string>();
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === "") continue;
    const where = `${name} line ${i + 1}`;
    const job = toNewJob(parseJsonText(line, where), ctx, where);
    if (seen.has(job.id)) {
      throw new UsageError(`${where}: id "${job.id}" appears twice in this file; ids are unique`);
    }
    seen.add(job.id);
    jobs.push(job);
  }
  if (jobs.length === 0) throw new UsageError(`${name} holds no job specs (one JSON per line)`);
  return jobs;
}
