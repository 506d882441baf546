/**
 * Job specs as users write them (JSON objects, NDJSON lines, JSON arrays, or flags) turned into
 * validated `NewJob`s with every default resolved. Pure: the caller passes config, cwd and `now`.
 * Every problem is a `UsageError` that names the field and what to write instead.
 */
import { type Config, MAX_JOB_TIMEOUT_MS } from "./config.ts";
import { formatDuration, parseDurationMs } from "./duration.ts";
import { UsageError } from "./errors.ts";
import { DEFAULT_QUEUE, type NewJob } from "./store/store.ts";

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
  "unique_key",
  "after",
  "queue",
] as const;

/**
 * Linux refuses an argument or environment string of MAX_ARG_STRLEN (131,072) bytes or more, its
 * terminating NUL included (E2BIG); `sh -c` takes the command as one argument.
 */
export const MAX_COMMAND_BYTES = 131_071;
/** The most one `env` variable may hold, as `NAME=VALUE` in bytes: MAX_ARG_STRLEN, as above. */
export const MAX_ENV_VAR_BYTES = 131_071;
/**
 * The most a job's command and `env` may hold together, in bytes (each string with its NUL).
 * Everything passed to exec shares ARG_MAX: 1 MiB on macOS, usually 2 MiB on Linux. The worker's
 * own environment comes on top, so a job keeps to half of the smaller one.
 */
export const MAX_EXEC_BYTES = 512 * 1024;
export const MAX_ID_LENGTH = 200;
/** A unique key is shown and refused like an id: 1 to this many printable characters. */
export const MAX_UNIQUE_KEY_LENGTH = 200;
/** The most jobs one job may wait for (`after`). */
export const MAX_AFTER = 1000;
const PRIORITY_LIMIT = 1_000_000;
/** The longest queue name. */
export const MAX_QUEUE_NAME_LENGTH = 64;
const QUEUE_NAME = /^[A-Za-z0-9_.-]{1,64}$/;

/**
 * Refuses a queue name that is not a short word of letters, digits, `_`, `.` and `-` (so it fits
 * a table, a label and a shell word as it is); `what` names where it came from in the message.
 */
export function checkQueueName(name: unknown, what = '"queue"'): string {
  if (typeof name === "string" && QUEUE_NAME.test(name)) return name;
  throw new UsageError(
    `${what} must be 1 to ${MAX_QUEUE_NAME_LENGTH} letters, digits, _ . or - ` +
      `(a name like emails or batch-2), got ${describeType(name)}`,
  );
}

export interface SpecContext {
  config: Pick<Config, "maxRetries" | "jobTimeoutMs">;
  /** Directory a job runs in when the spec names none. */
  cwd: string;
  now: number;
}

/** A random id: 12 characters of [0-9a-z], each equally likely. */
export function generateId(): string {
  return randomChars(ID_LENGTH);
}

/**
 * A source of `n` generated ids in increasing order, for the jobs of one batch: the id space is cut
 * into `n` equal ranges of its first 6 characters, the k-th id falls at random in the k-th range,
 * and its last 6 characters are random. In order, a batch's ids go into the id index one after
 * the other (random ones land all over it: a third of a 100,000-job insert). Past `n` ids, it
 * gives random ones.
 */
export function orderedIds(n: number): () => string {
  let k = 0;
  return () => {
    if (k >= n) return generateId();
    const lo = Math.floor((k * ID_HALF_SPACE) / n);
    const hi = Math.floor(((k + 1) * ID_HALF_SPACE) / n);
    k++;
    // A random point in [lo, hi): the modulo's bias is at most (hi - lo) / 2^32.
    let v = lo + randomUint32() % Math.max(1, hi - lo);
    const codes = ID_CODES;
    const c5 = codes[v % 36];
    v = Math.floor(v / 36);
    const c4 = codes[v % 36];
    v = Math.floor(v / 36);
    const c3 = codes[v % 36];
    v = Math.floor(v / 36);
    const c2 = codes[v % 36];
    v = Math.floor(v / 36);
    const c1 = codes[v % 36];
    const c0 = codes[Math.floor(v / 36)];
    return String.fromCharCode(c0, c1, c2, c3, c4, c5) + randomChars(ID_LENGTH - 6);
  };
}

