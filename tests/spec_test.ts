/**
 * Job specs (`lib/spec.ts`): defaults from config, every field and its validation, NDJSON files,
 * and where invalid JSON broke. Pure: config, cwd and `now` are passed in.
 */
import assert from "node:assert/strict";
import { assertUsage } from "./helpers.ts";
import {
  generateId,
  MAX_COMMAND_BYTES,
  MAX_ID_LENGTH,
  parseJsonText,
  parseNdjson,
  SPEC_FIELDS,
  type SpecContext,
  toNewJob,
} from "../lib/spec.ts";

const NOW = 1_800_000_000_000;
const CTX: SpecContext = {
  config: { maxRetries: 5, jobTimeoutMs: 45_000 },
  cwd: "/home/ada/work",
  now: NOW,
};

const rejects = (raw: unknown, pattern: RegExp) => assertUsage(() => toNewJob(raw, CTX), pattern);

Deno.test("spec: a bare command gets every default from the config and context", () => {
  const job = toNewJob({ command: "echo hi" }, CTX);
  assert.match(job.id, /^[0-9a-z]{12}$/);
  assert.deepEqual({ ...job, id: "x" }, {
    id: "x",
    command: "echo hi",
    maxRetries: 5,
    priority: 0,
    runAt: NOW,
    timeoutMs: 45_000,
    cwd: "/home/ada/work",
    env: null,
    queue: "default",
  });
});

Deno.test("spec: every field is read", () => {
  const job = toNewJob({
    id: "nightly-1",
    command: "make backup",
    max_retries: 7,
    priority: -3,
    run_at: "2026-12-01T09:30:00Z",
    timeout: "90s",
    cwd: "/srv/app",
    env: { NAME: "value", COUNT: 2, FLAG: true },
    queue: "nightly.jobs-2",
  }, CTX);
  assert.deepEqual(job, {
    id: "nightly-1",
    command: "make backup",
    maxRetries: 7,
    priority: -3,
    runAt: Date.UTC(2026, 11, 1, 9, 30),
    timeoutMs: 90_000,
    cwd: "/srv/app",
    env: { NAME: "value", COUNT: "2", FLAG: "true" },
    queue: "nightly.jobs-2",
  });
});

Deno.test("spec: SPEC_FIELDS lists exactly the fields a spec may have", () => {
  assert.deepEqual([...SPEC_FIELDS], [
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
  ]);
});

Deno.test("spec: `cmd` is another spelling of `command`, `retries` of `max_retries`", () => {
  const job = toNewJob({ cmd: "true", retries: 0 }, CTX);
  assert.equal(job.command, "true");
  assert.equal(job.maxRetries, 0);
});

Deno.test("spec: giving a field under both of its names is refused", () => {
  rejects({ cmd: "a", command: "b" }, /^"cmd" and "command" are the same field; give only one$/);
  rejects({ command: "b", cmd: "a" }, /^"command" and "cmd" are the same field; give only one$/);
  rejects({ command: "b", max_retries: 1, retries: 2 }, /^"max_retries" and "retries" are the/);
});

Deno.test("spec: unknown fields are refused, naming each of them and the allowed ones", () => {
  rejects(
    { command: "true", colour: "red" },
    /^unknown field "colour"; allowed: id, command, max_retries, priority, run_at, delay, timeout, cwd, env, unique_key, after, queue$/,
  );
  rejects({ command: "true", foo: 1, bar: 2 }, /^unknown fields "foo", "bar"; allowed: /);
  rejects({ command: "true", maxRetries: 1 }, /unknown field "maxRetries"/);
  rejects(
    { command: "true", ["x".repeat(500)]: 1 },
    new RegExp(`unknown field "${"x".repeat(40)}"`),
  );
  // Names of Object.prototype members are fields like any other, not lookups.
  rejects(JSON.parse('{"command":"true","__proto__":1}'), /unknown field "__proto__"/);
  rejects({ command: "true", constructor: 1, toString: 2 }, /"constructor", "toString"/);
});

Deno.test("spec: a spec that is not an object is refused", () => {
  for (const raw of [null, [], ["echo"], "echo hi", 42, true]) {
    rejects(raw, /^a job spec must be a JSON object like \{"command":"echo hi"\}, got /);
  }
  rejects([], /got an array$/);
  rejects("echo hi", /got string "echo hi"$/);
});

