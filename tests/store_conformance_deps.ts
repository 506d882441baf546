/**
 * Store conformance for job dependencies (`after`): every store must pass these. A job waits until
 * every job it names has completed; a death or cancel takes its waiting dependants to `dead`
 * down the chain, in the same transaction; a retry of that job brings them back.
 */
import assert from "node:assert/strict";
import { UsageError } from "../lib/errors.ts";
import { type BackoffPolicy, eventForOutcome, transition } from "../lib/job.ts";
import type { AttemptResult, Job, RunEnd, Store } from "../lib/store/store.ts";
import { conformanceTest, type DatabaseFactory, newJob } from "./store_conformance.ts";

const T0 = 1_800_000_000_000;
const POLICY: BackoffPolicy = { backoffBaseSeconds: 2, backoffMaxSeconds: 3600, jitter: false };
const OK: AttemptResult = { outcome: "completed", exitCode: 0, signal: null, error: null };
const EXIT3: AttemptResult = { outcome: "exited", exitCode: 3, signal: null, error: "boom" };

/** Claims everything ready at `now` for `worker`, returning the ids in claim order. */
async function claimIds(store: Store, worker: string, now: number, limit = 10): Promise<string[]> {
  return (await store.claimNext(worker, now, limit)).map((j) => j.id);
}

/** The transition a worker computes for `result`. */
function end(job: Job, result: AttemptResult, now: number): RunEnd {
  return {
    jobId: job.id,
    next: transition(job, eventForOutcome(result.outcome), now, POLICY),
    result,
  };
}

/** Claims `id` (it must be the only ready job) and ends its run with `result`. */
async function run(store: Store, id: string, now: number, result: AttemptResult = OK) {
  const [job] = await store.claimNext("w1", now, 1);
  assert.equal(job?.id, id, `expected ${id} to be the ready job`);
  const e = end(job, result, now);
  const saved = await store.finishAttempt(id, "w1", e.next, result, now);
  assert.ok(saved);
  return saved;
}

/** Applies a person's `retry` or `cancel` as the CLI does; returns the store's answer. */
async function apply(store: Store, id: string, type: "retry" | "cancel", now: number) {
  const job = (await store.getJob(id))!;
  return await store.applyTransition(id, job, transition(job, { type }, now), now);
}

async function stateOf(store: Store, id: string) {
  const j = (await store.getJob(id))!;
  return { state: j.state, waitingOn: j.waitingOn, error: j.error };
}