const ID_LENGTH = 12;
const ID_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz";
const ID_CODES = Array.from(ID_ALPHABET, (c) => c.charCodeAt(0));
const ID_UNBIASED_BYTES = 256 - (256 % ID_ALPHABET.length);
/** How many values the first 6 characters of an id take: 36^6. */
const ID_HALF_SPACE = 36 ** 6;

/** Random id characters not yet used: ids of a batch are cut from one string, not built. */
let idPool = "";
let idAt = 0;
/** Random bytes drawn at the next refill: few for the first ids, more as a batch goes on. */
let idPoolBytes = 64;

/** `length` random characters of [0-9a-z], each equally likely. */
function randomChars(length: number): string {
  if (idAt + length > idPool.length) refillIdPool();
  const chars = idPool.slice(idAt, idAt + length);
  idAt += length;
  return chars;
}

/**
 * Draws the characters of the next ids with one `getRandomValues` call: 5 ids at first (one
 * `enqueue` needs one, and a cold loop is slow), doubling up to ~1,300 per call. 256 is not a
 * multiple of 36: `byte % 36` would draw 0-3 more often than the rest, so bytes from 252 (7 × 36)
 * up are skipped instead, and each character has 7 bytes of 252.
 */
function refillIdPool() {
  const bytes = crypto.getRandomValues(new Uint8Array(idPoolBytes));
  idPoolBytes = Math.min(idPoolBytes * 2, 16_384);
  const chars = new Uint8Array(bytes.length);
  let n = 0;
  for (let i = 0; i < bytes.length; i++) {
    const byte = bytes[i];
    if (byte < ID_UNBIASED_BYTES) chars[n++] = ID_CODES[byte % ID_ALPHABET.length];
  }
  idPool = idPool.slice(idAt) + String.fromCharCode.apply(null, chars.subarray(0, n) as never);
  idAt = 0;
}

/** Random 32-bit integers, drawn 1,024 at a time. */
const randomWords = new Uint32Array(1_024);
let wordAt = randomWords.length;

function randomUint32(): number {
  if (wordAt === randomWords.length) {
    crypto.getRandomValues(randomWords);
    wordAt = 0;
  }
  return randomWords[wordAt++];
}

function describeType(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  return typeof v === "object" ? "an object" : `${typeof v} ${JSON.stringify(v)}`.slice(0, 60);
}

/** What to do about JSON on the command line that does not parse. */
export const QUOTE_HINT = `quote it in single quotes, like '{"command":"echo hi"}'`;
/** What a job file may hold: said instead of shell advice when a file does not parse. */
export const FILE_FORMS = "a file holds one JSON object per line (NDJSON) or a JSON array of them";

/**
 * Parses JSON text. When it is not JSON, the `UsageError` says what broke and where (line and
 * column, or just the column for one-line text), on one line and without echoing the text back,
 * and ends with `hint`.
 */
export function parseJsonText(text: string, where = "job spec", hint = QUOTE_HINT): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    const found = findJsonError(text);
    // V8 sometimes quotes the whole input (newlines included) instead of a position; only fall
    // back to its message, flattened to one line, if the scanner below disagrees with it.
    const detail = text.trim() === ""
      ? "the text is empty"
      : found
      ? `${found.reason} at ${textPosition(text, found.at)}`
      : (e as Error).message.replace(/^JSON\.parse: /, "").replace(/\s+/g, " ").slice(0, 200);
    throw new UsageError(`${where} is not valid JSON: ${detail}; ${hint}`);
  }
}

