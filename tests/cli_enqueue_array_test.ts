/**
 * `enqueue --file` with a JSON array of specs (a file whose first non-space character is `[`):
 * all stored in one transaction or none, errors naming the element; and the progress line a large
 * file shows on a terminal (never when stderr is piped).
 */
import assert from "node:assert/strict";
import {
  assertOneLineError,
  cliOk,
  dumpStore,
  has,
  onTerminal,
  openDb,
  runCli,
  tempDb,
} from "./helpers.ts";

async function storedIds(db: string): Promise<string[]> {
  const s = await openDb(db);
  try {
    return (await s.listJobs({ limit: 1000 })).map((j) => j.id);
  } finally {
    await s.close();
  }
}

Deno.test("[enqueue --file] should store every job of a pretty-printed JSON array, in order", async () => {
  await using t = await tempDb();
  const file = `${t.dir}/jobs.json`;
  const specs = [
    { id: "a", command: "echo a" },
    { id: "b", command: "echo b", priority: 3, max_retries: 0 },
    { command: "echo c", delay: "1h" },
  ];
  // Blank lines and spaces before the `[`: still an array.
  await Deno.writeTextFile(file, "\n  \n" + JSON.stringify(specs, null, 2) + "\n");
  const out = await cliOk(t.db, ["enqueue", "--file", file]);
  assert.equal(out, "enqueued 3 jobs\n");
  const ids = await storedIds(t.db);
  assert.equal(ids.length, 3);
  assert.deepEqual(ids.slice(0, 2), ["a", "b"]);
  const s = await openDb(t.db);
  try {
    const b = (await s.getJob("b"))!;
    assert.equal(b.priority, 3);
    assert.equal(b.maxRetries, 0);
    const c = (await s.getJob(ids[2]))!;
    assert.ok(c.runAt > Date.now() + 3_000_000, "the third job waits an hour");
  } finally {
    await s.close();
  }
});

Deno.test("[enqueue --file -] should read a JSON array from stdin, with --json ids", async () => {
  await using t = await tempDb();
  const stdin = JSON.stringify([{ id: "x", command: "true" }, { id: "y", command: "true" }]);
  const out = await cliOk(t.db, ["enqueue", "--file", "-", "--json"], { stdin });
  assert.deepEqual(JSON.parse(out).map((j: { id: string }) => j.id), ["x", "y"]);
});

for (
  const c of [
    {
      name: "a bad field in element 3",
      specs:
        '[\n  {"command": "true"},\n  {"command": "true"},\n  {"command": "true", "priority": "high"}\n]',
      error: /^queuectl: jobs\.json element 3 \(line 4\): "priority" must be an integer/,
    },
    {
      name: "an element that is not an object",
      specs: '[{"command": "true"}, "echo hi"]',
      error: /^queuectl: jobs\.json element 2: a job spec must be a JSON object/,
    },
    {
      name: "an id given twice",
      specs: '[{"id": "d", "command": "true"}, {"id": "d", "command": "false"}]',
      error: /^queuectl: jobs\.json element 2: id "d" appears twice \(first as element 1\)/,
    },
    {
      name: "an empty array",
      specs: "  []",
      error: /^queuectl: jobs\.json is an empty array: it holds no job specs$/,
    },
    {
      name: "an array cut short",
      specs: '[{"command": "true"},',
      error: /^queuectl: jobs\.json/,
    },
  ]
) {
  Deno.test(`[enqueue --file] should store nothing from an array with ${c.name}`, async () => {
    await using t = await tempDb();
    await cliOk(t.db, ["enqueue", '{"id":"before","command":"true"}']);
    const before = await dumpStore(t.db);
    await Deno.writeTextFile(`${t.dir}/jobs.json`, c.specs);
    const r = await runCli(t.db, ["enqueue", "--file", "jobs.json"], { cwd: t.dir });
    assertOneLineError(r, 2, c.error);
    assert.equal(await dumpStore(t.db), before);
  });
}

/** A JSON array of `n` jobs: over 1 MiB for n = 60,000. */
function bigArray(n: number): string {
  return JSON.stringify(Array.from({ length: n }, (_, i) => ({ command: `echo ${i}` })));
}

Deno.test("[enqueue --file] should show no progress when stderr is not a terminal", async () => {
  await using t = await tempDb();
  const file = `${t.dir}/big.json`;
  await Deno.writeTextFile(file, bigArray(60_000));
  assert.ok((await Deno.stat(file)).size > 1 << 20);
  const r = await runCli(t.db, ["enqueue", "--file", file]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, "enqueued 60000 jobs\n");
  assert.equal(r.stderr, "");
});

Deno.test({
  name: "[enqueue --file] should show its steps on a terminal for a large file, then clear them",
  ignore: !has("script"), // util-linux's script(1) gives the command a terminal
  fn: async () => {
    await using t = await tempDb();
    const file = `${t.dir}/big.json`;
    await Deno.writeTextFile(file, bigArray(60_000));
    const text = await onTerminal(t.db, ["enqueue", "--file", file]);
    // Each step redraws the line (carriage return, erase line); it is erased before the result.
    const steps = text.split("\r\x1b[K");
    assert.match(steps[1], /^enqueue .*big\.json \(1\.\d MB, [\d.]+s\): checking the jobs…$/);
    assert.match(steps[2], /^enqueue .*: storing 60000 jobs in one transaction…$/);
    assert.match(steps[3], /^enqueued 60000 jobs\r?\n$/);
    assert.equal(steps.length, 4, text);
    // A small file shows nothing, even on a terminal.
    await Deno.writeTextFile(`${t.dir}/small.json`, '[{"command":"true"},{"command":"true"}]');
    const quiet = await onTerminal(t.db, ["enqueue", "--file", `${t.dir}/small.json`]);
    assert.equal(quiet.replaceAll("\r", ""), "enqueued 2 jobs\n");
  },
});
