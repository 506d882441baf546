/**
 * Fault injection, bad input: thousands of generated job specs (random and mutated JSON, huge
 * strings, NUL bytes, deep nesting, wrong types, odd unicode, huge numbers) and a few hundred
 * generated command lines. Nothing may crash: every input is accepted or refused with a one-line
 * `queuectl: …` message and exit 1 or 2, never an internal error or a stack, and a refused input
 * leaves the database exactly as it was.
 *
 * Each spec is first validated in this process (cheap, so thousands of them); then the CLI gets
 * NDJSON files of many valid specs plus one bad line (the whole file must be refused), files of
 * valid but odd specs (stored exactly as given), and argv cases. A CLI call costs ~30-50 ms.
 * The seed is printed on failure; `QUEUECTL_SEED=<seed>` replays a run.
 */
import assert from "node:assert/strict";
import { loadConfig } from "../lib/settings.ts";
import { parseJobsText, type SpecContext } from "../lib/spec.ts";
import { UsageError } from "../lib/errors.ts";
import { isPostgresUrl } from "../lib/store/location.ts";
import { Prng, queryDb, seedFromEnv } from "./chaos.ts";
import {
  cliCommand,
  cliOk,
  type CliResult,
  dumpStore,
  openDb,
  tempDb,
  TEST_STORE,
} from "./helpers.ts";

// The spec parser and validator are the same code whatever the store, and the SQLite pass runs
// every file; on PostgreSQL (a CLI call costs ~3x more there) a third of the files still checks
// that a refused file leaves the queue unchanged and that odd specs are stored as given.
const ON_PG = TEST_STORE === "postgres";
const SPECS = 4000;
const BAD_FILES = ON_PG ? 70 : 200;
const ODD_FILES = ON_PG ? 10 : 20;
const ARGV_CASES = 300;

const UNICODE = [
  "é",
  "日本語",
  "🦕",
  "👩‍👩‍👧",
  "\u200b", // zero width space
  "\u202e", // right-to-left override
  "e\u0301", // combining accent
  "\ufeff", // byte order mark
  "\u2028", // line separator
  "\uffff",
  "\u{10ffff}",
  "Ω",
  "\t",
  "\\",
  '"',
  "'",
  "$(id)",
  "`id`",
  "%s%n",
  " ",
];
/** Control characters, lone surrogates and NUL: only inside JSON text, never in argv. */
const HOSTILE = ["\u0000", "\u0001", "\u001b[31m", "\u007f", "\ud800", "\udfff", "\r", "\n"];
const NUMBERS = [
  0,
  -0,
  1,
  -1,
  1.5,
  100,
  101,
  -1_000_000,
  1_000_001,
  2 ** 31,
  2 ** 53,
  2 ** 53 + 2,
  1e21,
  1e308,
  -1e308,
  1e-300,
  365 * 86400,
  365 * 86400 + 1,
];

class Gen {
  constructor(readonly rng: Prng) {}

  text(max = 12, hostile = true): string {
    let s = "";
    const n = this.rng.int(0, max);
    for (let i = 0; i < n; i++) {
      const r = this.rng.next();
      if (r < 0.5) s += String.fromCharCode(this.rng.int(0x20, 0x7e));
      else if (r < 0.85 || !hostile) s += this.rng.pick(UNICODE);
      else s += this.rng.pick(HOSTILE);
    }
    return s;
  }

  huge(): string {
    const n = this.rng.pick([1000, 131_071, 131_072, 131_073, 300_000]);
    return this.rng.pick(["x", "é", "🦕", "\u0000"]).repeat(n);
  }

  number(): number {
    return this.rng.chance(0.7)
      ? this.rng.pick(NUMBERS)
      : (this.rng.next() - 0.5) * 10 ** this.rng.int(0, 25);
  }

  /** Any JSON value, nested up to `depth`. */
  value(depth = 3): unknown {
    const r = this.rng.int(0, depth > 0 ? 8 : 5);
    switch (r) {
      case 0:
        return null;
      case 1:
        return this.rng.chance(0.5);
      case 2:
        return this.number();
      case 3:
        return this.text();
      case 4:
        return this.rng.chance(0.1) ? this.huge() : this.text(40);
      case 5:
        return this.rng.pick(["", " ", "0", "1s", "90s", "5m", "2h", "-1", "1e3", "NaN", "null"]);
      case 6:
      case 7:
        return Array.from({ length: this.rng.int(0, 4) }, () => this.value(depth - 1));
      default:
        return Object.fromEntries(
          Array.from({ length: this.rng.int(0, 4) }, () => [this.text(8), this.value(depth - 1)]),
        );
    }
  }