/** `line 2, column 5`, or `column 5` when the text is one line; columns count characters. */
function textPosition(text: string, at: number): string {
  const before = text.slice(0, at);
  const lineStart = before.lastIndexOf("\n") + 1;
  const column = Array.from(before.slice(lineStart)).length + 1;
  if (!text.includes("\n")) return `column ${column}`;
  return `line ${before.split("\n").length}, column ${column}`;
}

function showChar(text: string, at: number): string {
  const c = String.fromCodePoint(text.codePointAt(at)!);
  // deno-lint-ignore no-control-regex -- invisible characters are named by code point instead
  return /^[\x00-\x20\x7f-\xa0\u2028\u2029\ufeff]$/.test(c)
    ? `character U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0")}`
    : c === "'"
    ? `"'"`
    : `'${c}'`;
}

/**
 * Scans text that `JSON.parse` refused and returns the offset of the first error with a short
 * reason, or `null` when it finds none. Iterative, so deeply nested input cannot overflow the stack.
 */
function findJsonError(text: string): { at: number; reason: string } | null {
  let i = 0;
  const stack: Array<"{" | "["> = [];
  const fail = (reason: string, at = i) => ({
    at,
    reason: at >= text.length && !reason.startsWith("unterminated")
      ? "unexpected end of input"
      : reason,
  });
  const skipBlanks = () => {
    while (i < text.length && " \t\n\r".includes(text[i])) i++;
  };
  const scanString = () => {
    const start = i++;
    while (i < text.length) {
      const c = text[i];
      if (c === '"') {
        i++;
        return null;
      }
      if (c < " ") return fail(`${showChar(text, i)} inside a string (write it as an escape)`);
      if (c === "\\") {
        const e = text[i + 1];
        if (e !== undefined && '"\\/bfnrt'.includes(e)) i += 2;
        else if (e === "u" && /^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) i += 6;
        else if (e === undefined) break;
        else return fail("bad escape in a string");
      } else i++;
    }
    return fail("unterminated string starting", start);
  };
  let expect: "value" | "key" | "next" = "value";
  for (;;) {
    skipBlanks();
    if (expect === "value") {
      const c = text[i];
      if (c === "{" || c === "[") {
        stack.push(c);
        i++;
        skipBlanks();
        if (text[i] === (c === "{" ? "}" : "]")) {
          i++;
          stack.pop();
          expect = "next";
        } else expect = c === "{" ? "key" : "value";
        continue;
      }
      if (c === '"') {
        const err = scanString();
        if (err) return err;
        expect = "next";
        continue;
      }
      const literal = /true|false|null|-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/y;
      literal.lastIndex = i;
      const m = literal.exec(text);
      if (!m) return fail(i < text.length ? `unexpected ${showChar(text, i)}` : "");
      i += m[0].length;
      expect = "next";
    } else if (expect === "key") {
      if (text[i] !== '"') {
        return fail(
          i < text.length
            ? `expected a property name in double quotes, found ${showChar(text, i)}`
            : "",
        );
      }
      const err = scanString();
      if (err) return err;
      skipBlanks();
      if (text[i] !== ":") {
        return fail(
          i < text.length ? `expected ':' after a property name, found ${showChar(text, i)}` : "",
        );
      }
      i++;
      expect = "value";
    } else {
      const top = stack.at(-1);
      if (top === undefined) {
        return i < text.length
          ? fail(`unexpected ${showChar(text, i)} after the JSON value`)
          : null;
      }
      const close = top === "{" ? "}" : "]";
      if (text[i] === ",") {
        i++;
        expect = top === "{" ? "key" : "value";
      } else if (text[i] === close) {
        i++;
        stack.pop();
      } else {
        return fail(
          i < text.length ? `expected ',' or '${close}', found ${showChar(text, i)}` : "",
        );
      }
    }
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

/** A duration up to `maxMs`; a longer one is refused with its own message when `overMax` is set. */
function durationField(
  name: string,
  v: unknown,
  maxMs: number,
  overMax?: (max: string) => string,
): number {
  const ms = typeof v === "number" || typeof v === "string" ? parseDurationMs(v) : null;
  if (ms !== null && ms > maxMs && overMax) {
    throw new UsageError(`${overMax(formatDuration(maxMs))}; got ${describeType(v)}`);
  }
  if (ms === null || ms > maxMs) {
    throw new UsageError(
      `"${name}" must be seconds (a number ≥ 0) or a duration like "90s", "5m", "2h", ` +
        `up to ${formatDuration(maxMs)}; got ${describeType(v)}`,
    );
  }
  return Math.round(ms);
}

const MAX_DELAY_MS = 365 * 86_400_000;

/**
 * Reads an ISO 8601 instant with its UTC offset (`2026-12-01T09:30:00Z`, `…+02:00`) through the
 * built-in `Temporal`, which refuses dates and times that are not on the calendar or the clock
 * (`2026-02-30`, `24:00`). A date and time without an offset is refused with its own message: on
 * which machine's clock it means is not something to guess for a job that runs elsewhere later.
 */
function instantField(name: string, v: unknown): number {
  if (typeof v === "string") {
    try {
      return Temporal.Instant.from(v.trim()).epochMilliseconds;
    } catch {
      // Said below.
    }
    let local = false;
    try {
      Temporal.PlainDateTime.from(v.trim());
      local = true;
    } catch {
      // Not a date either: said below.
    }
    if (local) {
      throw new UsageError(
        `"${name}" ${JSON.stringify(v.slice(0, 60))} has no UTC offset; add Z for UTC or the ` +
          `offset of the time zone you mean, like "2026-12-01T09:30:00Z" or ` +
          `"2026-12-01T09:30:00+02:00"`,
      );
    }
  }
  throw new UsageError(
    `"${name}" must be an ISO 8601 instant like "2026-12-01T09:30:00Z", got ${describeType(v)}`,
  );
}

/**
 * Characters an id may not hold: controls (C0, DEL, C1), the line and paragraph separators, and
 * invisible format characters (category Cf: U+202E and the other bidirectional overrides and
 * isolates, U+200B, U+FEFF, …), which hide or reorder text where ids are shown. The one exception
 * is U+200D between two emoji, where it joins them into one (👩‍💻).
 */
const ID_FORBIDDEN =
  /(?!(?<=\p{Extended_Pictographic}[\u{FE0F}\u{1F3FB}-\u{1F3FF}]?)\u200D(?=\p{Extended_Pictographic}))[\p{Cc}\p{Cf}\u2028\u2029]/u;

/** An id that needs no closer look: printable ASCII, the first character not a space. */
const PLAIN_ID = /^[!-~][ -~]*$/;

/** UTF-8 length of a string, without encoding it. */
function utf8Length(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    // 1 unit → 2 or 3 bytes; a surrogate pair (2 units) → 4 bytes.
    if (c >= 0x80) n += c >= 0x800 && (c < 0xd800 || c > 0xdfff) ? 2 : 1;
  }
  return n;
}

/** A spec's fields under their canonical names; `undefined` when not given. */
interface Fields {
  id: unknown;
  command: unknown;
  max_retries: unknown;
  priority: unknown;
  run_at: unknown;
  delay: unknown;
  timeout: unknown;
  cwd: unknown;
  env: unknown;
  unique_key: unknown;
  after: unknown;
  queue: unknown;
}

/**
 * Validates one spec object and resolves its defaults. `source` prefixes messages (for example
 * `line 3`), so a user can find the bad spec in a file.
 *
 * Hot path of a batch enqueue (once per job): the fields are read in one pass into one object of
 * a fixed shape, without intermediate entry arrays or maps.
 */
export function toNewJob(raw: unknown, ctx: SpecContext, source?: string): NewJob {
  try {
    return specToJob(raw, ctx);
  } catch (e) {
    if (e instanceof UsageError && source) throw new UsageError(`${source}: ${e.message}`);
    throw e;
  }
}

function specToJob(raw: unknown, ctx: SpecContext, nextId = generateId): NewJob {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new UsageError(
      `a job spec must be a JSON object like {"command":"echo hi"}, got ${describeType(raw)}`,
    );
  }
  const obj = raw as Record<string, unknown>;
  const spec: Fields = {
    id: undefined,
    command: undefined,
    max_retries: undefined,
    priority: undefined,
    run_at: undefined,
    delay: undefined,
    timeout: undefined,
    cwd: undefined,
    env: undefined,
    unique_key: undefined,
    after: undefined,
    queue: undefined,
  };
  /** The spelling `command` and `max_retries` were given as, to name both when both come. */
  let commandAs: string | undefined;
  let retriesAs: string | undefined;
  let unknown: string[] | undefined;
  /** The first field (in the spec's order) whose text is not well-formed Unicode. */
  let illFormed: string | undefined;
  for (const k of Object.keys(obj)) {
    const v = obj[k];
    let name: keyof Fields;
    switch (k) {
      case "command":
      case "cmd":
        if (commandAs !== undefined) {
          throw new UsageError(`"${commandAs}" and "${k}" are the same field; give only one`);
        }
        commandAs = k;
        name = "command";
        break;
      case "max_retries":
      case "retries":
        if (retriesAs !== undefined) {
          throw new UsageError(`"${retriesAs}" and "${k}" are the same field; give only one`);
        }
        retriesAs = k;
        name = "max_retries";
        break;
      case "id":
      case "priority":
      case "run_at":
      case "delay":
      case "timeout":
      case "cwd":
      case "env":
      case "unique_key":
      case "after":
      case "queue":
        name = k;
        break;
      default:
        (unknown ??= []).push(k);
        continue;
    }
    spec[name] = v;
    if (illFormed === undefined && !wellFormed(name, v)) illFormed = name;
  }
  if (unknown !== undefined) {
    throw new UsageError(
      `unknown field${unknown.length > 1 ? "s" : ""} ${
        unknown.map((u) => `"${u.slice(0, 40)}"`).join(", ")
      }; allowed: ${SPEC_FIELDS.join(", ")}`,
    );
  }
  if (illFormed !== undefined) {
    throw new UsageError(
      `"${illFormed}" is not well-formed Unicode (it holds a lone surrogate such as \\udbff)`,
    );
  }
  return resolveSpec(spec, ctx, nextId);
}

