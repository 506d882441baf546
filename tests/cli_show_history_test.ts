/**
 * `show` tells a job's whole story: "attempt 2 of 4" (max_retries counts retries after the first
 * attempt), and attempt numbers that go on after `dlq retry` / `retry`, with a marker line where
 * the fresh retry budget began.
 */
import assert from "node:assert/strict";
import { cliOk, openDb, tempDb } from "./helpers.ts";
import { transition } from "../lib/job.ts";
import type { Store } from "../lib/store/store.ts";

const WORKER = "testhost:1";

/** Claims the job (the only ready one) and fails its run. */
async function runAndFail(s: Store, id: string, now: number) {
  const [j] = await s.claimNext(WORKER, now);
  assert.equal(j?.id, id);
  const next = transition(j, { type: "fail", outcome: "exited" }, now);
  const result = {
    outcome: "exited" as const,
    exitCode: 3,
    signal: null,
    error: `run ${j.attempts}`,
  };
  assert.ok(await s.finishAttempt(id, WORKER, next, result, now));
}

async function withDb<T>(db: string, fn: (s: Store) => Promise<T>): Promise<T> {
  const s = await openDb(db);
  try {
    return await fn(s);
  } finally {
    await s.close();
  }
}

Deno.test("[show] should say attempt N of 1 + max_retries", async () => {
  await using t = await tempDb();
  await cliOk(t.db, ["enqueue", '{"id":"j","command":"exit 3","max_retries":3}']);
  assert.match(await cliOk(t.db, ["show", "j"]), /^attempt:\s+none yet; at most 4$/m);
  await withDb(t.db, async (s) => {
    await runAndFail(s, "j", Date.now());
    await runAndFail(s, "j", Date.now() + 60_000); // past the 2 s backoff
  });
  assert.match(await cliOk(t.db, ["show", "j"]), /^attempt:\s+2 of 4$/m);
});

Deno.test("[show] attempt numbers should go on after dlq retry, with a marker line", async () => {
  await using t = await tempDb();
  // The first two runs in the past (past each other's 2 s backoff), so history stays in order.
  const start = Date.now() - 120_000;
  await withDb(t.db, async (s) => {
    await s.enqueue([{
      id: "j",
      command: "exit 3",
      maxRetries: 1,
      priority: 0,
      runAt: start,
      timeoutMs: 0,
      cwd: "/tmp",
      env: null,
    }], start);
    await runAndFail(s, "j", start);
    await runAndFail(s, "j", start + 60_000);
  });
  assert.equal((await withDb(t.db, (s) => s.getJob("j")))?.state, "dead");
  assert.equal(await cliOk(t.db, ["dlq", "retry", "j"]), "moved to pending: j\n");
  assert.match(
    await cliOk(t.db, ["show", "j"]),
    /^attempt:\s+none yet since the retry; at most 2$/m,
  );
  await withDb(t.db, (s) => runAndFail(s, "j", Date.now()));

  const text = await cliOk(t.db, ["show", "j"]);
  assert.match(text, /^state:\s+failed$/m);
  assert.match(text, /^attempt:\s+1 of 2 since the retry \(3 runs in all\)$/m);
  const history = text.slice(text.indexOf("\n#")).trim().split("\n");
  assert.equal(history.length, 5, text);
  assert.deepEqual(history.slice(1).map((l) => l.split(/\s+/).slice(0, 2).join(" ")), [
    "1 exited",
    "2 exited",
    "-- retried",
    "3 exited",
  ]);
  assert.match(
    history[3],
    /^-- retried from the DLQ at \d{4}-\d\d-\d\dT\S+Z \(.+ ago\): a fresh budget of 2 attempts --$/,
  );
  const json = JSON.parse(await cliOk(t.db, ["show", "j", "--json"]));
  assert.equal(json.attempts, 3);
  assert.deepEqual(json.attempt_history.map((a: { attempt: number }) => a.attempt), [1, 2, 3]);
  assert.deepEqual(
    json.retry_history.map((r: Record<string, unknown>) => [r.after_attempt, r.from_state]),
    [
      [2, "dead"],
    ],
  );
  // The list shows the budget in use, not the runs in all.
  assert.match(await cliOk(t.db, ["list"]), /^j\s+failed\s+1\/2\s/m);
});
