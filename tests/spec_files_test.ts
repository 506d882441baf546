/**
 * Job files and job arguments (`lib/spec.ts`): a JSON array of specs (pretty-printed or not), one
 * spec pretty-printed over several lines, or NDJSON; errors name the line or the element and its
 * line, and never give shell advice for a file. Pure: no CLI, no store.
 */
import assert from "node:assert/strict";
import { assertUsage } from "./helpers.ts";
import { parseJobArgument, parseJobsText, type SpecContext } from "../lib/spec.ts";

const CTX: SpecContext = {
  config: { maxRetries: 5, jobTimeoutMs: 0 },
  cwd: "/home/ada/work",
  now: 1_800_000_000_000,
};

Deno.test("spec: a job file may be a JSON array over many lines", () => {
  const text = `[
  {
    "id": "a",
    "command": "echo 1"
  },
  { "id": "b", "command": "echo 2", "priority": 3 },
  {"command": "echo 3"}
]
`;
  const jobs = parseJobsText(text, CTX, "jobs.json");
  assert.deepEqual(jobs.map((j) => [j.command, j.priority]), [
    ["echo 1", 0],
    ["echo 2", 3],
    ["echo 3", 0],
  ]);
  assert.deepEqual(jobs.slice(0, 2).map((j) => j.id), ["a", "b"]);
});

Deno.test("spec: a bad element of a JSON array file is named with its line, without shell advice", () => {
  const text = '[\n  {"command": "a"},\n  {\n    "command": 5\n  }\n]';
  assertUsage(
    () => parseJobsText(text, CTX, "jobs.json"),
    /^jobs\.json element 2 \(line 3\): "command" must be a string, got number 5$/,
  );
  assertUsage(
    () => parseJobsText('[\n{"id":"x","command":"a"},\n\n{"id":"x","command":"b"}]', CTX, "f"),
    /^f element 2 \(line 4\): id "x" appears twice \(first as element 1\); ids are unique$/,
  );
  // Strings holding brackets, commas and escaped quotes do not confuse the line count.
  assertUsage(
    () => parseJobsText('[{"command":"a [\\"x\\", {"},\n"oops"]', CTX, "f"),
    /^f element 2 \(line 2\): a job spec must be a JSON object/,
  );
  assertUsage(
    () => parseJobsText(" [ ]\n", CTX, "f"),
    /^f is an empty array: it holds no job specs$/,
  );
});

Deno.test("spec: invalid JSON in a file names the line and says what a file holds, not quoting", () => {
  const cases: Array<[string, RegExp]> = [
    [
      '[\n  {"command": "a"},\n  {"command": "b",}\n]',
      /^jobs\.json is not valid JSON: expected a property name in double quotes, found '\}' at line 3, column 19; a file holds one JSON object per line \(NDJSON\) or a JSON array of them$/,
    ],
    [
      '{"command":"a"}\n{"command":"b",}\n',
      /^jobs\.json line 2 is not valid JSON: .* at column 16; a file holds one JSON object per line/,
    ],
    ['[{"command":"a"}', /^jobs\.json is not valid JSON: unexpected end of input/],
  ];
  for (const [text, pattern] of cases) {
    assertUsage(() => parseJobsText(text, CTX, "jobs.json"), pattern);
    assertUsage(() => parseJobsText(text, CTX, "jobs.json"), /^(?!.*(single quotes|shell))/);
  }
});

Deno.test("spec: a job file may be one JSON object pretty-printed over many lines", () => {
  const jobs = parseJobsText('{\n  "id": "one",\n  "command": "echo 1"\n}\n', CTX, "job.json");
  assert.deepEqual(jobs.map((j) => [j.id, j.command]), [["one", "echo 1"]]);
  assertUsage(
    () => parseJobsText('{\n  "id": "one",\n  "command": tru\n}\n', CTX, "job.json"),
    /^job\.json is not valid JSON: unexpected 't' at line 3, column 14; a file holds/,
  );
});

Deno.test("spec: NDJSON files still read one spec per line", () => {
  const jobs = parseJobsText('{"id":"a","command":"1"}\r\n\n{"id":"b","command":"2"}', CTX, "f");
  assert.deepEqual(jobs.map((j) => j.id), ["a", "b"]);
});

Deno.test("spec: a job argument may be a JSON object or an array of them", () => {
  assert.deepEqual(parseJobArgument('{"id":"a","command":"1"}', CTX).map((j) => j.id), ["a"]);
  assert.deepEqual(
    parseJobArgument('[{"id":"a","command":"1"},{"id":"b","command":"2"}]', CTX).map((j) => j.id),
    ["a", "b"],
  );
  assertUsage(
    () => parseJobArgument('[{"command":"1"},{"cmd":5}]', CTX),
    /^job spec element 2: "command" must be a string, got number 5$/,
  );
  assertUsage(() => parseJobArgument("[]", CTX), /^job spec is an empty array/);
});
