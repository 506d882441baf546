/**
 * Unique jobs end to end: `enqueue --unique KEY` / `"unique_key"` against a real store, with real
 * `queuectl` processes racing, a real worker finishing the holders, and the retries that would
 * take a key another job holds.
 */
import assert from "node:assert/strict";
import {
  allDone,
  assertOneLineError,
  cliOk,
  jobState,
  runCli,
  startWorkers,
  tempDb,
  waitFor,
} from "./helpers.ts";

interface Printed {
  id: string;
  run_at: string;
  unique_key?: string;
  existing?: boolean;
  state?: string;
}

async function listJson(db: string): Promise<Array<{ id: string; unique_key: string | null }>> {
  return JSON.parse(await cliOk(db, ["list", "--json"]));
}

Deno.test("[enqueue --unique] should print the holder's id while a job with the key waits", async () => {
  await using t = await tempDb();
  const first = await cliOk(t.db, ["enqueue", "--unique", "sync", "--", "echo one"]);
  const id = /^enqueued (\S+)\n$/.exec(first)?.[1];
  assert.ok(id, first);
  const again = await runCli(t.db, ["enqueue", "--unique", "sync", "--", "echo two"]);
  assert.equal(again.code, 0, again.stderr);
  assert.equal(again.stdout, `job ${id} already queued with unique key sync (state pending)\n`);
  assert.equal(again.stderr, "");

  // The JSON spec form (the direct path) and --json: the holder's id, "existing": true.
  const json: Printed[] = JSON.parse(
    await cliOk(t.db, ["enqueue", "--json", '{"command":"echo three","unique_key":"sync"}']),
  );
  assert.equal(json.length, 1);
  assert.deepEqual({ ...json[0], run_at: "" }, {
    id,
    run_at: "",
    queue: "default",
    unique_key: "sync",
    existing: true,
    state: "pending",
  });
  // A new key: "existing": false with its own id.
  const fresh: Printed[] = JSON.parse(
    await cliOk(t.db, ["enqueue", "--json", "--unique", "other", "--", "true"]),
  );
  assert.equal(fresh[0].existing, false);
  assert.notEqual(fresh[0].id, id);

  // A scheduled holder says when it runs.
  await cliOk(t.db, [
    "enqueue",
    "--id",
    "later",
    "--unique",
    "nightly",
    "--delay",
    "1h",
    "--",
    "true",
  ]);
  assert.match(
    await cliOk(t.db, ["enqueue", "--unique", "nightly", "--", "true"]),
    /^job later already queued with unique key nightly \(state pending, runs in (59m\d+s|1h)\)\n$/,
  );

  const jobs = await listJson(t.db);
  assert.deepEqual(
    jobs.map((j) => [j.id, j.unique_key]).sort(),
    [
      [id, "sync"],
      [fresh[0].id, "other"],
      ["later", "nightly"],
    ].sort(),
  );
  assert.match(await cliOk(t.db, ["show", id]), /^unique: +sync$/m);
  assert.equal(JSON.parse(await cliOk(t.db, ["show", id, "--json"])).unique_key, "sync");
});

Deno.test("[enqueue --unique] 8 processes racing on one key should store one job", async () => {
  await using t = await tempDb();
  await cliOk(t.db, ["enqueue", "--", "true"]); // the store exists before the race
  const runs = await allDone(
    Array.from(
      { length: 8 },
      (_, i) => runCli(t.db, ["enqueue", "--json", "--unique", "race", "--", `echo racer ${i}`]),
    ),
  );
  const printed = runs.map((r) => {
    assert.equal(r.code, 0, r.stderr);
    return (JSON.parse(r.stdout) as Printed[])[0];
  });
  const ids = new Set(printed.map((p) => p.id));
  assert.equal(ids.size, 1, `all print the same id: ${JSON.stringify(printed)}`);
  assert.equal(printed.filter((p) => p.existing === false).length, 1, "one of them stored it");
  const raced = (await listJson(t.db)).filter((j) => j.unique_key === "race");
  assert.deepEqual(raced.map((j) => j.id), [...ids]);
});