Deno.test("spec: a missing, empty or non-string command is refused", () => {
  rejects({}, /^missing "command": the shell command to run$/);
  rejects({ priority: 1 }, /missing "command"/);
  rejects({ command: "" }, /^"command" is empty; give a shell command$/);
  rejects({ command: "  \t\n" }, /"command" is empty/);
  rejects({ command: 5 }, /^"command" must be a string, got number 5$/);
  rejects({ command: null }, /"command" must be a string, got null/);
  rejects({ command: ["echo", "hi"] }, /"command" must be a string, got an array/);
});

Deno.test("spec: a command with a NUL byte is refused", () => {
  rejects({ command: "echo a\0b" }, /^"command" contains a NUL byte$/);
});

Deno.test("spec: a command may be up to MAX_COMMAND_BYTES bytes of UTF-8", () => {
  // Linux refuses an argument of 131,072 bytes with its NUL (E2BIG): 131,071 is the most.
  assert.equal(toNewJob({ command: "x".repeat(MAX_COMMAND_BYTES) }, CTX).command.length, 131_071);
  rejects({ command: "x".repeat(MAX_COMMAND_BYTES + 1) }, /longer than 131071 bytes/);
  // 65,536 characters, but 131,072 bytes.
  rejects({ command: "é".repeat(65_536) }, /longer than 131071 bytes/);
  // 32,768 characters (65,536 UTF-16 units), but 131,072 bytes.
  rejects({ command: "🦕".repeat(32_768) }, /longer than 131071 bytes/);
  assert.ok(toNewJob({ command: "🦕".repeat(32_767) + "xxx" }, CTX));
});

Deno.test("spec: max_retries must be an integer between 0 and 100", () => {
  assert.equal(toNewJob({ command: "x", max_retries: 0 }, CTX).maxRetries, 0);
  assert.equal(toNewJob({ command: "x", max_retries: 100 }, CTX).maxRetries, 100);
  for (const v of [-1, 101, 1e9, 1.5, "3", null, true, Infinity]) {
    rejects(
      { command: "x", max_retries: v },
      /^"max_retries" must be an integer between 0 and 100, got /,
    );
  }
  rejects({ command: "x", max_retries: -1 }, /got number -1$/);
  rejects({ command: "x", max_retries: "3" }, /got string "3"$/);
});

Deno.test("spec: priority must be an integer between -1000000 and 1000000", () => {
  assert.equal(toNewJob({ command: "x", priority: 1_000_000 }, CTX).priority, 1_000_000);
  assert.equal(toNewJob({ command: "x", priority: -1_000_000 }, CTX).priority, -1_000_000);
  for (const v of [1_000_001, -1_000_001, 0.5, "high"]) {
    rejects(
      { command: "x", priority: v },
      /^"priority" must be an integer between -1000000 and 1000000, got /,
    );
  }
});

Deno.test("spec: run_at takes an ISO 8601 instant", () => {
  assert.equal(
    toNewJob({ command: "x", run_at: "2026-12-01T09:30:00+01:00" }, CTX).runAt,
    Date.UTC(2026, 11, 1, 8, 30),
  );
  // An instant in the past is allowed: the job is simply ready at once.
  assert.equal(
    toNewJob({ command: "x", run_at: "2001-01-01T00:00:00Z" }, CTX).runAt,
    Date.UTC(2001, 0, 1),
  );
});

Deno.test("spec: a bad run_at is refused with an example", () => {
  for (const v of ["tomorrow", "2026-02-30T10:00:00Z", "", 1_800_000_000_000, null, {}]) {
    rejects(
      { command: "x", run_at: v },
      /^"run_at" must be an ISO 8601 instant like "2026-12-01T09:30:00Z", got /,
    );
  }
});

Deno.test("spec: delay is seconds or a duration after now", () => {
  assert.equal(toNewJob({ command: "x", delay: "5m" }, CTX).runAt, NOW + 300_000);
  assert.equal(toNewJob({ command: "x", delay: 1.5 }, CTX).runAt, NOW + 1_500);
  assert.equal(toNewJob({ command: "x", delay: "90" }, CTX).runAt, NOW + 90_000);
  assert.equal(toNewJob({ command: "x", delay: 0 }, CTX).runAt, NOW);
  assert.equal(toNewJob({ command: "x", delay: "365d" }, CTX).runAt, NOW + 365 * 86_400_000);
  assert.equal(toNewJob({ command: "x", delay: "1.0004" }, CTX).runAt, NOW + 1_000);
});

