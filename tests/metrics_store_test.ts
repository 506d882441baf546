/**
 * The Store methods behind metrics and the dashboard (`metricTotals`, `finishedPerMinute`,
 * `pageJobs`, `readyLatencyMs`), on both stores: a real SQLite file and, where one answers, the
 * real PostgreSQL server. Then `queuectl metrics` on a queue drained by real workers, checked by
 * `promtool check metrics`.
 */
import assert from "node:assert/strict";
import { eventForOutcome, type JobState, transition } from "../lib/job.ts";
import { SqliteStore } from "../lib/store/sqlite.ts";
import { PostgresStore } from "../lib/store/postgres.ts";
import { METRIC_BUCKETS_SECONDS, type NewJob, type Store } from "../lib/store/store.ts";
import { assertPromtoolClean, cliOk, runCli, startWorkers, tempDb, waitFor } from "./helpers.ts";
import { pgTestServer } from "./pg_helpers.ts";

const T0 = 1_800_000_000_000;
const POLICY = { backoffBaseSeconds: 2, backoffMaxSeconds: 3600, jitter: false };

function job(id: string, fields: Partial<NewJob> = {}): NewJob {
  return {
    id,
    command: `echo ${id}`,
    maxRetries: 0,
    priority: 0,
    runAt: T0,
    timeoutMs: 0,
    cwd: "/",
    env: null,
    ...fields,
  };
}

/** Index of the histogram bucket that holds `seconds`. */
const bucket = (seconds: number) => {
  const i = METRIC_BUCKETS_SECONDS.findIndex((le) => seconds <= le);
  return i === -1 ? METRIC_BUCKETS_SECONDS.length : i;
};

/** Ends the run of `id` held by `worker` with `outcome`, as a worker does. */
async function finish(
  store: Store,
  id: string,
  worker: string,
  outcome: "completed" | "exited",
  now: number,
) {
  const j = (await store.getJob(id))!;
  const next = transition(j, eventForOutcome(outcome), now, POLICY);
  const done = await store.finishAttempt(id, worker, next, {
    outcome,
    exitCode: outcome === "completed" ? 0 : 3,
    signal: null,
    error: outcome === "completed" ? null : "exited 3",
  }, now);
  assert.ok(done, `finish ${id}`);
}

type Open = () => Promise<Store>;