/**
 * Whether SQLite can store the field's text (or, for `env`, its names and values) as it is: a
 * lone surrogate would come back as U+FFFD, and the job could no longer be found by its id.
 */
function wellFormed(field: string, v: unknown): boolean {
  if (typeof v === "string") return v.isWellFormed();
  if (field === "env" && v && typeof v === "object") {
    for (const [k, x] of Object.entries(v)) {
      if (!k.isWellFormed() || (typeof x === "string" && !x.isWellFormed())) return false;
    }
  }
  return true;
}

function resolveSpec(spec: Fields, ctx: SpecContext, nextId: () => string): NewJob {
  const command = spec.command;
  if (command === undefined) throw new UsageError(`missing "command": the shell command to run`);
  if (typeof command !== "string") {
    throw new UsageError(`"command" must be a string, got ${describeType(command)}`);
  }
  if (command.trim() === "") throw new UsageError(`"command" is empty; give a shell command`);
  if (command.includes("\0")) throw new UsageError(`"command" contains a NUL byte`);
  // A UTF-16 unit is at most 3 UTF-8 bytes: count only a command that might be too long.
  const commandBytes = command.length * 3 > MAX_COMMAND_BYTES ? utf8Length(command) : 0;
  if (commandBytes > MAX_COMMAND_BYTES) {
    throw new UsageError(
      `"command" is longer than ${MAX_COMMAND_BYTES} bytes, the most one argument to exec may ` +
        `hold; put it in a script and run that`,
    );
  }

  let id: string;
  if (spec.id === undefined || spec.id === null) id = nextId();
  else if (typeof spec.id === "number" && Number.isSafeInteger(spec.id)) id = String(spec.id);
  else if (typeof spec.id !== "string") {
    throw new UsageError(`"id" must be a string, got ${describeType(spec.id)}`);
  } else {
    id = spec.id;
    // Printable ASCII not starting with a space (most given ids) passes without the scan.
    if (id.length > MAX_ID_LENGTH || !PLAIN_ID.test(id)) checkId(id);
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
    runAt = instantField("run_at", spec.run_at);
  } else if (spec.delay !== undefined) {
    runAt = ctx.now + durationField("delay", spec.delay, MAX_DELAY_MS);
  }

  const timeoutMs = spec.timeout === undefined ? ctx.config.jobTimeoutMs : durationField(
    "timeout",
    spec.timeout,
    MAX_JOB_TIMEOUT_MS,
    (max) => `"timeout" may be at most ${max}, the cap of config job-timeout too`,
  );

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
    const entries: Array<[string, string]> = [];
    for (const [k, v] of Object.entries(spec.env)) {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) {
        throw new UsageError(`"env" name "${k.slice(0, 40)}" is not a valid variable name`);
      }
      if (typeof v !== "string" && typeof v !== "number" && typeof v !== "boolean") {
        throw new UsageError(`"env.${k}" must be a string, got ${describeType(v)}`);
      }
      const value = String(v);
      if (value.includes("\0")) throw new UsageError(`"env.${k}" contains a NUL byte`);
      entries.push([k, value]);
    }
    checkExecSize(command, commandBytes, entries);
    // fromEntries defines own properties: a variable named __proto__ is kept, not swallowed.
    env = Object.fromEntries(entries);
  }

  const queue = spec.queue === undefined ? DEFAULT_QUEUE : checkQueueName(spec.queue);
  const job: NewJob = { id, command, maxRetries, priority, runAt, timeoutMs, cwd, env, queue };
  if (spec.unique_key !== undefined && spec.unique_key !== null) {
    if (typeof spec.unique_key !== "string") {
      throw new UsageError(`"unique_key" must be a string, got ${describeType(spec.unique_key)}`);
    }
    checkId(spec.unique_key, "unique_key", MAX_UNIQUE_KEY_LENGTH);
    job.uniqueKey = spec.unique_key;
  }
  if (spec.after !== undefined && spec.after !== null) job.after = afterField(spec.after, id);
  return job;
}

