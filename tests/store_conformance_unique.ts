/**
 * Store conformance for unique jobs: at most one job per unique key is pending, failed or
 * processing, guarded by the store's unique index; `enqueue` returns the holder of a held key and
 * a retry that would take a held key is refused. Run against every store by
 * `store_sqlite_test.ts` and `store_postgres_test.ts`.
 */
import assert from "node:assert/strict";
import { ConflictError } from "../lib/errors.ts";
import { type BackoffPolicy, eventForOutcome, transition } from "../lib/job.ts";
import type { AttemptResult, Job, Store } from "../lib/store/store.ts";
import { conformanceTest, type DatabaseFactory, newJob } from "./store_conformance.ts";

const T0 = 1_800_000_000_000;
const POLICY: BackoffPolicy = { backoffBaseSeconds: 2, backoffMaxSeconds: 3600, jitter: false };
const OK: AttemptResult = { outcome: "completed", exitCode: 0, signal: null, error: null };
const EXIT3: AttemptResult = { outcome: "exited", exitCode: 3, signal: null, error: "boom" };

async function claim(store: Store, id: string, now: number): Promise<Job> {
  const [job] = await store.claimNext("w1", now);
  assert.equal(job?.id, id, `claimed ${id}`);
  return job;
}

async function finish(store: Store, job: Job, now: number, result: AttemptResult) {
  const next = transition(job, eventForOutcome(result.outcome), now, POLICY);
  assert.ok(await store.finishAttempt(job.id, "w1", next, result, now));
}

/** A person's `retry` or `cancel`, as the CLI applies it. */
async function apply(store: Store, id: string, type: "retry" | "cancel", now: number) {
  const job = (await store.getJob(id))!;
  return await store.applyTransition(id, job, transition(job, { type }, now), now);
}

