/**
 * `cancel` on a running job and `remove ID…`, end to end: the real CLI against a temporary
 * database, with jobs put into their states through the store's own guarded calls. Stopping the
 * running command is the worker's part and is tested with the workers.
 */
import assert from "node:assert/strict";
import { assertOneLineError, cliOk, openDb, runCli, tempDb } from "./helpers.ts";
import { type JobState, transition } from "../lib/job.ts";

const WORKER = "testhost:1";

/** Enqueues one job per entry, in order, and moves it into its state. */
async function seed(db: string, jobs: Array<[string, JobState]>) {
  const s = await openDb(db);
  try {
    for (const [id, state] of jobs) {
      const now = Date.now();
      await s.enqueue([{
        id,
        command: `echo ${id}`,
        maxRetries: state === "dead" ? 0 : 2,
        // Pending jobs wait below the others, so that the seeded job is the one claimed.
        priority: state === "pending" ? 0 : 1,
        runAt: now,
        timeoutMs: 0,
        cwd: "/tmp",
        env: null,
      }], now);
      if (state === "pending") continue;
      if (state === "cancelled") {
        const j = (await s.getJob(id))!;
        assert.ok(await s.applyTransition(id, j, transition(j, { type: "cancel" }, now), now));
        continue;
      }
      const [j] = await s.claimNext(WORKER, now);
      assert.equal(j?.id, id);
      if (state === "processing") continue;
      const ok = state === "completed";
      const next = transition(
        j,
        ok ? { type: "succeed" } : { type: "fail", outcome: "exited" },
        now,
        // A failed job's retry is an hour away: it is never due while a slow machine seeds more.
        { backoffBaseSeconds: 3600, backoffMaxSeconds: 86_400, jitter: false },
      );
      assert.equal(next.state, state);
      const result = ok
        ? { outcome: "completed" as const, exitCode: 0, signal: null, error: null }
        : { outcome: "exited" as const, exitCode: 3, signal: null, error: "boom" };
      assert.ok(await s.finishAttempt(id, WORKER, next, result, now));
    }
  } finally {
    await s.close();
  }
}

async function read(db: string, id: string) {
  const s = await openDb(db);
  try {
    return { job: await s.getJob(id), attempts: await s.listAttempts(id) };
  } finally {
    await s.close();
  }
}

Deno.test("[cancel] a running job becomes cancelled, its run recorded with outcome cancelled", async () => {
  await using t = await tempDb();
  await seed(t.db, [["run", "processing"]]);
  const before = await read(t.db, "run");
  assert.equal(
    await cliOk(t.db, ["cancel", "run"]),
    "cancelled run (its worker stops the running command within a second)\n",
  );
  const { job, attempts } = await read(t.db, "run");
  assert.equal(job?.state, "cancelled");
  assert.equal(job?.attempts, 1, "the run counts as used");
  assert.ok(job?.finishedAt);
  assert.deepEqual(attempts.map((a) => [a.attempt, a.outcome, a.workerId, a.exitCode]), [
    [1, "cancelled", WORKER, null],
  ]);
  assert.equal(attempts[0].startedAt, before.job!.startedAt);
  const shown = JSON.parse(await cliOk(t.db, ["show", "run", "--json"]));
  assert.equal(shown.state, "cancelled");
  assert.deepEqual(shown.attempt_history.map((a: { outcome: string }) => a.outcome), ["cancelled"]);
  // Nothing more to cancel, and `retry` runs it again as attempt 2.
  assertOneLineError(await runCli(t.db, ["cancel", "run"]), 1, /is cancelled; nothing to do/);
  assert.equal(await cliOk(t.db, ["retry", "run"]), "queued again: run\n");
  assert.equal((await read(t.db, "run")).job?.attempts, 1);
});

Deno.test("[remove] deletes finished jobs with their output, reporting each id", async () => {
  await using t = await tempDb();
  await seed(t.db, [
    ["c", "completed"],
    ["d", "dead"],
    ["p", "processing"],
    ["f", "failed"],
    ["x", "cancelled"],
    ["a", "pending"],
  ]);
  // Output as workers leave it, for every job that ran.
  const s = await openDb(t.db);
  const keys: Record<string, string> = {};
  try {
    const ran = (await s.listJobs({ limit: 10 })).filter((j) => j.outputKey !== null);
    assert.deepEqual(ran.map((j) => j.id).sort(), ["c", "d", "f", "p"]);
    for (const j of ran) {
      keys[j.id] = j.outputKey!;
      const data = new TextEncoder().encode("output\n");
      await s.appendOutput(j.id, j.outputKey!, { offset: 0, data, capBytes: 1024 });
    }
  } finally {
    await s.close();
  }

  const r = await runCli(t.db, ["remove", "c", "a", "nope", "d", "p", "x"]);
  assert.equal(r.code, 1, r.stderr);
  assert.equal(r.stdout, "removed c, d, x\n");
  assert.equal(
    r.stderr,
    'queuectl: 3 of 6 failed: not found: "nope" (see queuectl list); still pending: "a"; ' +
      'still processing: "p" (only completed, dead or cancelled jobs can be removed; cancel the ' +
      "others first)\n",
  );
  const s2 = await openDb(t.db);
  try {
    const kept = async (id: string) => (await s2.readOutput(keys[id])).length > 0;
    assert.deepEqual(
      await Promise.all(["c", "d", "p", "f"].map(kept)),
      [false, false, true, true],
      "removed jobs' output goes with them",
    );
  } finally {
    await s2.close();
  }
  for (const id of ["c", "d", "x"]) {
    const { job, attempts } = await read(t.db, id);
    assert.equal(job, null, id);
    assert.deepEqual(attempts, [], id);
  }
  const status = JSON.parse(await cliOk(t.db, ["status", "--json"]));
  assert.equal(status.total, 3);
  assert.equal(status.completed + status.dead + status.cancelled, 0);
  // All of them fine: exit 0, and the ids are free again.
  await seed(t.db, [["c", "completed"]]);
  assert.equal(await cliOk(t.db, ["remove", "c"]), "removed c\n");
});
