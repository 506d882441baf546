/**
 * Job specs (`lib/spec.ts`) at their limits: ids that would hide or reorder text, an `env` too
 * large to exec, a `timeout` over the cap, `run_at` without an offset, and unbiased generated
 * ids. Pure: no CLI, no store.
 */
import assert from "node:assert/strict";
import { assertUsage } from "./helpers.ts";
import { MAX_JOB_TIMEOUT_MS } from "../lib/config.ts";
import {
  generateId,
  MAX_ENV_VAR_BYTES,
  MAX_EXEC_BYTES,
  type SpecContext,
  toNewJob,
} from "../lib/spec.ts";

const NOW = 1_800_000_000_000;
const CTX: SpecContext = {
  config: { maxRetries: 5, jobTimeoutMs: 0 },
  cwd: "/home/ada/work",
  now: NOW,
};

const rejects = (raw: unknown, pattern: RegExp) => assertUsage(() => toNewJob(raw, CTX), pattern);

Deno.test("spec: an id with an invisible format character (category Cf) is refused, naming it", () => {
  const cases: Array<[string, string, number]> = [
    ["invoice\u202Egpj.exe", "202E", 8], // right-to-left override
    ["a\u200Bb", "200B", 2], // zero width space
    ["\uFEFFjob", "FEFF", 1], // byte order mark
    ["x\u2066y\u2069", "2066", 2], // left-to-right isolate … pop directional isolate
    ["x\u2069", "2069", 2],
    ["soft\u00ADhyphen", "00AD", 5],
    ["tag\u{E0041}", "E0041", 4],
    ["a\u200Db", "200D", 2], // a zero width joiner between letters joins nothing
    ["🦕\u200D", "200D", 2],
  ];
  for (const [id, code, at] of cases) {
    rejects(
      { command: "x", id },
      new RegExp(
        `^"id" must be 1 to 200 printable characters; it holds the invisible format character ` +
          `U\\+${code} at position ${at}, which can hide or reorder text where ids are shown$`,
      ),
    );
  }
  // The message names the character and never prints it.
  assertUsage(() => toNewJob({ command: "x", id: "a\u202Eb" }, CTX), /^[^\u202E]*$/);
});

Deno.test("spec: line and paragraph separators in an id are refused", () => {
  for (const [id, code] of [["a\u2028b", "2028"], ["a\u2029b", "2029"]]) {
    rejects({ command: "x", id }, new RegExp(`it holds the control character U\\+${code}`));
  }
});

Deno.test("spec: emoji joined by U+200D, accents and other scripts are kept in an id", () => {
  for (const id of ["👩‍💻-deploy", "👩‍👩‍👧", "👩🏽‍💻", "❤️‍🔥", "café", "e\u0301", "日本語", "Ω-1"]) {
    assert.equal(toNewJob({ command: "x", id }, CTX).id, id);
  }
});

Deno.test("spec: one env variable over MAX_ENV_VAR_BYTES is refused, naming it and the bound", () => {
  // NAME=VALUE: 2 + 131,069 = 131,071 bytes, the most exec takes.
  const fits = "x".repeat(MAX_ENV_VAR_BYTES - 2);
  assert.equal(toNewJob({ command: "x", env: { A: fits } }, CTX).env!.A, fits);
  rejects(
    { command: "x", env: { A: fits + "x" } },
    /^"env\.A" is 131072 bytes as NAME=VALUE; one variable may hold at most 131071 bytes \(128 KiB\)/,
  );
  // Counted in UTF-8 bytes, not characters: 65,535 × 2 + "A=" = 131,072.
  rejects({ command: "x", env: { A: "é".repeat(65_535) } }, /^"env\.A" is 131072 bytes/);
});