/**
 * The ids a job waits for: an array of ids (strings, or integers as `id` takes them), each once,
 * never the job's own. Whether they exist is the store's to check, in the enqueue's transaction.
 */
function afterField(v: unknown, id: string): string[] {
  if (!Array.isArray(v)) {
    throw new UsageError(
      `"after" must be an array of job ids like ["build"], got ${describeType(v)}`,
    );
  }
  if (v.length > MAX_AFTER) {
    throw new UsageError(`"after" may name at most ${MAX_AFTER} jobs, got ${v.length}`);
  }
  const ids = new Set<string>();
  for (const x of v) {
    const dep = typeof x === "number" && Number.isSafeInteger(x) ? String(x) : x;
    if (typeof dep !== "string" || dep.trim() === "" || dep.length > MAX_ID_LENGTH) {
      throw new UsageError(`"after" must hold job ids, got ${describeType(x)}`);
    }
    if (dep === id) {
      throw new UsageError(`"after" names the job itself ("${id}"); a job cannot wait for itself`);
    }
    ids.add(dep);
  }
  return [...ids];
}

/**
 * Refuses an id (or a unique key: `field`) that is blank, too long, or holds a character that
 * must not be shown.
 */
function checkId(id: string, field = "id", max = MAX_ID_LENGTH) {
  if (id.trim() === "" || id.length > max) {
    throw new UsageError(
      `"${field}" must be 1 to ${max} printable characters, got ${describeType(id)}`,
    );
  }
  // Ids are printed in tables: a control or invisible character is named, never shown.
  const hidden = ID_FORBIDDEN.exec(id);
  if (hidden) {
    const c = hidden[0];
    const format = /\p{Cf}/u.test(c);
    throw new UsageError(
      `"${field}" must be 1 to ${max} printable characters; it holds the ` +
        `${format ? "invisible format" : "control"} character ` +
        `U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0")} at position ` +
        `${Array.from(id.slice(0, hidden.index)).length + 1}` +
        (format ? ", which can hide or reorder text where ids are shown" : ""),
    );
  }
}