  /** A spec that should be accepted, with some odd but legal values. */
  valid(id: string, odd = false): Record<string, unknown> {
    const spec: Record<string, unknown> = {
      id,
      command: odd ? `echo ${JSON.stringify(this.text(30, false))}` : "true",
    };
    if (this.rng.chance(0.3)) spec.max_retries = this.rng.int(0, 100);
    if (this.rng.chance(0.3)) spec.priority = this.rng.int(-1_000_000, 1_000_000);
    if (this.rng.chance(0.2)) spec.delay = this.rng.pick(["1h", 3600, "90m", "1d"]);
    if (this.rng.chance(0.2)) spec.timeout = this.rng.pick([0, 1, "5m", "1h30m", 0.5]);
    if (odd && this.rng.chance(0.5)) {
      spec.env = Object.fromEntries(
        Array.from({ length: this.rng.int(1, 3) }, (_, i) => [`V_${i}`, this.text(20, false)]),
      );
    }
    if (this.rng.chance(0.1)) {
      spec.cmd = spec.command;
      delete spec.command;
    }
    return spec;
  }

  /** One line of NDJSON, most of them invalid in some way. */
  line(i: number): string {
    const base = this.valid(`f${i}`);
    switch (this.rng.int(0, 9)) {
      case 0: // random JSON value
        return JSON.stringify(this.value(4));
      case 1:
      case 2: { // one field given a random value
        const field = this.rng.pick([
          "id",
          "command",
          "cmd",
          "max_retries",
          "retries",
          "priority",
          "run_at",
          "delay",
          "timeout",
          "cwd",
          "env",
          this.text(6),
        ]);
        return JSON.stringify({ ...base, [field]: this.value(3) });
      }
      case 3: { // hostile or huge strings where strings belong
        const field = this.rng.pick(["id", "command", "cwd", "run_at", "delay", "timeout"]);
        const v = this.rng.chance(0.3) ? this.huge() : this.text(20) + this.rng.pick(HOSTILE);
        return JSON.stringify({ ...base, [field]: v });
      }
      case 4: { // huge or odd numbers
        const field = this.rng.pick(["max_retries", "priority", "delay", "timeout", "id"]);
        const n = this.rng.pick([
          "1e999",
          "-1e999",
          "1" + "0".repeat(400),
          "0.0000001",
          "-0",
          "1E2",
        ]);
        return JSON.stringify({ ...base, [field]: 0 }).replace(`"${field}":0`, `"${field}":${n}`);
      }
      case 5: { // deep nesting
        const n = this.rng.pick([100, 5000, 200_000]);
        const where = this.rng.pick(["env", "command", "top"]);
        const deep = "[".repeat(n) + "]".repeat(n);
        return where === "top" ? deep : JSON.stringify(base).replace(/}$/, `,"${where}":${deep}}`)
          .replace(`"${where}":"`, `"x_${where}":"`);
      }
      case 6: { // env with bad names or values
        const env: Record<string, unknown> = {};
        env[this.rng.chance(0.5) ? this.text(6) : "GOOD"] = this.rng.chance(0.5)
          ? this.value(2)
          : this.text(10);
        return JSON.stringify({ ...base, env });
      }
      case 7: { // text-level damage to a valid line
        const s = JSON.stringify(base);
        const at = this.rng.int(0, s.length);
        switch (this.rng.int(0, 5)) {
          case 0:
            return s.slice(0, at);
          case 1:
            return s.slice(0, at) + this.text(3) + s.slice(at);
          case 2:
            return s.slice(0, at) + s.slice(at + 1);
          case 3:
            return "\ufeff" + s;
          case 4:
            return s.replace(/}$/, ",}");
          default:
            return s + this.text(2);
        }
      }
      case 8: // duplicate and aliased keys
        return JSON.stringify(base).replace(/}$/, `,"command":"again","cmd":"x"}`);
      default: // not an object
        return this.rng.pick([
          "null",
          "[]",
          "123",
          '"echo hi"',
          "true",
          "{}",
          "[{}]",
          "NaN",
          "-",
          "{",
        ]);
    }
  }
}

function context(seed: number, what: string, r: CliResult) {
  return `seed ${seed} (QUEUECTL_SEED=${seed} to replay): ${what}\nexit ${r.code}\n` +
    `stdout: ${r.stdout.slice(0, 500)}\nstderr: ${r.stderr.slice(0, 2000)}`;
}