Deno.test("spec: a command and env over MAX_EXEC_BYTES together are refused, naming the bound", () => {
  const value = "x".repeat(100_000);
  const env = (n: number) =>
    Object.fromEntries(Array.from({ length: n }, (_, i) => [`V${i}`, value]));
  // 5 × (2 + 1 + 100,000 + 1) + 2 = 500,022 bytes: under 524,288.
  assert.equal(Object.keys(toNewJob({ command: "x", env: env(5) }, CTX).env!).length, 5);
  rejects(
    { command: "x", env: env(6) },
    new RegExp(
      `^"command" and "env" hold 600026 bytes together; a job may pass at most ${MAX_EXEC_BYTES} ` +
        `bytes \\(512 KiB\\) to exec`,
    ),
  );
  // The command counts too.
  rejects({ command: "y".repeat(100_000), env: env(5) }, /^"command" and "env" hold 600021 bytes/);
});

Deno.test("spec: a timeout over the job-timeout cap is refused, naming the cap", () => {
  assert.equal(toNewJob({ command: "x", timeout: "30d" }, CTX).timeoutMs, MAX_JOB_TIMEOUT_MS);
  assert.equal(toNewJob({ command: "x", timeout: 30 * 86_400 }, CTX).timeoutMs, 2_592_000_000);
  for (const [v, got] of [["30d1s", 'string "30d1s"'], [30 * 86_400 + 1, "number 2592001"]]) {
    rejects(
      { command: "x", timeout: v },
      new RegExp(
        `^"timeout" may be at most 30d, the cap of config job-timeout too; got ${got}$`,
      ),
    );
  }
  rejects({ command: "x", timeout: "365d" }, /^"timeout" may be at most 30d/);
});

Deno.test("spec: run_at without a UTC offset is refused, saying to add Z or an offset", () => {
  for (const v of ["2026-12-01T09:30:00", "2026-12-01 09:30", "2026-12-01T09:30", "2026-12-01"]) {
    rejects(
      { command: "x", run_at: v },
      new RegExp(
        `^"run_at" ${
          RegExp.escape(JSON.stringify(v))
        } has no UTC offset; add Z for UTC or the offset of the time zone you mean, like ` +
          `"2026-12-01T09:30:00Z" or "2026-12-01T09:30:00\\+02:00"$`,
      ),
    );
  }
});

Deno.test("spec: run_at with an offset is read as that instant, in every ISO 8601 spelling", () => {
  const at = Date.UTC(2026, 11, 1, 8, 30);
  for (
    const v of [
      "2026-12-01T08:30:00Z",
      "2026-12-01T08:30Z",
      "2026-12-01 08:30:00Z",
      "2026-12-01t08:30:00z",
      "2026-12-01T09:30:00+01:00",
      "2026-12-01T09:30:00+0100",
      "2026-12-01T03:30:00-05:00",
      "2026-12-01T08:30:00.000Z",
      " 2026-12-01T08:30:00Z ",
      "2026-12-01T09:30:00+01:00[Europe/Paris]",
    ]
  ) {
    assert.equal(toNewJob({ command: "x", run_at: v }, CTX).runAt, at, v);
  }
});

Deno.test("spec: run_at that is not on the calendar or the clock is refused", () => {
  for (
    const v of ["2026-02-30T10:00:00Z", "2026-13-01T00:00Z", "2026-12-01T24:00:00Z", "tomorrow"]
  ) {
    rejects({ command: "x", run_at: v }, /^"run_at" must be an ISO 8601 instant like /);
  }
});

Deno.test("spec: generated ids draw every character of [0-9a-z] equally often", () => {
  // 120,000 characters: 3,333 expected of each, σ ≈ 57. `byte % 36` would give 0-3 each
  // 8/256 of the draws (3,750), the others 7/256 (3,281): far outside ±400.
  const counts = new Map<string, number>();
  for (let i = 0; i < 10_000; i++) {
    for (const c of generateId()) counts.set(c, (counts.get(c) ?? 0) + 1);
  }
  assert.equal(counts.size, 36);
  for (const [c, n] of counts) {
    assert.ok(Math.abs(n - 120_000 / 36) < 400, `"${c}" drawn ${n} times of 120000`);
  }
});
