/**
 * Store conformance for named queues: which jobs a claim may take under pauses, concurrency
 * limits and a worker's queue filter, and what `listQueues` counts. Run against every store by
 * store_sqlite_test.ts and store_postgres_test.ts. Time is passed in as `now`; nothing sleeps.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { eventForOutcome, transition } from "../lib/job.ts";
import type { AttemptResult, Job, QueueInfo, Store } from "../lib/store/store.ts";
import { PERMS } from "./helpers.ts";
import { conformanceTest, type DatabaseFactory, newJob } from "./store_conformance.ts";

const T0 = 1_800_000_000_000;
const OK: AttemptResult = { outcome: "completed", exitCode: 0, signal: null, error: null };
const POLICY = { backoffBaseSeconds: 2, backoffMaxSeconds: 3600, jitter: false };

const CLAIMER = fileURLToPath(new URL("./fixtures/claim_queues.ts", import.meta.url));

/** Ends a claimed job's run as completed, the way a worker does. */
async function complete(store: Store, job: Job, now: number): Promise<Job> {
  const next = transition(job, eventForOutcome("completed"), now, POLICY);
  const saved = await store.finishAttempt(job.id, job.workerId!, next, OK, now);
  assert.ok(saved, `finishAttempt(${job.id}) should have matched`);
  return saved;
}

const ids = (jobs: Job[]) => jobs.map((j) => j.id);

function queueOf(queues: QueueInfo[], name: string): QueueInfo {
  const q = queues.find((x) => x.name === name);
  assert.ok(q, `queue ${name} should be listed; got ${queues.map((x) => x.name)}`);
  return q;
}

/**
 * Claims in `rounds` rounds (finishing nothing) from `n` processes that start claiming together;
 * returns each one's ids.
 */
async function claimTogether(
  url: string,
  n: number,
  rounds: number,
  queues?: string,
): Promise<string[][]> {
  const claimers = Array.from({ length: n }, (_, i) => {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--quiet", ...PERMS, CLAIMER, url, `w${i}`, String(T0 + 1), String(rounds)]
        .concat(queues ? [queues] : []),
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    let text = "";
    const ready = Promise.withResolvers<void>();
    const stdout = (async () => {
      const dec = new TextDecoder();
      for await (const chunk of child.stdout) {
        text += dec.decode(chunk, { stream: true });
        if (text.startsWith("ready\n")) ready.resolve();
      }
    })();
    const result = Promise.all([child.status, stdout, new Response(child.stderr).text()]).then(
      ([status, , stderr]) => {
        if (!status.success) throw new Error(`claimer exited ${status.code}\n${stderr}`);
        return JSON.parse(text.slice("ready\n".length)) as string[];
      },
    );
    return { child, ready: Promise.race([ready.promise, result.then(() => {})]), result };
  });
  try {
    // Every claimer has its connection open before the gate (its stdin) opens for all at once.
    await Promise.all(claimers.map((c) => c.ready));
  } finally {
    for (const c of claimers) await c.child.stdin.close();
  }
  return await Promise.all(claimers.map((c) => c.result));
}