Deno.test("spec: a bad delay is refused naming the accepted forms and the bound", () => {
  for (const v of [-1, "-5s", "soon", "366d", true, null, [], "1h 30m"]) {
    rejects(
      { command: "x", delay: v },
      /^"delay" must be seconds \(a number ≥ 0\) or a duration like "90s", "5m", "2h", up to 365d; got /,
    );
  }
});

Deno.test("spec: run_at and delay together are refused", () => {
  rejects(
    { command: "x", run_at: "2026-12-01T09:30:00Z", delay: "5m" },
    /^give either "run_at" or "delay", not both$/,
  );
});

Deno.test("spec: timeout is a duration; 0 means none; a bad one is refused", () => {
  assert.equal(toNewJob({ command: "x", timeout: 0 }, CTX).timeoutMs, 0);
  assert.equal(toNewJob({ command: "x", timeout: "2h" }, CTX).timeoutMs, 7_200_000);
  assert.equal(toNewJob({ command: "x", timeout: 30 }, CTX).timeoutMs, 30_000);
  for (const v of [-1, "forever", false, "1h 30m"]) {
    rejects({ command: "x", timeout: v }, /^"timeout" must be seconds .* up to 30d; got /);
  }
});

Deno.test("spec: a relative cwd is resolved against the context's cwd", () => {
  assert.equal(toNewJob({ command: "x", cwd: "sub/dir" }, CTX).cwd, "/home/ada/work/sub/dir");
  assert.equal(
    toNewJob({ command: "x", cwd: "sub" }, { ...CTX, cwd: "/tmp/" }).cwd,
    "/tmp/sub",
  );
  assert.equal(toNewJob({ command: "x", cwd: "/abs" }, CTX).cwd, "/abs");
});

Deno.test("spec: a bad cwd is refused", () => {
  for (const v of ["", "  ", "a\0b", 5, null, {}]) {
    rejects({ command: "x", cwd: v }, /^"cwd" must be a directory path, got /);
  }
});

Deno.test("spec: env holds strings; numbers and booleans become strings; null means none", () => {
  assert.deepEqual(
    toNewJob({ command: "x", env: { A: "1", _b2: 2, C: false, EMPTY: "" } }, CTX).env,
    { A: "1", _b2: "2", C: "false", EMPTY: "" },
  );
  assert.equal(toNewJob({ command: "x", env: null }, CTX).env, null);
  assert.deepEqual(toNewJob({ command: "x", env: {} }, CTX).env, {});
});

Deno.test("spec: an env variable named __proto__ is kept like any other name", () => {
  const job = toNewJob(JSON.parse('{"command":"x","env":{"__proto__":"v","A":"1"}}'), CTX);
  assert.deepEqual(Object.entries(job.env!), [["__proto__", "v"], ["A", "1"]]);
  assert.equal(JSON.stringify(job.env), '{"__proto__":"v","A":"1"}');
});

Deno.test("spec: bad env names, values and shapes are refused, naming the variable", () => {
  for (const env of ["A=1", ["A=1"], 5, true]) {
    rejects(
      { command: "x", env },
      /^"env" must be an object of strings like \{"NAME":"value"\}, got /,
    );
  }
  for (const name of ["1A", "A-B", "", "A B", "É"]) {
    rejects(
      { command: "x", env: { [name]: "v" } },
      /^"env" name ".*" is not a valid variable name$/,
    );
  }
  rejects({ command: "x", env: { A: { b: 1 } } }, /^"env.A" must be a string, got an object$/);
  rejects({ command: "x", env: { A: null } }, /^"env.A" must be a string, got null$/);
  rejects({ command: "x", env: { A: ["v"] } }, /"env.A" must be a string, got an array/);
  rejects({ command: "x", env: { A: "a\0b" } }, /^"env.A" contains a NUL byte$/);
});