export function depsConformance(name: string, newDatabase: DatabaseFactory): void {
  const storeTest = conformanceTest(`store(${name}) deps`, newDatabase);

  storeTest(
    "a chain a → b → c runs in order, each only once the one before completed",
    async ({ store }) => {
      await store.enqueue([newJob("a")], T0);
      await store.enqueue([newJob("b", { after: ["a"] }), newJob("c", { after: ["b"] })], T0);
      assert.deepEqual(await stateOf(store, "b"), { state: "pending", waitingOn: 1, error: null });
      const counts = await store.counts(T0);
      assert.equal(counts.waiting, 2);
      assert.equal(counts.scheduled, 0, "waiting jobs are not also scheduled");
      assert.equal(await store.nextRunAt(), T0, "only a is due");
      assert.deepEqual(await claimIds(store, "w1", T0 + 1), ["a"], "b and c wait");
      assert.deepEqual(await claimIds(store, "w2", T0 + 1), []);
      const [a] = await store.listJobs({ states: ["processing"], limit: 5 });
      await store.finishAttempt("a", "w1", end(a, OK, T0 + 2).next, OK, T0 + 2);
      assert.equal((await store.getJob("b"))!.waitingOn, 0);
      assert.equal((await store.counts(T0 + 2)).waiting, 1);
      await run(store, "b", T0 + 3);
      await run(store, "c", T0 + 4);
      assert.deepEqual(await claimIds(store, "w1", T0 + 5), []);
      const deps = await store.dependencies("b");
      assert.deepEqual(deps, {
        after: [{ id: "a", state: "completed" }],
        dependants: [{ id: "c", state: "completed" }],
      });
    },
  );

  storeTest(
    "a completed dependency counts as done at enqueue; unknown ids store nothing",
    async ({ store }) => {
      await store.enqueue([newJob("a")], T0);
      await run(store, "a", T0);
      await store.enqueue([newJob("b", { after: ["a"] })], T0 + 1);
      assert.equal((await store.getJob("b"))!.waitingOn, 0);
      await assert.rejects(
        store.enqueue([newJob("x"), newJob("y", { after: ["a", "nope"] })], T0 + 2),
        (e) =>
          e instanceof UsageError && /"nope", which does not exist/.test(e.message) &&
          /nothing from this batch was stored/.test(e.message),
      );
      // A batch may only name jobs before it: later in the batch is refused too (no cycle).
      await assert.rejects(
        store.enqueue([newJob("p", { after: ["q"] }), newJob("q", { after: ["p"] })], T0 + 2),
        (e) =>
          e instanceof UsageError && /"q", which comes later in the same batch/.test(e.message),
      );
      for (const id of ["x", "y", "p", "q"]) assert.equal(await store.getJob(id), null, id);
      assert.equal(await store.countJobs(), 2);
      assert.equal((await store.counts(T0)).pending, 1, "the kept counts are unchanged");
    },
  );

  storeTest("a batch refers to jobs earlier in it", async ({ store }) => {
    await store.enqueue([
      newJob("fetch"),
      newJob("build", { after: ["fetch"] }),
      newJob("test", { after: ["build", "fetch"] }),
    ], T0);
    assert.equal((await store.getJob("test"))!.waitingOn, 2);
    await run(store, "fetch", T0 + 1);
    assert.equal((await store.getJob("test"))!.waitingOn, 1);
    await run(store, "build", T0 + 2);
    await run(store, "test", T0 + 3);
  });

  storeTest(
    "a death takes the waiting chain to dead; a retry brings it back",
    async ({ store }) => {
      await store.enqueue([
        newJob("a", { maxRetries: 0 }),
        newJob("b", { after: ["a"] }),
        newJob("c", { after: ["b"] }),
        newJob("other"),
      ], T0);
      const [a] = await store.claimNext("w2", T0, 1); // enqueue order: a comes before other
      assert.equal(a.id, "a");
      // One transaction: the dependants are dead as soon as the death is seen.
      await store.finishAttempt("a", "w2", end(a, EXIT3, T0 + 1).next, EXIT3, T0 + 1);
      assert.deepEqual(await stateOf(store, "b"), {
        state: "dead",
        waitingOn: 1,
        error: "dependency a died",
      });
      assert.deepEqual(await stateOf(store, "c"), {
        state: "dead",
        waitingOn: 1,
        error: "dependency b died",
      });
      const counts = await store.counts(T0 + 1);
      assert.equal(counts.dead, 3);
      assert.equal(counts.waiting, 0);
      // A person cannot retry b alone while a is dead: nothing would ever free it.
      assert.equal(await apply(store, "b", "retry", T0 + 2), null);
      assert.equal((await store.getJob("b"))!.state, "dead");

      assert.ok(await apply(store, "a", "retry", T0 + 3));
      assert.deepEqual(await stateOf(store, "b"), { state: "pending", waitingOn: 1, error: null });
      assert.deepEqual(await stateOf(store, "c"), { state: "pending", waitingOn: 1, error: null });
      assert.equal((await store.counts(T0 + 3)).dead, 0);
      assert.deepEqual((await claimIds(store, "w1", T0 + 3)).sort(), ["a", "other"]);
    },
  );

  storeTest(
    "a cancel kills the waiting dependants; a dependant that died on its own stays dead",
    async ({ store }) => {
      await store.enqueue([newJob("a"), newJob("b", { after: ["a"] })], T0);
      assert.ok(await apply(store, "a", "cancel", T0 + 1));
      assert.deepEqual(await stateOf(store, "b"), {
        state: "dead",
        waitingOn: 1,
        error: "dependency a was cancelled",
      });
      assert.ok(await apply(store, "a", "retry", T0 + 2));
      assert.equal((await store.getJob("b"))!.state, "pending");
      await run(store, "a", T0 + 3);
      await run(store, "b", T0 + 4, { ...EXIT3 });
      assert.equal((await store.getJob("b"))!.state, "failed", "b fails on its own");
    },
  );

  storeTest(
    "a job with two dead dependencies comes back only when both are retried",
    async ({ store }) => {
      await store.enqueue([
        newJob("a", { maxRetries: 0 }),
        newJob("b", { maxRetries: 0 }),
        newJob("d", { after: ["a", "b"] }),
      ], T0);
      await run(store, "a", T0 + 1, EXIT3);
      await run(store, "b", T0 + 2, EXIT3);
      assert.equal((await store.getJob("d"))!.error, "dependency a died");
      assert.ok(await apply(store, "a", "retry", T0 + 3));
      assert.equal((await store.getJob("d"))!.state, "dead", "b is still dead");
      assert.ok(await apply(store, "b", "retry", T0 + 4));
      assert.deepEqual(await stateOf(store, "d"), { state: "pending", waitingOn: 2, error: null });
    },
  );

  storeTest("enqueueing after a dead job stores the job straight into dead", async ({ store }) => {
    await store.enqueue([newJob("a", { maxRetries: 0 })], T0);
    await run(store, "a", T0 + 1, EXIT3);
    await store.enqueue([newJob("b", { after: ["a"] }), newJob("c", { after: ["b"] })], T0 + 2);
    assert.deepEqual(await stateOf(store, "b"), {
      state: "dead",
      waitingOn: 1,
      error: "dependency a died",
    });
    assert.equal((await store.getJob("c"))!.error, "dependency b died");
    assert.equal((await store.counts(T0 + 2)).dead, 3);
    assert.ok(await apply(store, "a", "retry", T0 + 3));
    assert.equal((await store.getJob("c"))!.state, "pending");
    assert.equal((await store.counts(T0 + 3)).waiting, 2);
  });

  storeTest("a removed or purged dependency counts as done", async ({ store }) => {
    await store.enqueue([newJob("a", { maxRetries: 0 }), newJob("b", { after: ["a"] })], T0);
    await run(store, "a", T0 + 1, EXIT3);
    assert.ok(await store.removeJob("a", ["dead"]));
    assert.deepEqual(await store.dependencies("b"), { after: [], dependants: [] });
    assert.equal((await store.getJob("b"))!.waitingOn, 0);
    assert.ok(await apply(store, "b", "retry", T0 + 2), "b may run now");
    assert.deepEqual(await claimIds(store, "w1", T0 + 2), ["b"]);
    // A new job may take a purged job's id without inheriting its links.
    // A purged completed dependency was counted when it completed, never twice.
    await store.enqueue([newJob("c"), newJob("d", { after: ["c"] }), newJob("e")], T0 + 3);
    await store.enqueue([newJob("f", { after: ["d", "e"] })], T0 + 3);
    await run(store, "c", T0 + 4);
    assert.deepEqual((await store.purge("completed", T0 + 10)).map((j) => j.id), ["c"]);
    assert.equal((await store.getJob("d"))!.waitingOn, 0);
    await run(store, "d", T0 + 11);
    assert.equal((await store.getJob("f"))!.waitingOn, 1, "f still waits for e");
    await store.enqueue([newJob("c")], T0 + 12);
    assert.deepEqual((await store.dependencies("c")).dependants, []);
  });

  storeTest(
    "two dependencies completing at once, on two connections, free the job once",
    async ({ store, connect }) => {
      const other = await connect();
      await store.enqueue([newJob("a"), newJob("b"), newJob("d", { after: ["a", "b"] })], T0);
      const [a] = await store.claimNext("w1", T0, 1);
      const [b] = await other.claimNext("w2", T0, 1);
      assert.deepEqual([a.id, b.id].sort(), ["a", "b"]);
      // Both finish together; each in its own group commit, as busy workers do.
      const [r1, r2] = await Promise.all([
        store.finishAndClaim("w1", [end(a, OK, T0 + 1)], 0, T0 + 1),
        other.finishAndClaim("w2", [end(b, OK, T0 + 1)], 0, T0 + 1),
      ]);
      assert.ok(r1.finished[0] && r2.finished[0]);
      assert.deepEqual(await stateOf(store, "d"), { state: "pending", waitingOn: 0, error: null });
      assert.deepEqual(await claimIds(store, "w1", T0 + 2), ["d"]);
    },
  );

  storeTest(
    "a worker's group commit claims the dependant its finished job freed",
    async ({ store }) => {
      await store.enqueue([newJob("a"), newJob("b", { after: ["a"] })], T0);
      const [a] = await store.claimNext("w1", T0, 4);
      const { finished, claimed } = await store.finishAndClaim(
        "w1",
        [end(a, OK, T0 + 1)],
        4,
        T0 + 1,
      );
      assert.equal(finished[0]?.state, "completed");
      assert.deepEqual(claimed.map((j) => j.id), ["b"]);
    },
  );

  storeTest("export and import keep the links and the waiting counts", async ({ store }) => {
    await store.enqueue([newJob("a"), newJob("b", { after: ["a"] })], T0);
    const records = await store.exportJobs(0, 10);
    assert.deepEqual(records.map((r) => r.after), [[], ["a"]]);
    // Import into the same database, emptied first (as `migrate` fills an empty store).
    for (const r of records.toReversed()) await store.removeJob(r.job.id, ["pending"]);
    assert.equal(await store.countJobs(), 0);
    await store.importJobs(records);
    assert.equal((await store.getJob("b"))!.waitingOn, 1);
    assert.deepEqual(await store.dependencies("a"), {
      after: [],
      dependants: [{ id: "b", state: "pending" }],
    });
    await run(store, "a", T0 + 1);
    assert.deepEqual(await claimIds(store, "w1", T0 + 2), ["b"]);
  });
}