export function queuesConformance(name: string, newDatabase: DatabaseFactory): void {
  const storeTest = conformanceTest(`store(${name}): queues`, newDatabase);

  storeTest(
    "under queue rules too, a job waiting on another is claimed only after it completed",
    async ({ store }) => {
      await store.setQueue("other", { paused: true });
      await store.enqueue([
        newJob("dep", { queue: "q" }),
        newJob("next", { queue: "q", after: ["dep"] }),
      ], T0);
      const first = await store.claimNext("w", T0, 10);
      assert.deepEqual(ids(first), ["dep"]);
      assert.deepEqual(await store.claimNext("w", T0, 10, ["q"]), []);
      await complete(store, first[0], T0);
      assert.deepEqual(ids(await store.claimNext("w", T0, 10, ["q"])), ["next"]);
    },
  );

  storeTest(
    "a job keeps its queue; default when none is given; list filters by it",
    async ({ store }) => {
      await store.enqueue([
        newJob("a1", { queue: "mail" }),
        newJob("d1"),
        newJob("a2", { queue: "mail" }),
      ], T0);
      assert.equal((await store.getJob("a1"))!.queue, "mail");
      assert.equal((await store.getJob("d1"))!.queue, "default");
      assert.deepEqual(ids(await store.listJobs({ queue: "mail", limit: 10 })), ["a1", "a2"]);
      assert.deepEqual(ids(await store.listJobs({ queue: "default", limit: 10 })), ["d1"]);
      assert.deepEqual(ids(await store.pageJobs({ queue: "mail", limit: 10 })), ["a2", "a1"]);
      assert.equal(await store.countPage({ queue: "mail" }), 2);
      assert.equal(await store.countPage({ queue: "mail", state: "processing" }), 0);
    },
  );

  storeTest(
    "listQueues counts each queue's jobs per state, default always listed",
    async ({ store }) => {
      assert.deepEqual((await store.listQueues()).map((q) => q.name), ["default"]);
      await store.enqueue([
        newJob("a1", { queue: "mail" }),
        newJob("a2", { queue: "mail" }),
        newJob("d1"),
        newJob("b1", { queue: "batch" }),
      ], T0);
      const [job] = await store.claimNext("w1", T0 + 1, 1);
      assert.equal(job.id, "a1");
      await complete(store, job, T0 + 2);
      await store.setQueue("later", { paused: true });
      const queues = await store.listQueues();
      assert.deepEqual(queues.map((q) => q.name), ["batch", "default", "later", "mail"]);
      assert.equal(queueOf(queues, "mail").counts.completed, 1);
      assert.equal(queueOf(queues, "mail").counts.pending, 1);
      assert.equal(queueOf(queues, "default").counts.pending, 1);
      assert.equal(queueOf(queues, "default").counts.completed, 0);
      assert.equal(queueOf(queues, "batch").counts.pending, 1);
      assert.deepEqual(queueOf(queues, "later"), {
        name: "later",
        counts: { pending: 0, processing: 0, completed: 0, failed: 0, dead: 0, cancelled: 0 },
        paused: true,
        concurrency: 0,
      });
    },
  );

  storeTest(
    "a paused queue's jobs are not claimed; others are; resume brings them back",
    async ({ store }) => {
      await store.setQueue("mail", { paused: true }); // before it has any job
      await store.enqueue([
        newJob("m1", { queue: "mail", priority: 5 }),
        newJob("d1"),
        newJob("m2", { queue: "mail", priority: 5 }),
      ], T0);
      assert.deepEqual(ids(await store.claimNext("w1", T0 + 1, 5)), ["d1"]);
      assert.deepEqual(await store.claimNext("w1", T0 + 2, 5), []);
      assert.equal(queueOf(await store.listQueues(), "mail").paused, true);
      await store.setQueue("mail", { paused: false });
      assert.deepEqual(ids(await store.claimNext("w1", T0 + 3, 5)), ["m1", "m2"]);
    },
  );

  storeTest(
    "a queue whose rules go back to none, and that has no job, is gone",
    async ({ store }) => {
      await store.setQueue("typo", { paused: true });
      await store.setQueue("limited", { concurrency: 3 });
      await store.enqueue([newJob("m1", { queue: "mail" })], T0);
      await store.setQueue("mail", { paused: true });
      const names = async () => (await store.listQueues()).map((q) => q.name).sort();
      assert.deepEqual(await names(), ["default", "limited", "mail", "typo"]);
      await store.setQueue("typo", { paused: false });
      await store.setQueue("limited", { concurrency: 0 });
      await store.setQueue("mail", { paused: false });
      assert.deepEqual(await names(), ["default", "mail"], "mail stays while it has a job");
      assert.equal(queueOf(await store.listQueues(), "mail").paused, false);
    },
  );

  storeTest("pausing leaves running jobs alone: they finish", async ({ store }) => {
    await store.enqueue([newJob("m1", { queue: "mail" }), newJob("m2", { queue: "mail" })], T0);
    const [job] = await store.claimNext("w1", T0 + 1, 1);
    await store.setQueue("mail", { paused: true });
    assert.equal((await complete(store, job, T0 + 2)).state, "completed");
    assert.deepEqual(await store.claimNext("w1", T0 + 3, 5), []);
    const { claimed } = await store.finishAndClaim("w1", [], 5, T0 + 4);
    assert.deepEqual(claimed, []);
  });

  storeTest(
    "a pause set through another connection holds for a store that claimed before",
    async ({ store, connect }) => {
      const other = await connect();
      await store.enqueue([newJob("d1"), newJob("d2"), newJob("d3")], T0);
      assert.deepEqual(ids(await store.claimNext("w1", T0 + 1, 1)), ["d1"]);
      await other.setQueue("default", { paused: true });
      assert.deepEqual(await store.claimNext("w1", T0 + 2, 1), []);
      await other.setQueue("default", { paused: false, concurrency: 2 });
      assert.deepEqual(ids(await store.claimNext("w1", T0 + 3, 5)), ["d2"]);
      await other.setQueue("default", { concurrency: 0 });
      assert.deepEqual(ids(await store.claimNext("w1", T0 + 4, 5)), ["d3"]);
    },
  );

  storeTest(
    "a concurrency limit caps a queue's processing jobs; a finish frees a slot",
    async ({ store }) => {
      await store.setQueue("cpu", { concurrency: 2 });
      await store.enqueue([
        ...Array.from({ length: 5 }, (_, i) => newJob(`c${i}`, { queue: "cpu", priority: 9 })),
        newJob("d1"),
      ], T0);
      const first = await store.claimNext("w1", T0 + 1, 10);
      assert.deepEqual(ids(first), ["c0", "c1", "d1"]);
      assert.deepEqual(await store.claimNext("w2", T0 + 2, 10), []);
      // The slot freed by a finish goes to the claim of the same commit.
      const { claimed } = await store.finishAndClaim(
        "w1",
        [{
          jobId: "c0",
          next: transition(first[0], eventForOutcome("completed"), T0 + 3, POLICY),
          result: OK,
        }],
        10,
        T0 + 3,
      );
      assert.deepEqual(ids(claimed), ["c2"]);
      assert.deepEqual(await store.claimNext("w2", T0 + 4, 10), []);
      await store.setQueue("cpu", { concurrency: 3 });
      assert.deepEqual(ids(await store.claimNext("w2", T0 + 5, 10)), ["c3"]);
      await store.setQueue("cpu", { concurrency: 0 }); // no limit
      assert.deepEqual(ids(await store.claimNext("w2", T0 + 6, 10)), ["c4"]);
      assert.equal(queueOf(await store.listQueues(), "cpu").counts.processing, 4);
    },
  );

  storeTest(
    "a worker's queue filter: only its queues, in the order of priority, run_at, seq",
    async ({ store }) => {
      await store.enqueue([
        newJob("a1", { queue: "a" }),
        newJob("b1", { queue: "b", priority: 3 }),
        newJob("c1", { queue: "c", priority: 9 }),
        newJob("a2", { queue: "a", priority: 3, runAt: T0 - 10 }),
        newJob("d1"),
      ], T0);
      assert.deepEqual(ids(await store.claimNext("w1", T0 + 1, 3, ["a", "b"])), ["a2", "b1", "a1"]);
      assert.deepEqual(await store.claimNext("w1", T0 + 2, 3, ["a", "b", "nosuch"]), []);
      const { claimed } = await store.finishAndClaim("w1", [], 3, T0 + 3, ["default"]);
      assert.deepEqual(ids(claimed), ["d1"]);
      assert.deepEqual(ids(await store.claimNext("w1", T0 + 4, 3)), ["c1"]);
    },
  );

  storeTest(
    "claims of other queues pass a large paused queue of higher priority",
    async ({ store }) => {
      await store.setQueue("big", { paused: true });
      await store.enqueue(
        Array.from({ length: 5_000 }, (_, i) => newJob(`b${i}`, { queue: "big", priority: 1 })),
        T0,
      );
      await store.enqueue([newJob("d1"), newJob("d2")], T0 + 1);
      assert.deepEqual(ids(await store.claimNext("w1", T0 + 2, 1)), ["d1"]);
      assert.deepEqual(ids(await store.claimNext("w1", T0 + 2, 5, ["default", "big"])), ["d2"]);
      assert.deepEqual(await store.claimNext("w1", T0 + 3, 5), []);
      assert.equal(queueOf(await store.listQueues(), "big").counts.pending, 5_000);
    },
  );

  storeTest(
    "4 processes claiming together never exceed a queue's limit",
    async ({ store, url }) => {
      await store.setQueue("q", { concurrency: 2 });
      await store.enqueue(
        Array.from({ length: 30 }, (_, i) => newJob(`q${i}`, { queue: "q" })),
        T0,
      );
      await store.enqueue(Array.from({ length: 8 }, (_, i) => newJob(`d${i}`)), T0);
      const claimed = (await claimTogether(url, 4, 12)).flat();
      assert.equal(new Set(claimed).size, claimed.length, "a job was claimed twice");
      assert.equal(claimed.filter((id) => id.startsWith("q")).length, 2, `claimed ${claimed}`);
      assert.equal(claimed.filter((id) => id.startsWith("d")).length, 8);
      assert.equal(queueOf(await store.listQueues(), "q").counts.processing, 2);
    },
  );

  storeTest(
    "4 processes with a queue filter claim only from their queues",
    async ({ store, url }) => {
      await store.setQueue("b", { paused: true });
      await store.enqueue([
        ...Array.from({ length: 20 }, (_, i) => newJob(`a${i}`, { queue: "a" })),
        ...Array.from({ length: 20 }, (_, i) => newJob(`b${i}`, { queue: "b" })),
        ...Array.from({ length: 20 }, (_, i) => newJob(`c${i}`, { queue: "c" })),
      ], T0);
      const claimed = (await claimTogether(url, 4, 10, "a,b")).flat();
      assert.equal(new Set(claimed).size, claimed.length, "a job was claimed twice");
      assert.deepEqual(claimed.sort(), Array.from({ length: 20 }, (_, i) => `a${i}`).sort());
    },
  );
}