/**
 * Exit 0, 1 or 2; a refusal is one `queuectl: ` line and no stack.
 */
function assertNoCrash(seed: number, what: string, r: CliResult) {
  const ctx = context(seed, what, r);
  assert.ok([0, 1, 2].includes(r.code), ctx);
  assert.doesNotMatch(r.stderr, /internal error|^\s+at |Uncaught|panicked/m, ctx);
  if (r.code !== 0) assert.match(r.stderr, /^queuectl: [^\n]+\n$/, ctx);
}

/** Runs the CLI with raw bytes on stdin (NUL, invalid UTF-8) and a time limit. */
async function runRaw(
  db: string,
  args: string[],
  opts: { stdin?: Uint8Array; env?: Record<string, string> } = {},
): Promise<CliResult> {
  const [exec, ...pre] = cliCommand();
  const child = new Deno.Command(exec, {
    args: [...pre, ...args],
    env: { QUEUECTL_DB: db, NO_COLOR: "1", ...opts.env },
    stdin: opts.stdin ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
  try {
    if (opts.stdin) {
      const w = child.stdin.getWriter();
      await w.write(opts.stdin).catch(() => {}); // a refusal may close stdin early
      await w.close().catch(() => {});
    }
    const { code, signal, stdout, stderr } = await child.output();
    const dec = new TextDecoder();
    return {
      code: signal ? 128 + 9 : code,
      stdout: dec.decode(stdout),
      stderr: dec.decode(stderr) + (signal ? `\n(killed after 20s: ${signal})` : ""),
    };
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("fuzz: thousands of generated job specs → accepted, or refused with a message and the database unchanged", async () => {
  const seed = seedFromEnv();
  const rng = new Prng(seed);
  const gen = new Gen(rng);
  await using t = await tempDb();
  await cliOk(t.db, ["enqueue", '{"id":"existing","command":"true","delay":"1h"}']);
  const store = await openDb(t.db);
  const ctx: SpecContext = { config: await loadConfig(store), cwd: t.dir, now: Date.now() };
  await store.close();

  // 1. Every generated line through the validator: a NewJob or a UsageError, nothing else.
  const good: string[] = [];
  const bad: string[] = [];
  for (let i = 0; i < SPECS; i++) {
    const line = gen.line(i);
    // Blank text is refused alone ("holds no job specs") but skipped inside a file: neither.
    if (line.split("\n").every((l) => l.trim() === "")) continue;
    try {
      parseJobsText(line, ctx, "fuzz");
      good.push(line);
    } catch (e) {
      if (!(e instanceof UsageError)) {
        assert.fail(
          `seed ${seed}: spec ${JSON.stringify(line.slice(0, 300))} threw ${(e as Error).stack}`,
        );
      }
      bad.push(line);
    }
  }
  assert.ok(bad.length > SPECS / 2, `seed ${seed}: only ${bad.length} of ${SPECS} specs refused`);

  // 2. Files of valid specs with one bad line somewhere: the whole file is refused, nothing stored.
  // A file is bytes: a line refused only for a lone surrogate becomes valid once encoded (U+FFFD),
  // so the bad line is one that is still refused after that round trip.
  const asBytes = (line: string) => new TextDecoder().decode(new TextEncoder().encode(line));
  const badAsBytes = bad.filter((line) => {
    try {
      parseJobsText(asBytes(line), ctx, "fuzz");
      return false;
    } catch (e) {
      if (e instanceof UsageError) return true;
      throw e;
    }
  });
  assert.ok(badAsBytes.length > SPECS / 4, `seed ${seed}: only ${badAsBytes.length} bad as bytes`);
  const before = await dumpStore(t.db);
  let n = 0;
  for (let f = 0; f < BAD_FILES; f++) {
    const lines = Array.from(
      { length: rng.int(0, 40) },
      () => JSON.stringify(gen.valid(`ok${n++}`)),
    );
    const badLine = rng.pick(badAsBytes);
    lines.splice(rng.int(0, lines.length), 0, badLine);
    const text = lines.join(rng.chance(0.2) ? "\r\n" : "\n") + (rng.chance(0.5) ? "\n" : "");
    const bytes = new TextEncoder().encode(text);
    let r: CliResult;
    if (rng.chance(0.5)) {
      r = await runRaw(t.db, ["enqueue", "--file", "-"], { stdin: bytes });
    } else {
      await Deno.writeFile(`${t.dir}/batch.ndjson`, bytes);
      r = await runRaw(t.db, ["enqueue", "--file", `${t.dir}/batch.ndjson`]);
    }
    const what = `file ${f} with bad line ${JSON.stringify(badLine.slice(0, 300))}`;
    assertNoCrash(seed, what, r);
    assert.notEqual(r.code, 0, context(seed, what, r));
    assert.equal(await dumpStore(t.db), before, context(seed, `${what} changed the database`, r));
  }

  // 3. Raw bytes that are not UTF-8, and NUL bytes outside strings: refused the same way.
  for (const raw of [[0xff, 0xfe, 0x7b, 0x7d], [0x7b, 0x00, 0x7d], [0xc3, 0x28], [0x00], [0x0a]]) {
    const r = await runRaw(t.db, ["enqueue", "--file", "-"], { stdin: new Uint8Array(raw) });
    assertNoCrash(seed, `raw bytes ${raw}`, r);
    assert.notEqual(r.code, 0);
    assert.equal(await dumpStore(t.db), before);
  }

  // 4. Files of valid but odd specs: accepted, and stored exactly as given.
  for (let f = 0; f < ODD_FILES; f++) {
    const specs: string[] = [];
    while (specs.length < rng.int(1, 30)) {
      const line = JSON.stringify(gen.valid(`odd-${n++}-${gen.text(8, false)}`, true));
      try {
        parseJobsText(line, ctx, "odd");
        specs.push(line);
      } catch {
        // An odd value the validator refuses (say, a tab in the id): not for this part.
      }
    }
    const text = specs.join("\n");
    const expected = parseJobsText(text, ctx, "odd");
    const r = await runRaw(t.db, ["enqueue", "--json", "--file", "-"], {
      stdin: new TextEncoder().encode(text),
    });
    assertNoCrash(seed, `odd file ${f}`, r);
    assert.equal(r.code, 0, context(seed, `odd file ${f}`, r));
    const printed = (JSON.parse(r.stdout) as Array<{ id: string }>).map((j) => j.id);
    assert.deepEqual(printed, expected.map((j) => j.id), `seed ${seed}`);
    const store = await openDb(t.db);
    const stored = await Promise.all(expected.map((job) => store.getJob(job.id))).finally(() =>
      store.close()
    );
    for (const [i, job] of expected.entries()) {
      const row = stored[i];
      assert.ok(row, `seed ${seed}: ${JSON.stringify(job.id)} not stored as given`);
      assert.deepEqual(
        {
          command: row.command,
          env: row.env,
          priority: row.priority,
          max_retries: row.maxRetries,
          timeout_ms: row.timeoutMs,
        },
        {
          command: job.command,
          env: job.env,
          priority: job.priority,
          max_retries: job.maxRetries,
          timeout_ms: job.timeoutMs,
        },
        `seed ${seed}: ${JSON.stringify(job.id)}`,
      );
    }
  }
  // The SQLite file is sound after it all (PostgreSQL has no such check to ask for).
  if (!isPostgresUrl(t.db)) {
    assert.equal(queryDb(t.db, "PRAGMA integrity_check")[0].integrity_check, "ok");
  }
});

interface ArgvCase {
  args: string[];
  env?: Record<string, string>;
  /** An `enqueue` argument that is not a JSON job and not after `--`: it must never be stored. */
  notAJob?: boolean;
}

/**
 * Whether `text` is JSON meant as jobs: an object, or an array with an object in it (whose other
 * elements are then refused one by one, as a batch's are).
 */
function isJsonJob(text: string): boolean {
  try {
    const v = JSON.parse(text);
    const isObject = (x: unknown) => typeof x === "object" && x !== null && !Array.isArray(x);
    return isObject(v) || (Array.isArray(v) && v.some(isObject));
  } catch {
    return false;
  }
}

/** A random command line for any command but `worker start` (which would run until stopped). */
function argvCase(gen: Gen, ids: string[]): ArgvCase {
  const rng = gen.rng;
  const word = () =>
    rng.pick([
      gen.text(10, false),
      rng.pick(ids),
      "",
      "-",
      "--",
      "-1",
      "0",
      "1e309",
      "NaN",
      "--bogus",
      "-x",
      "--json",
      "--help",
      "9".repeat(30),
      "x".repeat(rng.pick([10, 5000, 30_000])),
    ]);
  const words = (k: number) => Array.from({ length: rng.int(0, k) }, word);
  const state = () =>
    rng.pick(["pending", "dead", "completed", "cancelled", "processing", "🦕", "", word()]);
  const duration = () => rng.pick(["0", "7d", "1s", "-5m", "1e309", "5x", "", "1h30m", word()]);
  const key = () =>
    rng.pick(["max-retries", "backoff_base", "LEASE_TIMEOUT", "jitter", "nope", word()]);
  const cases: Array<() => string[]> = [
    () => ["status", ...words(2)],
    () => ["list", "--state", state(), "--limit", word(), "--offset", word()],
    () => ["list", ...words(4)],
    () => ["show", word(), ...words(1)],
    () => ["logs", word()],
    () => ["logs", "--follow", gen.text(10, false) + "-missing"],
    () => ["dlq", "list", ...words(2)],
    () => ["dlq", "retry", ...(rng.chance(0.3) ? ["--all", ...words(1)] : words(3))],
    () => ["retry", ...words(3)],
    () => ["cancel", ...words(3)],
    () => ["purge", "--state", state(), "--older-than", duration()],
    () => ["purge", ...words(3)],
    () => ["config", "get", key(), ...words(1)],
    () => ["config", "set", key(), rng.pick([word(), "5", "0.5", "2s", "64KiB", "true", "-3"])],
    () => ["config", "unset", key()],
    () => ["config", rng.pick(["list", "show", word()]), ...words(1)],
    () => ["worker", rng.pick(["list", "stop", word()]), ...words(2)],
    () => ["worker", "stop", "--timeout", duration()],
    () => ["enqueue", JSON.stringify(gen.value(3))],
    () => ["enqueue", ...words(3), "--", ...words(3)],
    () => [
      "enqueue",
      ...rng.pick([
        ["--id", word()],
        ["--retries", word()],
        ["--priority", word()],
        [
          "--delay",
          duration(),
        ],
        ["--run-at", word()],
        ["--timeout", duration()],
        ["--env", word()],
        ["--cwd", word()],
      ]),
      "--",
      "true",
    ],
    () => ["enqueue", "--file", rng.pick([`${word()}.ndjson`, "/", "/dev/null"])],
    () => [word(), ...words(2)],
    () => words(3),
    () => ["--db", rng.pick(["", "   ", "postgres://x/y", "/"]), "status"],
    () => ["status", "--db", rng.pick(["", "mysql://h", "/", "sqlite:"])],
  ];
  // Text that is not a JSON job, as one argument without `--`: refused, never run as a command.
  const notJson = () =>
    rng.pick([
      gen.text(20, false),
      JSON.stringify(gen.value(2)),
      rng.pick(["not json at all", "null", '"x"', "42", "-", "jobs.ndjson", "echo hi", "{", "[]"]),
    ]);
  const notAJob = rng.chance(0.1);
  if (notAJob) {
    // Linux refuses one argument over 128 KiB: keep it under that, as below.
    const word = notJson().slice(0, 30_000);
    // A word starting with `-` is a flag to the parser (or --help): not this case.
    if (!word.startsWith("-") || word === "-") {
      return { args: ["enqueue", word], notAJob: !isJsonJob(word) };
    }
  }
  // Linux refuses one argument over 128 KiB: keep each under that (4 bytes a character at most).
  const args = rng.pick(cases)().map((a) => (a.length > 30_000 ? a.slice(0, 30_000) : a));
  const env = rng.chance(0.1)
    ? {
      [
        rng.pick([
          "QUEUECTL_MAX_RETRIES",
          "QUEUECTL_LEASE_TIMEOUT",
          "QUEUECTL_LOG_MAX_BYTES",
          "QUEUECTL_DB",
        ])
      ]: gen.text(6, false),
    }
    : undefined;
  return { args, env };
}

Deno.test("fuzz: a few hundred generated command lines → exit 0, 1 or 2 with a message; refused ones change nothing", async () => {
  const seed = seedFromEnv();
  const rng = new Prng(seed);
  const gen = new Gen(rng);
  await using t = await tempDb();
  const ids = ["a", "b", "c"];
  for (const id of ids) {
    await cliOk(t.db, ["enqueue", JSON.stringify({ id, command: "true", delay: "1h" })]);
  }
  let before = await dumpStore(t.db);
  const counts = { 0: 0, 1: 0, 2: 0 } as Record<number, number>;
  for (let i = 0; i < ARGV_CASES; i++) {
    const { args, env, notAJob } = argvCase(gen, ids);
    // A job spec of another test's database would not be ours to compare: QUEUECTL_DB points
    // elsewhere only for the commands that must refuse it.
    if (env?.QUEUECTL_DB !== undefined && env.QUEUECTL_DB.trim() !== "") continue;
    const what = `queuectl ${JSON.stringify(args.map((a) => a.slice(0, 100)))}` +
      (env ? ` with ${JSON.stringify(env)}` : "");
    const r = await runRaw(t.db, args, { env }).catch((e) => {
      throw new Error(`seed ${seed}: ${what}: ${e.message}`);
    });
    // A JSON spec can smuggle control characters in through escapes; they are shown escaped.
    assertNoCrash(seed, what, r);
    if (notAJob) {
      assert.equal(r.code, 2, context(seed, `${what} is not a JSON job and came without --`, r));
      assert.match(r.stderr, /a command after --/, context(seed, what, r));
    }
    counts[r.code]++;
    const after = await dumpStore(t.db);
    // retry, cancel and dlq retry report per id: those they did are done even when others fail.
    const partial = /^(retry|cancel|dlq)$/.test(args[0]) && r.stdout.trim() !== "";
    if (r.code !== 0 && !partial) {
      assert.equal(after, before, context(seed, `${what} changed the database`, r));
    }
    before = after;
  }
  // The generator must reach all three outcomes, or it tests too little.
  assert.ok(
    counts[0] > 10 && counts[1] > 10 && counts[2] > 10,
    `seed ${seed}: ${JSON.stringify(counts)}`,
  );
});

// A refusal may quote the user's text (an env name, an id, a file name): newlines and escape
// sequences in it are shown escaped, so the message stays one line and the terminal untouched.
Deno.test({
  name: "fuzz: refusals stay on one line and escape control characters in the user's text",
  async fn() {
    await using t = await tempDb();
    const cases: Array<{ args: string[]; stdin?: string }> = [
      { args: ["enqueue", '{"command":"x","env":{"A\\nB":"1"}}'] },
      { args: ["enqueue", '{"command":"x","bo\\ngus":1}'] },
      { args: ["enqueue", "--file", "-"], stdin: '{"command":"x","\\u001b[2J":1}\n' },
      { args: ["list", "--limit", "1\n2"] },
      { args: ["config", "set", "max-retries", "1\n2"] },
      { args: ["enqueue", "--env", "A\nB", "--", "true"] },
      { args: ["show", "no\nsuch"] },
      { args: ["cancel", "x\u001b[31mRED"] },
      { args: ["enqueue", "--file", "/no\nfile"] },
    ];
    for (const c of cases) {
      const r = await runRaw(t.db, c.args, {
        stdin: c.stdin === undefined ? undefined : new TextEncoder().encode(c.stdin),
      });
      const what = JSON.stringify(c);
      assert.notEqual(r.code, 0, what);
      assert.match(r.stderr, /^queuectl: [^\n]+\n$/, `${what}\n${r.stderr}`);
      // deno-lint-ignore no-control-regex -- looking for raw control characters is the point
      assert.doesNotMatch(r.stderr.slice(0, -1), /[\x00-\x1f\x7f]/, `${what}\n${r.stderr}`);
    }
  },
});

// JSON text may hold a lone surrogate ("\udbff"), which SQLite would store as U+FFFD: such a
// spec is refused, or (if accepted) stored exactly as printed, so its id still finds it.
/** Every job in the store, read through the Store interface. */
async function storedJobs(db: string) {
  const store = await openDb(db);
  try {
    return await store.listJobs({ limit: 1_000_000 });
  } finally {
    await store.close();
  }
}

Deno.test({
  name: "fuzz: a spec with lone surrogates is refused, or stored exactly as it was printed",
  async fn() {
    await using t = await tempDb();
    const spec = '{"id":"lone-\\udbff","command":"echo \\ud83e","env":{"V":"\\udfff"}}';
    const r = await runRaw(t.db, ["enqueue", "--json", "--file", "-"], {
      stdin: new TextEncoder().encode(spec + "\n"),
    });
    if (r.code !== 0) {
      assert.match(r.stderr, /^queuectl: [^\n]+\n$/, r.stderr);
      assert.deepEqual(await storedJobs(t.db), []);
      return;
    }
    const printed = (JSON.parse(r.stdout) as Array<{ id: string }>)[0].id;
    const rows = await storedJobs(t.db);
    assert.deepEqual(
      rows.map((row) => [row.id, row.command, row.env]),
      [[printed, "echo \ud83e", { V: "\udfff" }]],
    );
  },
});
