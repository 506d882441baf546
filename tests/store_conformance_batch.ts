/**
 * Store conformance for a worker's group commit (`finishAndClaim` of several results): each
 * result is guarded and recorded on its own, with its own output, in one commit with the next
 * claims. Run against every store by `store_sqlite_test.ts` and `store_postgres_test.ts`.
 */
import assert from "node:assert/strict";
import { type BackoffPolicy, eventForOutcome, transition } from "../lib/job.ts";
import type { AttemptResult, Job, RunEnd, Store } from "../lib/store/store.ts";
import { conformanceTest, type DatabaseFactory, newJob } from "./store_conformance.ts";

const T0 = 1_800_000_000_000;
const POLICY: BackoffPolicy = { backoffBaseSeconds: 2, backoffMaxSeconds: 3600, jitter: false };
const OK: AttemptResult = { outcome: "completed", exitCode: 0, signal: null, error: null };
const EXIT3: AttemptResult = { outcome: "exited", exitCode: 3, signal: null, error: "boom" };
const bytes = (s: string) => new TextEncoder().encode(s);
const text = (pieces: { offset: number; data: Uint8Array }[]) =>
  pieces.map((p) => `${p.offset}:${new TextDecoder().decode(p.data)}`).join(" ");

function end(job: Job, result: AttemptResult, now: number): RunEnd {
  return {
    jobId: job.id,
    next: transition(job, eventForOutcome(result.outcome), now, POLICY),
    result,
  };
}

async function claimAll(store: Store, n: number, now: number): Promise<Map<string, Job>> {
  const jobs = await store.claimNext("w1", now, n);
  assert.equal(jobs.length, n, `claimed ${n}`);
  return new Map(jobs.map((j) => [j.id, j]));
}

export function batchConformance(name: string, newDatabase: DatabaseFactory): void {
  const test = conformanceTest(`store(${name}) batch`, newDatabase);

  test("each result of a batch keeps its own output, cut to its own cap", async ({ store }) => {
    await store.enqueue(["a", "b", "c", "d"].map((id) => newJob(id)), T0);
    const held = await claimAll(store, 4, T0);
    const out = (offset: number, s: string, capBytes: number) => ({
      offset,
      data: bytes(s),
      capBytes,
    });
    const a = held.get("a")!, b = held.get("b")!, c = held.get("c")!, d = held.get("d")!;
    await store.appendOutput("c", c.outputKey!, out(0, "0123456789", 100));
    const { finished, claimed } = await store.finishAndClaim(
      "w1",
      [
        end(a, { ...OK, output: out(0, "alpha", 100) }, T0 + 1),
        end(b, OK, T0 + 1),
        // Past its cap of 4: the piece before the last 4 bytes goes.
        end(c, { ...EXIT3, output: out(10, "xyz!", 4) }, T0 + 1),
        end(d, { ...OK, output: out(0, "", 100) }, T0 + 1),
      ],
      4,
      T0 + 1,
    );
    assert.deepEqual(finished.map((j) => j?.state), [
      "completed",
      "completed",
      "failed",
      "completed",
    ]);
    assert.deepEqual(claimed, []);
    assert.equal(text(await store.readOutput(a.outputKey!)), "0:alpha");
    assert.equal(text(await store.readOutput(b.outputKey!)), "");
    assert.equal(text(await store.readOutput(c.outputKey!)), "10:xyz!");
    assert.equal(text(await store.readOutput(d.outputKey!)), "");
    assert.deepEqual(
      (await store.listAttempts("c")).map((t) => [t.outcome, t.exitCode, t.error, t.outputKey]),
      [["exited", 3, "boom", c.outputKey]],
    );
  });

  test("a result the worker no longer holds is null in its place; the others count", async ({ store }) => {
    await store.enqueue(["a", "b"].map((id) => newJob(id)), T0);
    const held = await claimAll(store, 2, T0);
    const a = held.get("a")!, b = held.get("b")!;
    // b's lease runs out: it is rescued and taken by another worker before w1 reports it.
    const lost: AttemptResult = {
      outcome: "worker_lost",
      exitCode: null,
      signal: null,
      error: "lease",
    };
    assert.ok(await store.finishAttempt("b", "w1", end(b, lost, T0 + 1).next, lost, T0 + 1));
    const [b2] = await store.claimNext("w2", T0 + 10_000);
    assert.equal(b2.id, "b");
    await store.enqueue([newJob("c")], T0 + 10_000);
    const { finished, claimed } = await store.finishAndClaim(
      "w1",
      [end(a, OK, T0 + 10_001), end(b, OK, T0 + 10_001)],
      2,
      T0 + 10_001,
    );
    assert.deepEqual(finished.map((j) => j?.id ?? null), ["a", null]);
    assert.deepEqual(claimed.map((j) => [j.id, j.workerId]), [["c", "w1"]]);
    assert.equal((await store.getJob("b"))!.workerId, "w2");
    assert.deepEqual((await store.listAttempts("b")).map((t) => t.outcome), ["worker_lost"]);
  });

  test("a batch where one job dies takes its dependants with it, and claims the rest", async ({ store }) => {
    await store.enqueue([newJob("a", { maxRetries: 0 }), newJob("b"), newJob("x")], T0);
    const held = await claimAll(store, 2, T0);
    await store.enqueue(
      [newJob("after-a", { after: ["a"] }), newJob("after-b", { after: ["b"] })],
      T0,
    );
    const { finished, claimed } = await store.finishAndClaim(
      "w1",
      [end(held.get("a")!, EXIT3, T0 + 1), end(held.get("b")!, OK, T0 + 1)],
      3,
      T0 + 1,
    );
    assert.deepEqual(finished.map((j) => j?.state), ["dead", "completed"]);
    assert.equal((await store.getJob("after-a"))!.state, "dead");
    // The freed dependant of b is claimed in the same commit, beside the other ready job.
    assert.deepEqual(claimed.map((j) => j.id).sort(), ["after-b", "x"]);
  });

  test(
    "a limit set through another connection holds for the claim of a batch",
    async ({ store, connect }) => {
      const other = await connect();
      await store.enqueue(["d1", "d2", "d3", "d4"].map((id) => newJob(id)), T0);
      const held = await claimAll(store, 2, T0);
      await other.setQueue("default", { concurrency: 1 });
      // Two finish and none is left running: the limit of 1 lets one be claimed, not two.
      const { finished, claimed } = await store.finishAndClaim(
        "w1",
        [end(held.get("d1")!, OK, T0 + 1), end(held.get("d2")!, OK, T0 + 1)],
        5,
        T0 + 1,
      );
      assert.deepEqual(finished.map((j) => j?.state), ["completed", "completed"]);
      assert.deepEqual(claimed.map((j) => j.id), ["d3"]);
      await store.enqueue(["d5", "d6"].map((id) => newJob(id)), T0 + 2);
      await other.setQueue("default", { paused: true });
      const paused = await store.finishAndClaim(
        "w1",
        [end(claimed[0], OK, T0 + 3)],
        5,
        T0 + 3,
      );
      assert.deepEqual(paused.finished.map((j) => j?.state), ["completed"]);
      assert.deepEqual(paused.claimed, []);
    },
  );
}