/**
 * Refuses an `env` that exec would refuse (E2BIG) when the job starts: one variable over
 * MAX_ENV_VAR_BYTES, or the command and all variables together over MAX_EXEC_BYTES. Counted in
 * UTF-8 bytes, each string with its NUL; the byte count is only taken when the text is long.
 */
function checkExecSize(command: string, commandBytes: number, entries: Array<[string, string]>) {
  let units = command.length + 1;
  for (const [k, v] of entries) units += k.length + v.length + 2;
  // A UTF-16 unit is at most 3 bytes: most envs are far below both bounds.
  if (units * 3 <= MAX_ENV_VAR_BYTES) return;
  let total = (commandBytes || utf8Length(command)) + 1;
  for (const [k, v] of entries) {
    const bytes = utf8Length(k) + 1 + utf8Length(v);
    if (bytes > MAX_ENV_VAR_BYTES) {
      throw new UsageError(
        `"env.${k}" is ${bytes} bytes as NAME=VALUE; one variable may hold at most ` +
          `${MAX_ENV_VAR_BYTES} bytes (128 KiB), or the job could not start; put the value in a ` +
          `file and pass its path`,
      );
    }
    total += bytes + 1;
  }
  if (total > MAX_EXEC_BYTES) {
    throw new UsageError(
      `"command" and "env" hold ${total} bytes together; a job may pass at most ${MAX_EXEC_BYTES} ` +
        `bytes (512 KiB) to exec, or it could not start; put large values in files and pass ` +
        `their paths`,
    );
  }
}