export function uniqueConformance(name: string, newDatabase: DatabaseFactory): void {
  const test = conformanceTest(`store(${name}) unique`, newDatabase);
  const storeTest = (title: string, fn: (store: Store, connect: () => Promise<Store>) => unknown) =>
    test(title, ({ store, connect }) => fn(store, connect));

  storeTest("a held key returns the holder and stores nothing", async (store) => {
    assert.deepEqual(await store.enqueue([newJob("a", { uniqueKey: "k" })], T0), []);
    assert.equal((await store.getJob("a"))!.uniqueKey, "k");
    const existing = await store.enqueue([newJob("b", { uniqueKey: "k" })], T0 + 1);
    assert.deepEqual(existing, [{ index: 0, id: "a", state: "pending", runAt: T0 }]);
    assert.equal(await store.getJob("b"), null);
    assert.equal(await store.countJobs("pending"), 1);
    // Other keys and jobs without one are not affected.
    assert.deepEqual(
      await store.enqueue([newJob("c", { uniqueKey: "other" }), newJob("d")], T0),
      [],
    );
    assert.equal(await store.countJobs("pending"), 3);
    assert.equal((await store.getJob("d"))!.uniqueKey, null);
  });

  storeTest(
    "a job after a batch job skipped for its key waits for the key's holder",
    async (store) => {
      await store.enqueue([newJob("holder", { uniqueKey: "k" })], T0);
      const existing = await store.enqueue([
        newJob("a", { uniqueKey: "k" }),
        newJob("b", { after: ["a"] }),
      ], T0 + 1);
      assert.deepEqual(existing.map((e) => [e.index, e.id]), [[0, "holder"]]);
      assert.equal(await store.getJob("a"), null);
      assert.equal((await store.getJob("b"))!.waitingOn, 1);
      assert.deepEqual((await store.dependencies("b")).after.map((d) => d.id), ["holder"]);
    },
  );

  storeTest("scheduled, failed and processing jobs hold their key", async (store) => {
    await store.enqueue([newJob("later", { uniqueKey: "s", runAt: T0 + 60_000 })], T0);
    assert.equal((await store.enqueue([newJob("x1", { uniqueKey: "s" })], T0))[0]?.id, "later");

    await store.enqueue([newJob("run", { uniqueKey: "r" })], T0);
    const running = await claim(store, "run", T0 + 1);
    const held = await store.enqueue([newJob("x2", { uniqueKey: "r" })], T0 + 2);
    assert.deepEqual(held.map((e) => [e.id, e.state]), [["run", "processing"]]);

    await finish(store, running, T0 + 3, EXIT3); // retries left: failed, awaiting its retry
    assert.equal((await store.getJob("run"))!.state, "failed");
    const failed = await store.enqueue([newJob("x3", { uniqueKey: "r" })], T0 + 4);
    assert.deepEqual(failed.map((e) => [e.id, e.state]), [["run", "failed"]]);
    for (const id of ["x1", "x2", "x3"]) assert.equal(await store.getJob(id), null, id);
  });

  storeTest("a completed, dead or cancelled job frees its key", async (store) => {
    await store.enqueue([
      newJob("done", { uniqueKey: "c", priority: 2 }),
      newJob("dead", { uniqueKey: "d", priority: 1, maxRetries: 0 }),
      newJob("gone", { uniqueKey: "x" }),
    ], T0);
    await finish(store, await claim(store, "done", T0 + 1), T0 + 2, OK);
    await finish(store, await claim(store, "dead", T0 + 3), T0 + 4, EXIT3);
    assert.ok(await apply(store, "gone", "cancel", T0 + 5));
    assert.deepEqual(
      await store.enqueue([
        newJob("c2", { uniqueKey: "c" }),
        newJob("d2", { uniqueKey: "d" }),
        newJob("x2", { uniqueKey: "x" }),
      ], T0 + 6),
      [],
    );
    for (const id of ["c2", "d2", "x2"]) assert.equal((await store.getJob(id))!.state, "pending");
  });

  storeTest("in a batch, a repeated key resolves to the first job with it", async (store) => {
    await store.enqueue([newJob("old", { uniqueKey: "held" })], T0);
    const existing = await store.enqueue([
      newJob("a", { uniqueKey: "k" }),
      newJob("plain"),
      newJob("b", { uniqueKey: "k" }),
      newJob("c", { uniqueKey: "held" }),
      newJob("d", { uniqueKey: "k", runAt: T0 + 5 }),
    ], T0 + 1);
    assert.deepEqual(existing, [
      { index: 2, id: "a", state: "pending", runAt: T0 },
      { index: 3, id: "old", state: "pending", runAt: T0 },
      { index: 4, id: "a", state: "pending", runAt: T0 },
    ]);
    assert.deepEqual(
      (await store.listJobs({ limit: 10 })).map((j) => j.id),
      ["old", "a", "plain"],
    );
    assert.equal(await store.countJobs("pending"), 3, "the kept count matches the rows");
    assert.equal((await store.counts(T0)).pending, 3);
  });

  storeTest("a duplicate id is still refused, with nothing stored", async (store) => {
    await store.enqueue([newJob("a")], T0);
    await assert.rejects(
      store.enqueue([newJob("n", { uniqueKey: "k" }), newJob("a", { uniqueKey: "j" })], T0),
      ConflictError,
    );
    assert.equal(await store.getJob("n"), null);
    assert.equal(await store.countJobs(), 1);
  });

  storeTest("a retry onto a held key is refused and changes nothing", async (store) => {
    await store.enqueue([newJob("first", { uniqueKey: "k", maxRetries: 0 })], T0);
    await finish(store, await claim(store, "first", T0 + 1), T0 + 2, EXIT3);
    assert.equal((await store.getJob("first"))!.state, "dead");
    await store.enqueue([newJob("second", { uniqueKey: "k" })], T0 + 3);
    const before = await store.getJob("first");
    await assert.rejects(
      apply(store, "first", "retry", T0 + 4),
      (e: Error) =>
        e instanceof ConflictError && /unique key "k" is held by job "second" \(pending\)/.test(
          e.message,
        ) && !e.message.includes("\n"),
    );
    assert.deepEqual(await store.getJob("first"), before, "nothing changed");
    assert.deepEqual(await store.listRetries("first"), []);
    assert.equal(await store.countJobs("dead"), 1);

    // A cancelled job likewise; once the holder is gone, the retry goes through.
    assert.ok(await apply(store, "second", "cancel", T0 + 5));
    assert.equal((await apply(store, "first", "retry", T0 + 6))!.state, "pending");
    await assert.rejects(apply(store, "second", "retry", T0 + 7), ConflictError);
    assert.equal((await store.getJob("second"))!.state, "cancelled");
  });

  storeTest("a failed job's own retry keeps its key", async (store) => {
    await store.enqueue([newJob("f", { uniqueKey: "k" })], T0);
    await finish(store, await claim(store, "f", T0 + 1), T0 + 2, EXIT3);
    assert.equal((await apply(store, "f", "retry", T0 + 3))!.state, "pending");
    assert.equal((await store.enqueue([newJob("g", { uniqueKey: "k" })], T0))[0]?.id, "f");
  });

  storeTest("concurrent enqueues of one key from 8 connections store one job", async (
    _store,
    connect,
  ) => {
    const stores = await Promise.all(Array.from({ length: 8 }, () => connect()));
    const results = await Promise.all(
      stores.map((s, i) => s.enqueue([newJob(`racer-${i}`, { uniqueKey: "race" })], T0)),
    );
    const inserted = results.flatMap((r, i) => r.length === 0 ? [`racer-${i}`] : []);
    assert.equal(inserted.length, 1, `one insert: ${JSON.stringify(results)}`);
    for (const r of results) if (r.length > 0) assert.equal(r[0].id, inserted[0]);
    assert.equal(await stores[0].countJobs(), 1);
  });

  storeTest("export and import (migrate) keep the key, still held", async (store) => {
    await store.enqueue([newJob("a", { uniqueKey: "k" }), newJob("b")], T0);
    const records = await store.exportJobs(0, 10);
    assert.deepEqual(records.map((r) => r.job.uniqueKey), ["k", null]);
    await using other = await newDatabase();
    const copy = await other.connect();
    try {
      await copy.importJobs(records);
      assert.equal((await copy.getJob("a"))!.uniqueKey, "k");
      assert.equal((await copy.enqueue([newJob("c", { uniqueKey: "k" })], T0))[0]?.id, "a");
    } finally {
      await copy.close();
    }
  });
}