function storeTests(name: string, open: Open) {
  Deno.test(`metrics(${name}): totals count attempts, durations and waits; purge keeps them`, async () => {
    const store = await open();
    try {
      await store.enqueue(
        [job("ok"), job("bad"), job("busy"), job("later", { runAt: T0 + 9e6 })],
        T0 - 1000,
      );
      // Claimed 2 s after their run time (which is after their enqueue): a 2 s wait each.
      const claimed = await store.claimNext("w1", T0 + 2000, 3);
      assert.equal(claimed.length, 3);
      await finish(store, "ok", "w1", "completed", T0 + 2300); // 0.3 s
      await finish(store, "bad", "w1", "exited", T0 + 2000 + 45_000); // 45 s, then dead
      let t = await store.metricTotals();
      assert.equal(t.enqueuedTotal, 4);
      assert.deepEqual(t.attemptsByOutcome, { completed: 1, exited: 1 });
      const durations = new Array(METRIC_BUCKETS_SECONDS.length + 1).fill(0);
      durations[bucket(0.3)]++;
      durations[bucket(45)]++;
      assert.deepEqual(t.attemptDuration.buckets, durations);
      assert.ok(
        Math.abs(t.attemptDuration.sumSeconds - 45.3) < 1e-6,
        `${t.attemptDuration.sumSeconds}`,
      );
      // ok (completed), bad (dead), busy (processing): 2 s each; "later" never ran.
      const waits = new Array(METRIC_BUCKETS_SECONDS.length + 1).fill(0);
      waits[bucket(2)] = 3;
      assert.deepEqual(t.queueWait.buckets, waits);
      assert.ok(Math.abs(t.queueWait.sumSeconds - 6) < 1e-6, `${t.queueWait.sumSeconds}`);

      // Deleting jobs never lowers a total: purge and remove keep what the rows said.
      assert.equal((await store.purge("completed", T0 + 10_000_000)).length, 1);
      assert.ok(await store.removeJob("bad", ["dead"]));
      assert.equal(await store.countJobs(), 2);
      const after = await store.metricTotals();
      assert.deepEqual(after, t, "totals after purge and remove");

      // New work adds to them.
      await finish(store, "busy", "w1", "completed", T0 + 2000 + 20);
      t = await store.metricTotals();
      assert.deepEqual(t.attemptsByOutcome, { completed: 2, exited: 1 });
      assert.equal(t.enqueuedTotal, 4);
    } finally {
      await store.close();
    }
  });

  Deno.test(`metrics(${name}): finished jobs per minute, by their state now`, async () => {
    const store = await open();
    try {
      await store.enqueue(["a", "b", "c", "d"].map((id) => job(id)), T0);
      await store.claimNext("w1", T0, 4);
      const minute = Math.floor(T0 / 60000) * 60000;
      await finish(store, "a", "w1", "completed", minute + 61_000);
      await finish(store, "b", "w1", "completed", minute + 62_000);
      await finish(store, "c", "w1", "exited", minute + 125_000);
      await finish(store, "d", "w1", "completed", minute - 1); // before `since`
      assert.deepEqual(await store.finishedPerMinute(minute), [
        { minute: minute + 60_000, state: "completed", n: 2 },
        { minute: minute + 120_000, state: "dead", n: 1 },
      ]);
    } finally {
      await store.close();
    }
  });

  Deno.test(`metrics(${name}): pageJobs pages newest first by seq, by state and search`, async () => {
    const store = await open();
    try {
      await store.enqueue(
        Array.from({ length: 25 }, (_, i) => job(`j${i}`, { command: `run ${i}_x%` })),
        T0,
      );
      await store.claimNext("w1", T0, 5); // j0..j4 processing
      const first = await store.pageJobs({ limit: 10 });
      assert.deepEqual(first.map((j) => j.id), Array.from({ length: 10 }, (_, i) => `j${24 - i}`));
      const second = await store.pageJobs({ limit: 10, beforeSeq: first.at(-1)!.seq });
      assert.deepEqual(second.map((j) => j.id)[0], "j14");
      const processing = await store.pageJobs({ limit: 10, state: "processing" as JobState });
      assert.deepEqual(processing.map((j) => j.id), ["j4", "j3", "j2", "j1", "j0"]);
      assert.deepEqual((await store.pageJobs({ limit: 10, search: "J17" })).map((j) => j.id), [
        "j17",
      ]);
      // The user's own % and _ are literal.
      assert.deepEqual((await store.pageJobs({ limit: 10, search: "7_x%" })).map((j) => j.id), [
        "j17",
        "j7",
      ]);
      assert.deepEqual(await store.pageJobs({ limit: 10, search: "1%x" }), []);
    } finally {
      await store.close();
    }
  });

  Deno.test(`metrics(${name}): pageJobs sorts oldest first; countPage counts what the pages list`, async () => {
    const store = await open();
    try {
      await store.enqueue(
        Array.from(
          { length: 12 },
          (_, i) => job(`k${i}`, { command: `run ${i % 2 ? "odd" : "even"}` }),
        ),
        T0,
      );
      await store.claimNext("w1", T0, 3); // k0..k2 processing
      const first = await store.pageJobs({ limit: 5, sort: "oldest" });
      assert.deepEqual(first.map((j) => j.id), ["k0", "k1", "k2", "k3", "k4"]);
      const next = await store.pageJobs({ limit: 5, sort: "oldest", afterSeq: first.at(-1)!.seq });
      assert.deepEqual(next.map((j) => j.id), ["k5", "k6", "k7", "k8", "k9"]);
      const both = await store.pageJobs({
        limit: 10,
        states: ["pending", "cancelled"],
        search: "ODD",
        afterSeq: first[2].seq,
        beforeSeq: next[4].seq,
      });
      assert.deepEqual(both.map((j) => j.id), ["k7", "k5", "k3"]);
      assert.equal(await store.countPage({}), 12);
      assert.equal(await store.countPage({ states: ["pending", "processing"] }), 12);
      assert.equal(await store.countPage({ state: "processing", states: ["pending"] }), 0);
      assert.equal(await store.countPage({ states: [] }), 0);
      assert.equal(await store.countPage({ state: "processing" }), 3);
      assert.equal(await store.countPage({ search: "odd" }), 6);
      assert.equal(await store.countPage({ search: "odd", states: ["processing"] }), 1);
      assert.equal(await store.countPage({ search: "odd", afterSeq: next[4].seq }), 1);
    } finally {
      await store.close();
    }
  });

  Deno.test(`metrics(${name}): every claim's wait is observed, retries too; counts never drop`, async () => {
    const store = await open();
    try {
      await store.enqueue([job("flaky", { maxRetries: 1 })], T0 - 1000);
      assert.equal((await store.claimNext("w1", T0 + 500, 1)).length, 1); // waited 0.5 s
      await finish(store, "flaky", "w1", "exited", T0 + 600); // failed, retry after a backoff
      const before = await store.metricTotals();
      const retryAt = (await store.getJob("flaky"))!.runAt;
      assert.equal((await store.claimNext("w1", retryAt + 3000, 1)).length, 1); // waited 3 s
      await finish(store, "flaky", "w1", "completed", retryAt + 3100);
      const t = await store.metricTotals();
      const waits = new Array(METRIC_BUCKETS_SECONDS.length + 1).fill(0);
      waits[bucket(0.5)]++;
      waits[bucket(3)]++;
      assert.deepEqual(t.queueWait.buckets, waits);
      assert.ok(Math.abs(t.queueWait.sumSeconds - 3.5) < 1e-6, `${t.queueWait.sumSeconds}`);
      assert.deepEqual(t.attemptsByOutcome, { exited: 1, completed: 1 });
      for (const [i, n] of before.queueWait.buckets.entries()) {
        assert.ok(t.queueWait.buckets[i] >= n, `bucket ${i} dropped`);
      }
    } finally {
      await store.close();
    }
  });

  Deno.test(`metrics(${name}): scheduled counts and ready latency span every priority`, async () => {
    const store = await open();
    try {
      await store.enqueue([
        job("hi", { priority: 5, runAt: T0 - 1000 }),
        job("lo", { priority: -3, runAt: T0 - 9000 }),
        job("mid", { priority: 1, runAt: T0 + 5000 }),
        job("mid2", { priority: 1, runAt: T0 + 7000 }),
        job("lo2", { priority: -3, runAt: T0 + 1 }),
      ], T0);
      assert.equal(await store.readyLatencyMs(T0), 9000);
      assert.equal((await store.counts(T0)).scheduled, 3);
      assert.equal((await store.counts(T0 + 6000)).scheduled, 1);
      await store.claimNext("w1", T0, 2); // hi, then lo
      assert.equal(await store.readyLatencyMs(T0), 0);
      assert.equal(await store.readyLatencyMs(T0 + 10), 9);
    } finally {
      await store.close();
    }
  });

  Deno.test(`metrics(${name}): readyLatencyMs is the wait of the oldest ready job`, async () => {
    const store = await open();
    try {
      assert.equal(await store.readyLatencyMs(T0), 0);
      await store.enqueue([job("a", { runAt: T0 - 5000 }), job("b", { runAt: T0 + 5000 })], T0);
      assert.equal(await store.readyLatencyMs(T0), 5000);
      assert.equal(await store.readyLatencyMs(T0 + 6000), 11000);
    } finally {
      await store.close();
    }
  });
}

