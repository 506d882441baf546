/**
 * Job dependencies end to end (`enqueue --after`, `"after"` in specs): the real CLI, real
 * workers and real shell jobs against a temporary store. Each job appends `start ID` and `end ID`
 * to one file, so the order the workers ran them in is read back from what they wrote.
 */
import assert from "node:assert/strict";
import { assertOneLineError, cliOk, openDb, runCli, startCli, tempDb, waitFor } from "./helpers.ts";

/** A command that records its start and end in `log`, running for `seconds` in between. */
function logged(id: string, log: string, seconds = 0.3): string {
  return `echo "start ${id}" >> '${log}'; sleep ${seconds}; echo "end ${id}" >> '${log}'`;
}

/** The states of `ids`, read from the store. */
async function states(db: string, ids: string[]): Promise<Record<string, string | undefined>> {
  const s = await openDb(db);
  try {
    return Object.fromEntries(
      await Promise.all(ids.map(async (id) => [id, (await s.getJob(id))?.state])),
    );
  } finally {
    await s.close();
  }
}

async function allIn(db: string, ids: string[], state: string): Promise<boolean> {
  return Object.values(await states(db, ids)).every((s) => s === state);
}

Deno.test("[deps] a diamond a → {b, c} → d runs in a valid order on 4 worker slots", async () => {
  await using t = await tempDb();
  const log = `${t.dir}/order.log`;
  await cliOk(t.db, ["enqueue", "--id", "a", "--", logged("a", log)]);
  // The rest in one batch that names jobs earlier in itself.
  const batch = [
    { id: "b", command: logged("b", log), after: ["a"] },
    { id: "c", command: logged("c", log, 0.6), after: ["a"] },
    { id: "d", command: logged("d", log, 0), after: ["b", "c"] },
  ].map((j) => JSON.stringify(j)).join("\n");
  assert.equal(
    await cliOk(t.db, ["enqueue", "--file", "-"], { stdin: batch }),
    "enqueued 3 jobs\n",
  );
  const status = JSON.parse(await cliOk(t.db, ["status", "--json"]));
  assert.equal(status.pending, 4);
  assert.equal(status.waiting, 3);
  const listed = JSON.parse(await cliOk(t.db, ["list", "--json"]));
  assert.deepEqual(
    Object.fromEntries(listed.map((j: { id: string; waiting_on: number }) => [j.id, j.waiting_on])),
    { a: 0, b: 1, c: 1, d: 2 },
  );
  assert.match(await cliOk(t.db, ["list"]), /^d\s+pending\s+\S+\s+\S+\s+waiting on 2 /m);

  const w = startCli(t.db, ["worker", "start", "--count", "2", "--concurrency", "2"]);
  try {
    await waitFor(() => allIn(t.db, ["a", "b", "c", "d"], "completed"), {
      what: "the diamond completed",
    });
  } finally {
    w.signal("SIGTERM");
  }
  assert.equal((await w.done()).code, 0, w.log());

  const lines = (await Deno.readTextFile(log)).trim().split("\n");
  const at = (line: string) => {
    const i = lines.indexOf(line);
    assert.ok(i >= 0, `${line} in:\n${lines.join("\n")}`);
    return i;
  };
  assert.equal(lines.length, 8, lines.join("\n"));
  assert.ok(at("end a") < at("start b") && at("end a") < at("start c"), lines.join("\n"));
  assert.ok(at("end b") < at("start d") && at("end c") < at("start d"), lines.join("\n"));

  const shown = JSON.parse(await cliOk(t.db, ["show", "d", "--json"]));
  assert.deepEqual(shown.after, [{ id: "b", state: "completed" }, { id: "c", state: "completed" }]);
  assert.match(await cliOk(t.db, ["show", "a"]), /^needed by: b \(completed\), c \(completed\)$/m);
});