Deno.test("spec: an id is a string of 1 to 200 printable characters, or a safe integer", () => {
  assert.equal(toNewJob({ command: "x", id: "job-1 (nightly) ✓" }, CTX).id, "job-1 (nightly) ✓");
  assert.equal(toNewJob({ command: "x", id: 42 }, CTX).id, "42");
  assert.equal(toNewJob({ command: "x", id: -7 }, CTX).id, "-7");
  const long = "a".repeat(MAX_ID_LENGTH);
  assert.equal(toNewJob({ command: "x", id: long }, CTX).id, long);
  assert.match(toNewJob({ command: "x", id: null }, CTX).id, /^[0-9a-z]{12}$/);
});

Deno.test("spec: bad ids are refused", () => {
  for (const id of ["", "   ", "a".repeat(MAX_ID_LENGTH + 1)]) {
    rejects({ command: "x", id }, /^"id" must be 1 to 200 printable characters, got /);
  }
  for (
    const [id, code] of [["a\nb", "000A"], ["tab\there", "0009"], ["del\x7f", "007F"], [
      "c1\x9b",
      "009B",
    ]]
  ) {
    rejects(
      { command: "x", id },
      new RegExp(
        `^"id" must be 1 to 200 printable characters; it holds the control character U\\+${code} at position \\d+$`,
      ),
    );
  }
  for (const id of [1.5, 2 ** 60, true, {}, ["a"]]) {
    rejects({ command: "x", id }, /^"id" must be a string, got /);
  }
});

Deno.test("spec: generated ids are 12 characters of [0-9a-z] and differ", () => {
  const ids = new Set(Array.from({ length: 200 }, generateId));
  assert.equal(ids.size, 200);
  for (const id of ids) assert.match(id, /^[0-9a-z]{12}$/);
});

Deno.test("spec: a source prefixes every message so the spec can be found", () => {
  assertUsage(
    () => toNewJob({ command: "x", priority: "high" }, CTX, "jobs.ndjson line 3"),
    /^jobs\.ndjson line 3: "priority" must be an integer/,
  );
  assertUsage(
    () => toNewJob({ command: "x", nope: 1 }, CTX, "jobs.ndjson line 4"),
    /^jobs\.ndjson line 4: unknown field "nope"/,
  );
  assertUsage(() => toNewJob(null, CTX, "stdin line 1"), /^stdin line 1: a job spec must be/);
});

Deno.test("spec: parseNdjson reads one spec per line, skipping blank lines and CRLF", () => {
  const text = '{"id":"a","command":"echo 1"}\r\n\n   \n{"id":"b","cmd":"echo 2","priority":3}\n';
  const jobs = parseNdjson(text, CTX, "jobs.ndjson");
  assert.deepEqual(jobs.map((j) => [j.id, j.command, j.priority]), [
    ["a", "echo 1", 0],
    ["b", "echo 2", 3],
  ]);
  assert.equal(jobs[0].maxRetries, 5);
});

Deno.test("spec: parseNdjson gives each line without an id its own generated id", () => {
  const jobs = parseNdjson('{"command":"a"}\n{"command":"a"}\n{"command":"a"}', CTX, "f");
  assert.equal(new Set(jobs.map((j) => j.id)).size, 3);
});

Deno.test("spec: parseNdjson refuses a duplicate id, naming both lines", () => {
  assertUsage(
    () =>
      parseNdjson(
        '{"id":"a","command":"x"}\n{"id":"b","command":"x"}\n\n{"id":"a","command":"y"}\n',
        CTX,
        "jobs.ndjson",
      ),
    /^jobs\.ndjson line 4: id "a" appears twice in this file \(first on line 1\); ids are unique$/,
  );
  // A number id and the same digits as a string are the same id.
  assertUsage(
    () => parseNdjson('{"id":7,"command":"x"}\n{"id":"7","command":"x"}', CTX, "f"),
    /^f line 2: id "7" appears twice/,
  );
});

Deno.test("spec: parseNdjson names the line of invalid JSON and where in it it broke", () => {
  assertUsage(
    () => parseNdjson('{"command":"x"}\n{"command":"y",}\n', CTX, "jobs.ndjson"),
    /^jobs\.ndjson line 2 is not valid JSON: expected a property name in double quotes, found '\}' at column 16;/,
  );
});

