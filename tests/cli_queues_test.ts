/**
 * Named queues end to end: `enqueue --queue`, `list --queue`, `show`, `status`, `queue
 * list|pause|resume|set`, `worker start --queue`, and `metrics`, through the real CLI with real
 * workers and real shell jobs, on the store QUEUECTL_TEST_STORE names.
 */
import assert from "node:assert/strict";
import {
  assertOneLineError,
  assertPromtoolClean,
  cliOk,
  openDb,
  runCli,
  startCli,
  tempDb,
  waitFor,
} from "./helpers.ts";

/** `queue list --json`, by queue name. */
async function queues(db: string): Promise<Record<string, Record<string, unknown>>> {
  const rows = JSON.parse(await cliOk(db, ["queue", "list", "--json"])) as Array<
    Record<string, unknown>
  >;
  return Object.fromEntries(rows.map((r) => [r.name as string, r]));
}

async function jobQueue(db: string, id: string): Promise<string | undefined> {
  const s = await openDb(db);
  try {
    return (await s.getJob(id))?.queue;
  } finally {
    await s.close();
  }
}

Deno.test("[queues] a job's queue is kept and shown by list, show, status and --json", async () => {
  await using t = await tempDb();
  const printed = JSON.parse(
    await cliOk(t.db, ["enqueue", "--json", "--id", "m1", "--queue", "emails", "--", "true"]),
  );
  assert.deepEqual(printed.map((p: { queue: string }) => p.queue), ["emails"]);
  await cliOk(t.db, ["enqueue", '{"id":"r1","command":"true","queue":"reports"}']);
  await cliOk(t.db, ["enqueue", "--file", "-"], {
    stdin: '{"id":"r2","command":"true","queue":"reports"}\n{"id":"d1","command":"true"}\n',
  });
  assert.equal(await jobQueue(t.db, "m1"), "emails");
  assert.equal(await jobQueue(t.db, "r2"), "reports");
  assert.equal(await jobQueue(t.db, "d1"), "default");

  const listed = JSON.parse(await cliOk(t.db, ["list", "--queue", "reports", "--json"]));
  assert.deepEqual(listed.map((j: { id: string }) => j.id), ["r2", "r1"]);
  assert.ok(listed.every((j: { queue: string }) => j.queue === "reports"));
  const table = await cliOk(t.db, ["list"]);
  assert.match(table.split("\n")[0], /\bQUEUE\b/);
  assert.match(table, /m1 +pending +emails/);
  assert.match(await cliOk(t.db, ["list", "--queue", "nosuch"]), /^no jobs in queue nosuch$/m);
  assert.match(await cliOk(t.db, ["show", "m1"]), /^queue: +emails$/m);

  const status = await cliOk(t.db, ["status"]);
  assert.match(status, /^QUEUE +PENDING/m);
  assert.match(status, /^reports +2 +0/m);
  const json = JSON.parse(await cliOk(t.db, ["status", "--json"]));
  assert.equal(json.pending, 4);
  assert.deepEqual(
    json.queues.map((q: { name: string; pending: number }) => [q.name, q.pending]),
    [["default", 1], ["emails", 1], ["reports", 2]],
  );
});

Deno.test("[queues] one default queue: status and list look as before", async () => {
  await using t = await tempDb();
  await cliOk(t.db, ["enqueue", "--id", "a", "--", "true"]);
  const status = await cliOk(t.db, ["status"]);
  assert.doesNotMatch(status, /QUEUE/);
  assert.doesNotMatch((await cliOk(t.db, ["list"])).split("\n")[0], /QUEUE/);
  const json = JSON.parse(await cliOk(t.db, ["status", "--json"]));
  assert.deepEqual(json.queues.map((q: { name: string }) => q.name), ["default"]);
});

Deno.test("[queues] bad queue names and flags are one-line usage errors that store nothing", async () => {
  await using t = await tempDb();
  await cliOk(t.db, ["enqueue", "--id", "keep", "--", "true"]);
  const cases: Array<[string[], RegExp]> = [
    [["enqueue", "--queue", "a b", "--", "true"], /--queue must be 1 to 64 letters/],
    [["enqueue", "--queue", "", "--", "true"], /--queue must be 1 to 64/],
    [["enqueue", "--queue", "x".repeat(65), "--", "true"], /--queue must be 1 to 64/],
    [["enqueue", '{"command":"true","queue":5}'], /"queue" must be 1 to 64 .* got number 5/],
    [["enqueue", '{"command":"true","queue":"ü"}'], /"queue" must be/],
    [["enqueue", "--queue", "a", '{"command":"true"}'], /--queue cannot be combined/],
    [["queue", "pause", "a/b"], /the queue name must be 1 to 64/],
    [["queue", "pause"], /missing|expected/i],
    [["queue", "set", "q"], /give --concurrency N/],
    [["queue", "set", "q", "--concurrency", "-1"], /--concurrency must be an integer between 0/],
    [["queue", "set", "q", "--concurrency", "two"], /--concurrency must be an integer/],
    [["list", "--queue", "a,b"], /--queue must be 1 to 64/],
    [["worker", "start", "--queue", ","], /--queue needs a queue name/],
    [["worker", "start", "--queue", "ok,not ok"], /--queue must be 1 to 64/],
  ];
  for (const [args, pattern] of cases) {
    assertOneLineError(await runCli(t.db, args), 2, pattern);
  }
  assert.deepEqual(Object.keys(await queues(t.db)), ["default"]);
  const s = await openDb(t.db);
  try {
    assert.equal(await s.countJobs(), 1);
  } finally {
    await s.close();
  }
});