/**
 * Parses the text of a job file: a JSON array of specs (pretty-printed or not), one spec
 * pretty-printed over several lines, or NDJSON (one spec per non-blank line). Errors name the
 * line, or the array element and its line, and never give shell advice: there is no shell here.
 */
export function parseJobsText(text: string, ctx: SpecContext, name: string): NewJob[] {
  const start = text.search(/\S/);
  if (start >= 0 && text[start] === "[") {
    return jobsFromArray(parseJsonText(text, name, FILE_FORMS) as unknown[], text, ctx, name);
  }
  if (start >= 0 && text[start] === "{") {
    const end = text.indexOf("\n", start);
    if (end !== -1 && !isJson(text.slice(start, end))) {
      // Not NDJSON: its first line is not a whole object. One object over several lines?
      return [toNewJob(parseJsonText(text, name, FILE_FORMS), ctx, name)];
    }
  }
  return parseNdjson(text, ctx, name);
}

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/**
 * A job spec given on the command line: a JSON object, or a JSON array of them. `hint` ends the
 * message when the text is not JSON.
 */
export function parseJobArgument(text: string, ctx: SpecContext, hint = QUOTE_HINT): NewJob[] {
  const value = parseJsonText(text, "job spec", hint);
  if (Array.isArray(value)) return jobsFromArray(value, text, ctx, "job spec");
  return [toNewJob(value, ctx)];
}