Deno.test("[deps] a death takes the chain to dead; dlq retry brings it back and it runs", async () => {
  await using t = await tempDb();
  const flag = `${t.dir}/ok`;
  await cliOk(t.db, ["enqueue", "--id", "a", "--retries", "0", "--", `test -e '${flag}'`]);
  assert.equal(
    await cliOk(t.db, ["enqueue", "--id", "b", "--after", "a", "--", "echo b"]),
    "enqueued b (waiting on 1: a)\n",
  );
  await cliOk(t.db, ["enqueue", "--id", "c", "--after", "b", "--", "echo c"]);
  const w = startCli(t.db, ["worker", "start", "--count", "1"]);
  try {
    await waitFor(() => allIn(t.db, ["a", "b", "c"], "dead"), { what: "the chain dead" });
    const dlq = await cliOk(t.db, ["dlq", "list"]);
    assert.match(dlq, /^b\s+dead\b.*dependency a died$/m);
    assert.match(dlq, /^c\s+dead\b.*dependency b died$/m);
    // Not b alone: a is still dead.
    assertOneLineError(
      await runCli(t.db, ["retry", "b"]),
      1,
      /job "b" waits for "a", which is dead; retry "a" instead/,
    );
    // A job enqueued after a dead job goes straight into dead.
    assert.match(
      await cliOk(t.db, ["enqueue", "--id", "late", "--after", "a", "--", "echo late"]),
      /^enqueued late straight into dead \(dependency a died\)/,
    );
    await Deno.writeTextFile(flag, "");
    assert.equal(await cliOk(t.db, ["dlq", "retry", "--all"]), "moved to pending: 4 jobs\n");
    await waitFor(() => allIn(t.db, ["a", "b", "c", "late"], "completed"), {
      what: "the chain completed after the retry",
    });
  } finally {
    w.signal("SIGTERM");
  }
  assert.equal((await w.done()).code, 0, w.log());
});

Deno.test("[deps] a cancelled dependency takes its dependant to dead", async () => {
  await using t = await tempDb();
  await cliOk(t.db, ["enqueue", "--id", "a", "--delay", "1h", "--", "true"]);
  await cliOk(t.db, ["enqueue", "--id", "b", "--after", "a", "--", "true"]);
  await cliOk(t.db, ["cancel", "a"]);
  const b = JSON.parse(await cliOk(t.db, ["show", "b", "--json"]));
  assert.equal(b.state, "dead");
  assert.equal(b.error, "dependency a was cancelled");
  assert.equal(await cliOk(t.db, ["retry", "a"]), "queued again: a\n");
  assert.equal(JSON.parse(await cliOk(t.db, ["show", "b", "--json"])).state, "pending");
});

Deno.test('[deps] bad --after and "after" are refused in one line, exit 2, nothing stored', async () => {
  await using t = await tempDb();
  await cliOk(t.db, ["enqueue", "--id", "a", "--", "true"]);
  const cases: Array<[string[], RegExp, string?]> = [
    [
      ["enqueue", "--after", "nope", "--", "true"],
      /^queuectl: --after names "nope", which is not a job/,
    ],
    [["enqueue", "--after", "a,,b", "--", "true"], /--after takes job ids separated by commas/],
    [["enqueue", '{"id":"s","command":"true","after":["s"]}'], /a job cannot wait for itself/],
    [["enqueue", '{"command":"true","after":"a"}'], /"after" must be an array of job ids/],
    [
      ["enqueue", "--file", "-"],
      /job "y" waits for "zz", which does not exist; .*nothing from this batch was stored/,
      '{"id":"x","command":"true","after":["a"]}\n{"id":"y","command":"true","after":["x","zz"]}\n',
    ],
    [
      ["enqueue", "--file", "-"],
      /job "p" waits for "q", which comes later in the same batch/,
      '[{"id":"p","command":"true","after":["q"]},{"id":"q","command":"true","after":["p"]}]',
    ],
  ];
  for (const [args, pattern, stdin] of cases) {
    assertOneLineError(await runCli(t.db, args, { stdin }), 2, pattern);
  }
  const ids = JSON.parse(await cliOk(t.db, ["list", "--json"])).map((j: { id: string }) => j.id);
  assert.deepEqual(ids, ["a"]);
});