Deno.test("[queues] a paused queue's jobs wait while other queues run; resume runs them", async () => {
  await using t = await tempDb();
  // Paused before it has any job.
  assert.match(await cliOk(t.db, ["queue", "pause", "emails"]), /paused queue emails/);
  await cliOk(t.db, ["enqueue", "--id", "m1", "--queue", "emails", "--", "true"]);
  await cliOk(t.db, ["enqueue", "--id", "d1", "--", "true"]);
  const w = startCli(t.db, ["worker", "start", "--count", "2"]);
  try {
    await waitFor(async () => (await queues(t.db)).default.completed === 1, { what: "d1" });
    // Several idle claims later, the paused job is still there.
    await cliOk(t.db, ["enqueue", "--id", "d2", "--", "true"]);
    await waitFor(async () => (await queues(t.db)).default.completed === 2, { what: "d2" });
    const q = await queues(t.db);
    assert.equal(q.emails.pending, 1);
    assert.equal(q.emails.paused, true);
    assert.match(await cliOk(t.db, ["status"]), /^emails +1 +0 .* yes$/m);
    await cliOk(t.db, ["queue", "resume", "emails"]);
    await waitFor(async () => (await queues(t.db)).emails.completed === 1, { what: "m1" });
  } finally {
    w.signal("SIGTERM");
    await w.done();
  }
});

Deno.test("[queues] worker start --queue claims only from its queues", async () => {
  await using t = await tempDb();
  for (const [id, queue] of [["a1", "a"], ["b1", "b"], ["c1", "c"], ["d1", "default"]]) {
    await cliOk(t.db, ["enqueue", "--id", id, "--queue", queue, "--", "true"]);
  }
  const w = startCli(t.db, ["worker", "start", "--count", "2", "--queue", "a,c"]);
  try {
    await waitFor(async () => {
      const q = await queues(t.db);
      return q.a.completed === 1 && q.c.completed === 1;
    }, { what: "a1 and c1" });
    await cliOk(t.db, ["enqueue", "--id", "a2", "--queue", "a", "--", "true"]);
    await waitFor(async () => (await queues(t.db)).a.completed === 2, { what: "a2" });
    const q = await queues(t.db);
    assert.equal(q.b.pending, 1);
    assert.equal(q.default.pending, 1);
  } finally {
    w.signal("SIGTERM");
    await w.done();
  }
});

Deno.test("[queues] 4 workers, queue set q --concurrency 2: never more than 2 of its jobs at once", async () => {
  await using t = await tempDb();
  assert.match(
    await cliOk(t.db, ["queue", "set", "q", "--concurrency", "2"]),
    /at most 2 of its jobs run at once/,
  );
  // Each job holds a directory while it runs and notes how many are held; a third job running
  // beside two others would note 3.
  const n = 10;
  for (let i = 0; i < n; i++) {
    const cmd = `mkdir '${t.dir}/run.${i}' && ls -d '${t.dir}'/run.* | wc -l >> '${t.dir}/seen'` +
      ` && sleep 0.4 && rmdir '${t.dir}/run.${i}'`;
    await cliOk(t.db, ["enqueue", "--id", `q${i}`, "--queue", "q", "--", cmd]);
  }
  // Jobs of another queue take the free workers meanwhile.
  for (let i = 0; i < 4; i++) {
    await cliOk(t.db, ["enqueue", "--id", `d${i}`, "--", "sleep 0.4"]);
  }
  const w = startCli(t.db, ["worker", "start", "--count", "4"]);
  let most = 0;
  try {
    await waitFor(async () => {
      const q = await queues(t.db);
      most = Math.max(most, q.q.processing as number);
      return q.q.completed === n && q.default.completed === 4;
    }, { what: "every job", timeoutMs: 60_000 });
  } finally {
    w.signal("SIGTERM");
    await w.done();
  }
  const seen = (await Deno.readTextFile(`${t.dir}/seen`)).trim().split(/\s+/).map(Number);
  assert.equal(seen.length, n);
  assert.ok(Math.max(...seen) <= 2, `jobs of q saw ${seen} of them running at once`);
  assert.ok(most <= 2, `queue list showed ${most} of q processing`);
  assert.equal(Math.max(...seen), 2, `the limit allows 2 at once; saw ${seen}`);
});

Deno.test("[queues] metrics label job counts by queue and pass promtool", async () => {
  await using t = await tempDb();
  await cliOk(t.db, ["enqueue", "--id", "m1", "--queue", "emails", "--", "true"]);
  await cliOk(t.db, ["enqueue", "--id", "d1", "--", "true"]);
  await cliOk(t.db, ["queue", "pause", "batch"]);
  const text = await cliOk(t.db, ["metrics"]);
  for (
    const line of [
      'queuectl_jobs{state="pending",queue="emails"} 1',
      'queuectl_jobs{state="pending",queue="default"} 1',
      'queuectl_jobs{state="pending",queue="batch"} 0',
    ]
  ) {
    assert.ok(text.split("\n").includes(line), `missing "${line}" in:\n${text}`);
  }
  await assertPromtoolClean(text);
});