const dirs: string[] = [];
storeTests("sqlite", async () => {
  const dir = await Deno.makeTempDir({ prefix: "queuectl-metrics-" });
  dirs.push(dir);
  return SqliteStore.open(`${dir}/q.db`);
});

const server = await pgTestServer();
if (server) {
  storeTests("postgres", () => PostgresStore.open(server.freshSchemaUrl()));
} else {
  Deno.test({ name: "metrics(postgres): skipped, no PostgreSQL server answers", fn() {} });
}

Deno.test("metrics: queuectl metrics after real workers drained a queue passes promtool", async () => {
  await using tmp = await tempDb();
  const ndjson = Array.from(
    { length: 6 },
    (_, i) => JSON.stringify({ id: `m${i}`, command: i < 4 ? "true" : "exit 3", max_retries: 0 }),
  ).join("\n");
  await cliOk(tmp.db, ["enqueue", "--file", "-"], { stdin: ndjson + "\n" });
  const w = startWorkers(tmp.db, 2);
  try {
    await waitFor(
      async () =>
        (await cliOk(tmp.db, ["metrics"])).includes(
          'queuectl_jobs{state="dead",queue="default"} 2',
        ),
      {
        what: "the queue to drain",
      },
    );
  } finally {
    w.signal("SIGTERM");
    await w.done();
  }
  await cliOk(tmp.db, ["purge", "--state", "completed", "--yes"]);
  const text = await cliOk(tmp.db, ["metrics"]);
  for (
    const line of [
      'queuectl_jobs{state="completed",queue="default"} 0',
      'queuectl_jobs{state="dead",queue="default"} 2',
      "queuectl_jobs_enqueued_total 6",
      'queuectl_attempts_total{outcome="completed"} 4',
      'queuectl_attempts_total{outcome="exited"} 2',
      'queuectl_attempt_duration_seconds_bucket{le="+Inf"} 6',
      "queuectl_attempt_duration_seconds_count 6",
      // The dead jobs' claims are still there; the purged ones' are kept.
      "queuectl_queue_wait_seconds_count 6",
    ]
  ) {
    assert.ok(text.split("\n").includes(line), `missing "${line}" in:\n${text}`);
  }
  await assertPromtoolClean(text);

  const missing = await runCli(`${tmp.dir}/none.db`, ["metrics"]);
  assert.equal(missing.code, 1);
  assert.equal(missing.stdout, "");
});

Deno.test("metrics: cleanup", async () => {
  for (const d of dirs) await Deno.remove(d, { recursive: true }).catch(() => {});
  await server?.dispose();
});