Deno.test("spec: parseNdjson names the line of an invalid spec", () => {
  assertUsage(
    () => parseNdjson('{"command":"x"}\n\n{"command":"y","max_retries":-1}', CTX, "jobs.ndjson"),
    /^jobs\.ndjson line 3: "max_retries" must be an integer between 0 and 100, got number -1$/,
  );
  assertUsage(() => parseNdjson("[1]\n", CTX, "stdin"), /^stdin line 1: a job spec must be/);
});

Deno.test("spec: parseNdjson refuses text without any spec", () => {
  for (const text of ["", "\n\n", "  \r\n"]) {
    assertUsage(
      () => parseNdjson(text, CTX, "empty.ndjson"),
      /^empty\.ndjson holds no job specs; a file holds one JSON object per line \(NDJSON\) or a JSON array of them$/,
    );
  }
});

Deno.test("spec: parseJsonText returns the parsed value of valid JSON", () => {
  assert.deepEqual(parseJsonText(' {"command":"echo hi","env":{"A":"1"}} '), {
    command: "echo hi",
    env: { A: "1" },
  });
  assert.equal(parseJsonText("42"), 42);
});

Deno.test("spec: invalid JSON says what broke and at which column, on one line", () => {
  const cases: Array<[string, string]> = [
    // The shell ate the double quotes.
    ["{command:echo hi}", "expected a property name in double quotes, found 'c' at column 2"],
    ["{'command':'x'}", `expected a property name in double quotes, found "'" at column 2`],
    ['{"a":1,}', "expected a property name in double quotes, found '}' at column 8"],
    // V8's own message for these quotes the input instead of giving a position.
    ['{"command":tru}', "unexpected 't' at column 12"],
    ['{"a":"x"} {"b":1}', "unexpected '{' after the JSON value at column 11"],
    ['{"command":"x"', "unexpected end of input at column 15"],
    ['{"command":"echo', "unterminated string starting at column 12"],
    ['{"a" 1}', "expected ':' after a property name, found '1' at column 6"],
    ['{"a":[1,2}', "expected ',' or ']', found '}' at column 10"],
    ['{"a":1 "b":2}', "expected ',' or '}', found '\"' at column 8"],
    ['{"a":"\\q"}', "bad escape in a string at column 7"],
    ['{"a":"tab\there"}', "character U+0009 inside a string (write it as an escape) at column 10"],
    ["\uFEFF{}", "unexpected character U+FEFF at column 1"],
    ['{"é":"ü", x}', "expected a property name in double quotes, found 'x' at column 11"],
    // Columns count characters, not UTF-16 code units.
    ['{"😀":x}', "unexpected 'x' at column 6"],
    ['{"a":😀}', "unexpected '😀' at column 6"],
    ["   ", "the text is empty"],
    ["", "the text is empty"],
  ];
  for (const [text, detail] of cases) {
    assertUsage(
      () => parseJsonText(text),
      new RegExp(
        `^job spec is not valid JSON: ${RegExp.escape(detail)}; quote it in single quotes, ` +
          `like '\\{"command":"echo hi"\\}'$`,
      ),
    );
  }
});

Deno.test("spec: invalid JSON on several lines gives the line and column", () => {
  assertUsage(
    () => parseJsonText('{\n  "command": "x",\n  "env": {"A": tru}\n}', "jobs.json"),
    /^jobs\.json is not valid JSON: unexpected 't' at line 3, column 16;/,
  );
  assertUsage(
    () => parseJsonText('{"a":1\n,"b":}'),
    /is not valid JSON: unexpected '\}' at line 2, column 6;/,
  );
});

Deno.test("spec: invalid JSON messages never echo the text (it may hold secrets)", () => {
  assertUsage(
    () => parseJsonText('{"command":"x","env":{"TOKEN":"s3cret"},}'),
    /^(?!.*s3cret)/,
  );
  assertUsage(() => parseJsonText('{"command":"x","env":{"TOKEN":"s3cret"} x'), /^(?!.*s3cret)/);
});

Deno.test("spec: invalid deeply nested JSON is located without overflowing the stack", () => {
  assertUsage(() => parseJsonText("[".repeat(200_000) + "x"), /unexpected 'x' at column 200001;/);
});
