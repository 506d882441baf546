/** Real workers running real shell jobs against a real SQLite file. */
import assert from "node:assert/strict";
import { cliOk, jobState, openDb, startWorkers, tempDb, waitFor } from "./helpers.ts";

Deno.test("worker: enqueue → worker subprocess → completed, output in the log", async () => {
  await using t = await tempDb();
  await cliOk(t.db, [
    "enqueue",
    JSON.stringify({ id: "job1", command: "echo hello; echo oops >&2" }),
  ]);
  const w = startWorkers(t.db, 1);
  try {
    await waitFor(async () => (await jobState(t.db, "job1")) === "completed", {
      what: "job1 completed",
    });
  } finally {
    w.signal("SIGTERM");
  }
  const status = await w.done();
  assert.equal(status.code, 0, w.log());
  assert.equal(await cliOk(t.db, ["logs", "job1"]), "hello\noops\n");
  const s = openDb(t.db);
  try {
    const job = (await s.getJob("job1"))!;
    assert.equal(job.attempts, 1);
    assert.equal(job.exitCode, 0);
    const attempts = await s.listAttempts("job1");
    assert.equal(attempts.length, 1);
    assert.equal(attempts[0].outcome, "completed");
  } finally {
    await s.close();
  }
  assert.match(w.log(), /job\.completed .*job=job1/);
});

Deno.test("worker: a failing job is retried with backoff, then moves to the DLQ", async () => {
  await using t = await tempDb();
  await cliOk(t.db, ["config", "set", "backoff-base", "0.2"]);
  await cliOk(t.db, [
    "enqueue",
    JSON.stringify({ id: "bad", command: "echo nope >&2; exit 3", max_retries: 2 }),
  ]);
  const w = startWorkers(t.db, 1);
  try {
    await waitFor(async () => (await jobState(t.db, "bad")) === "dead", { what: "bad dead" });
  } finally {
    w.signal("SIGTERM");
  }
  assert.equal((await w.done()).code, 0);
  const s = openDb(t.db);
  try {
    const job = (await s.getJob("bad"))!;
    assert.equal(job.attempts, 3);
    assert.equal(job.exitCode, 3);
    assert.equal(job.error, "nope");
    const attempts = await s.listAttempts("bad");
    assert.deepEqual(attempts.map((a) => [a.attempt, a.outcome, a.exitCode]), [
      [1, "exited", 3],
      [2, "exited", 3],
      [3, "exited", 3],
    ]);
    // Backoff 0.2^1 s after attempt 1 and 0.2^2 s after attempt 2.
    const gap1 = attempts[1].startedAt - attempts[0].finishedAt;
    const gap2 = attempts[2].startedAt - attempts[1].finishedAt;
    assert.ok(gap1 >= 195, `first retry waited ${gap1}ms, expected ≥ 200ms`);
    assert.ok(gap2 >= 35, `second retry waited ${gap2}ms, expected ≥ 40ms`);
  } finally {
    await s.close();
  }
  assert.match(await cliOk(t.db, ["dlq", "list"]), /^bad\s+dead\s+3\/3/m);
});

Deno.test("worker: SIGTERM lets the running job finish, then the supervisor exits 0", async () => {
  await using t = await tempDb();
  await cliOk(t.db, ["enqueue", JSON.stringify({ id: "slow", command: "sleep 1; echo done" })]);
  await cliOk(t.db, [
    "enqueue",
    JSON.stringify({ id: "after", command: "echo never", delay: "1s" }),
  ]);
  const w = startWorkers(t.db, 1);
  await waitFor(async () => (await jobState(t.db, "slow")) === "processing", {
    what: "slow running",
  });
  w.signal("SIGTERM");
  const status = await w.done();
  assert.equal(status.code, 0, w.log());
  assert.equal(await jobState(t.db, "slow"), "completed");
  assert.equal(await jobState(t.db, "after"), "pending");
});