/**
 * Validates each element of a JSON array of specs; messages name the element (counted from 1)
 * and, when `text` has several lines, the line it starts on. Duplicate ids are refused.
 */
function jobsFromArray(specs: unknown[], text: string, ctx: SpecContext, name: string): NewJob[] {
  if (specs.length === 0) throw new UsageError(`${name} is an empty array: it holds no job specs`);
  const multiline = text.trimEnd().includes("\n");
  const where = (i: number) =>
    `${name} element ${i + 1}` + (multiline ? ` (line ${arrayElementLine(text, i)})` : "");
  const jobs: NewJob[] = [];
  const seen = new Map<string, number>();
  const nextId = orderedIds(specs.length);
  for (let i = 0; i < specs.length; i++) {
    let job: NewJob;
    try {
      job = specToJob(specs[i], ctx, nextId);
    } catch (e) {
      if (e instanceof UsageError) throw new UsageError(`${where(i)}: ${e.message}`);
      throw e;
    }
    if (givenId(specs[i])) {
      const first = seen.get(job.id);
      if (first !== undefined) {
        throw new UsageError(
          `${where(i)}: id "${job.id}" appears twice (first as element ${
            first + 1
          }); ids are unique`,
        );
      }
      seen.set(job.id, i);
    }
    jobs.push(job);
  }
  return jobs;
}

/** The line (from 1) on which element `index` of the JSON array `text` (valid JSON) starts. */
function arrayElementLine(text: string, index: number): number {
  let depth = 0;
  let line = 1;
  let count = -1;
  let inString = false;
  let expectElement = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === "\n") line++;
    if (inString) {
      if (c === "\\") i++;
      else if (c === '"') inString = false;
      continue;
    }
    if (expectElement && c !== " " && c !== "\t" && c !== "\r" && c !== "\n") {
      expectElement = false;
      if (++count === index) return line;
    }
    if (c === '"') inString = true;
    else if (c === "[" || c === "{") {
      if (++depth === 1) expectElement = true;
    } else if (c === "]" || c === "}") depth--;
    else if (c === "," && depth === 1) expectElement = true;
  }
  return line;
}

/**
 * Parses NDJSON text: one spec per non-blank line. Errors name the line. Duplicate ids within
 * the text are refused here, before anything is stored.
 *
 * Hot path of a batch enqueue: a line's name (`jobs.ndjson line 3`) is only made for a message,
 * only given ids are tracked for duplicates (a generated one is new; were it not, the store
 * would refuse the batch), and generated ids come in increasing order (`orderedIds`).
 */
export function parseNdjson(text: string, ctx: SpecContext, name: string): NewJob[] {
  const jobs: NewJob[] = [];
  const seen = new Map<string, number>();
  const lines = text.split("\n");
  const nextId = orderedIds(lines.length);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === "") continue;
    let raw: unknown;
    try {
      raw = JSON.parse(line);
    } catch {
      parseJsonText(line, `${name} line ${i + 1}`, FILE_FORMS); // throws, saying where it broke
    }
    let job: NewJob;
    try {
      job = specToJob(raw, ctx, nextId);
    } catch (e) {
      if (e instanceof UsageError) throw new UsageError(`${name} line ${i + 1}: ${e.message}`);
      throw e;
    }
    if (givenId(raw)) {
      const first = seen.get(job.id);
      if (first !== undefined) {
        throw new UsageError(
          `${name} line ${
            i + 1
          }: id "${job.id}" appears twice in this file (first on line ${first}); ` +
            `ids are unique`,
        );
      }
      seen.set(job.id, i + 1);
    }
    jobs.push(job);
  }
  if (jobs.length === 0) throw new UsageError(`${name} holds no job specs; ${FILE_FORMS}`);
  return jobs;
}

/** Whether a valid spec gave its own id (else it was generated). */
function givenId(raw: unknown): boolean {
  const id = (raw as { id?: unknown }).id;
  return id !== undefined && id !== null;
}