Deno.test("[enqueue --file] a repeated key in a batch should resolve to the first job", async () => {
  await using t = await tempDb();
  const file = `${t.dir}/jobs.ndjson`;
  await Deno.writeTextFile(
    file,
    [
      { id: "a", command: "echo a", unique_key: "k" },
      { id: "plain", command: "echo p" },
      { id: "b", command: "echo b", unique_key: "k" },
    ].map((s) => JSON.stringify(s)).join("\n") + "\n",
  );
  assert.equal(
    await cliOk(t.db, ["enqueue", "--file", file]),
    "enqueued 2 jobs; 1 already queued under their unique key (--json lists them)\n",
  );
  assert.deepEqual((await listJson(t.db)).map((j) => j.id).sort(), ["a", "plain"]);
  // Given ids are never reused, a held key or not: the same file again is refused whole.
  const r = await runCli(t.db, ["enqueue", "--json", "--file", file]);
  assertOneLineError(r, 1, /job "(a|plain)" already exists; .*nothing from this batch was stored/);
  const lines = [{ command: "x", unique_key: "k" }, { command: "y", unique_key: "k" }];
  const printed: Printed[] = JSON.parse(
    await cliOk(t.db, ["enqueue", "--json", JSON.stringify(lines)]),
  );
  assert.deepEqual(printed.map((p) => [p.id, p.existing]), [["a", true], ["a", true]]);
  assert.equal((await listJson(t.db)).length, 2, "nothing more was stored");
});

Deno.test("[retry] should refuse a job whose unique key another job now holds", async () => {
  await using t = await tempDb();
  await cliOk(t.db, ["enqueue", "--id", "ok", "--unique", "done-key", "--", "true"]);
  await cliOk(t.db, [
    "enqueue",
    "--id",
    "bad",
    "--unique",
    "dead-key",
    "--retries",
    "0",
    "--",
    "exit 3",
  ]);
  const w = startWorkers(t.db, 1);
  try {
    await waitFor(
      async () =>
        (await jobState(t.db, "ok")) === "completed" && (await jobState(t.db, "bad")) === "dead",
      { what: "ok completed, bad dead" },
    );
  } finally {
    w.signal("SIGTERM");
  }
  assert.equal((await w.done()).code, 0, w.log());

  // Completed and dead jobs free their keys.
  assert.match(
    await cliOk(t.db, ["enqueue", "--unique", "done-key", "--", "true"]),
    /^enqueued (?!ok\n)\S+\n$/,
  );
  assert.equal(
    await cliOk(t.db, ["enqueue", "--id", "bad2", "--unique", "dead-key", "--", "true"]),
    "enqueued bad2\n",
  );

  for (const args of [["dlq", "retry", "bad"], ["retry", "bad"], ["dlq", "retry", "--all"]]) {
    const r = await runCli(t.db, args);
    assertOneLineError(
      r,
      1,
      /job "bad" was not queued again: its unique key "dead-key" is held by job "bad2" \(pending\); wait for that job to finish or cancel it, then retry$/,
    );
    assert.equal(await jobState(t.db, "bad"), "dead", args.join(" "));
  }
  assert.doesNotMatch(
    await cliOk(t.db, ["show", "bad"]),
    /retried/,
    "no retry mark was recorded",
  );

  // A cancelled job likewise; once the holder is cancelled, the retry goes through.
  assert.equal(await cliOk(t.db, ["cancel", "bad2"]), "cancelled bad2\n");
  assert.equal(await cliOk(t.db, ["dlq", "retry", "bad"]), "moved to pending: bad\n");
  const r = await runCli(t.db, ["retry", "bad2"]);
  assertOneLineError(r, 1, /job "bad2" was not queued again: .* held by job "bad" \(pending\)/);
  assert.equal(await jobState(t.db, "bad2"), "cancelled");
});

Deno.test("[enqueue --unique] bad keys should be refused in one line, nothing stored", async () => {
  await using t = await tempDb();
  await cliOk(t.db, ["enqueue", "--id", "keep", "--", "true"]);
  const file = `${t.dir}/jobs.ndjson`;
  await Deno.writeTextFile(
    file,
    '{"command":"a","unique_key":"ok"}\n{"command":"b","unique_key":["x"]}\n',
  );
  const cases: Array<[string[], RegExp]> = [
    [["enqueue", "--unique", "", "--", "true"], /--unique must be 1 to 200 printable characters/],
    [["enqueue", "--unique", "   ", "--", "true"], /--unique must be 1 to 200 printable/],
    [
      ["enqueue", "--unique", "k".repeat(201), "--", "true"],
      /--unique must be 1 to 200 printable characters/,
    ],
    [
      ["enqueue", '{"command":"true","unique_key":5}'],
      /^queuectl: "unique_key" must be a string, got number 5$/,
    ],
    [
      ["enqueue", '{"command":"true","unique_key":"a\\u0007b"}'],
      /"unique_key" must be 1 to 200 printable characters; it holds the control character U\+0007/,
    ],
    [["enqueue", "--file", file], /line 2: "unique_key" must be a string, got an array/],
    [
      ["enqueue", "--unique", "k", '{"command":"true"}'],
      /--unique cannot be combined with a JSON spec/,
    ],
  ];
  for (const [args, pattern] of cases) {
    assertOneLineError(await runCli(t.db, args), 2, pattern);
  }
  assert.deepEqual((await listJson(t.db)).map((j) => j.id), ["keep"]);
});
