/**
 * The Store conformance suite: one set of tests that every `Store` implementation must pass.
 * `store_sqlite_test.ts` runs it against SQLite; a PostgreSQL store will run the same suite.
 *
 * Each test gets a fresh, empty database and may open several connections to it (to check what
 * one connection sees of another's writes, and that two claimers never get the same job). Time is
 * always passed in as `now`: nothing here sleeps or reads the clock to decide anything.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { ConflictError } from "../lib/errors.ts";
import {
  type BackoffPolicy,
  eventForOutcome,
  JOB_STATES,
  type JobState,
  transition,
} from "../lib/job.ts";
import type {
  AttemptResult,
  Job,
  JobCounts,
  ListOptions,
  NewJob,
  Store,
} from "../lib/store/store.ts";
import { PERMS } from "./helpers.ts";

/** A fresh, empty database for one test. Disposing it removes it. */
export interface TestDatabase extends AsyncDisposable {
  /** Opens a new connection to this database. The suite closes every connection it opens. */
  connect(): Promise<Store>;
  /** What another process passes to `openStore` to open this database (a path or a URL). */
  url: string;
}

/** Creates a `TestDatabase`; called once per test. */
export type DatabaseFactory = () => Promise<TestDatabase>;

export interface Ctx {
  /** The first connection to the test's database. */
  store: Store;
  /** Opens another connection to the same database (closed by the suite). */
  connect(): Promise<Store>;
  /** What another process passes to `openStore` to open the same database. */
  url: string;
}

const T0 = 1_800_000_000_000;
const POLICY: BackoffPolicy = { backoffBaseSeconds: 2, backoffMaxSeconds: 3600, jitter: false };

/** A valid `NewJob`, ready now (at T0) unless overridden. */
export function newJob(id: string, fields: Partial<NewJob> = {}): NewJob {
  return {
    id,
    command: `echo ${id}`,
    maxRetries: 3,
    priority: 0,
    runAt: T0,
    timeoutMs: 0,
    cwd: "/tmp",
    env: null,
    ...fields,
  };
}

const OK: AttemptResult = { outcome: "completed", exitCode: 0, signal: null, error: null };
const EXIT3: AttemptResult = { outcome: "exited", exitCode: 3, signal: null, error: "boom" };
const INTERRUPTED: AttemptResult = {
  outcome: "interrupted",
  exitCode: null,
  signal: "SIGTERM",
  error: "worker stopped",
};
const LOST: AttemptResult = {
  outcome: "worker_lost",
  exitCode: null,
  signal: null,
  error: "worker lost: no heartbeat for 30s",
};

/** Claims exactly one job and returns it. */
async function claimOne(store: Store, workerId: string, now: number): Promise<Job> {
  const jobs = await store.claimNext(workerId, now);
  assert.equal(jobs.length, 1, `expected one job to claim at T0+${now - T0}`);
  return jobs[0];
}

/** Ends the current run of `job` (held by `job.workerId`) the way a worker does. */
async function finish(
  store: Store,
  job: Job,
  now: number,
  result: AttemptResult = OK,
): Promise<Job> {
  const saved = await store.finishAttempt(
    job.id,
    job.workerId!,
    transition(job, eventForOutcome(result.outcome), now, POLICY),
    result,
    now,
  );
  assert.ok(saved, `finishAttempt(${job.id}) should have matched`);
  return saved;
}

/** Applies a person's `retry` or `cancel` the way the CLI does. */
async function apply(store: Store, id: string, type: "retry" | "cancel", now: number) {
  const job = (await store.getJob(id))!;
  const saved = await store.applyTransition(id, job, transition(job, { type }, now), now);
  assert.ok(saved, `applyTransition(${id}, ${type}) should have matched`);
  return saved;
}

async function registerWorker(store: Store, id: string, now: number, pid = 4242) {
  await store.registerWorker({
    id,
    pid,
    host: "testhost",
    supervisorPid: 4000,
    startedAt: now,
    heartbeatAt: now,
  });
}

/**
 * Enqueues one job per state at T0 (in `JOB_STATES` order) and moves each into its state: w1
 * claims them at T0+10 and finishes them at T0+20; the failed one's retry is due at T0+2020.
 */
async function oneJobPerState(store: Store): Promise<Record<JobState, string>> {
  // Priorities make the claims below pick the jobs in this order and leave "pending" alone.
  const priority: Record<JobState, number> = {
    processing: 4,
    completed: 3,
    failed: 2,
    dead: 1,
    pending: 0,
    cancelled: 0,
  };
  await store.enqueue(
    JOB_STATES.map((s) =>
      newJob(`job-${s}`, { priority: priority[s], maxRetries: s === "dead" ? 0 : 3 })
    ),
    T0,
  );
  await apply(store, "job-cancelled", "cancel", T0 + 5);
  const claim = async (s: JobState) => {
    const job = await claimOne(store, "w1", T0 + 10);
    assert.equal(job.id, `job-${s}`);
    return job;
  };
  await claim("processing");
  await finish(store, await claim("completed"), T0 + 20);
  await finish(store, await claim("failed"), T0 + 20, EXIT3);
  await finish(store, await claim("dead"), T0 + 20, EXIT3);
  const ids = Object.fromEntries(JOB_STATES.map((s) => [s, `job-${s}`]));
  for (const s of JOB_STATES) assert.equal((await store.getJob(ids[s]))!.state, s);
  return ids as Record<JobState, string>;
}

const CLAIM_LOOP = fileURLToPath(new URL("./fixtures/claim_loop.ts", import.meta.url));

/** A `fixtures/claim_loop.ts` process claiming from the database at `url` as `workerId`. */
function spawnClaimer(url: string, workerId: string, now: number) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", ...PERMS, CLAIM_LOOP, url, workerId, String(now)],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  const { promise: ready, resolve: markReady } = Promise.withResolvers<void>();
  const stdout = (async () => {
    const dec = new TextDecoder();
    for await (const chunk of child.stdout) {
      text += dec.decode(chunk, { stream: true });
      if (text.startsWith("ready\n")) markReady();
    }
  })();
  const output = Promise.all([
    child.status,
    stdout,
    new Response(child.stderr).text(),
  ]);
  return {
    /** Resolves once the claimer has opened the store; fails if it exits before. */
    ready: Promise.race([
      ready,
      output.then(([status, , stderr]) => {
        throw new Error(`claimer ${workerId} exited ${status.code} before it was ready\n${stderr}`);
      }),
    ]),
    /** Opens the claimer's start gate. */
    start: () => child.stdin.close(),
    /** The ids it claimed. */
    result: output.then(([status, , stderr]) => {
      if (!status.success) throw new Error(`claimer ${workerId} exited ${status.code}\n${stderr}`);
      return JSON.parse(text.slice("ready\n".length)) as string[];
    }),
  };
}

/**
 * A `Deno.test` registrar named `${prefix}: title` whose tests get a fresh database from
 * `newDatabase`, with every connection they open closed afterwards.
 */
export function conformanceTest(
  prefix: string,
  newDatabase: DatabaseFactory,
): (title: string, fn: (ctx: Ctx) => Promise<unknown> | unknown) => void {
  return (title, fn) => {
    Deno.test(`${prefix}: ${title}`, async () => {
      await using db = await newDatabase();
      const opened: Store[] = [];
      const connect = async () => {
        const s = await db.connect();
        opened.push(s);
        return s;
      };
      try {
        await fn({ store: await connect(), connect, url: db.url });
      } finally {
        for (const s of opened) await s.close();
      }
    });
  };
}

/** Registers the whole suite with `Deno.test`, against databases from `newDatabase`. */
export function storeConformance(name: string, newDatabase: DatabaseFactory): void {
  const storeTest = conformanceTest(`store(${name})`, newDatabase);

  // --- enqueue and reading back ---------------------------------------------------------------

  storeTest("enqueue + getJob round-trips every field", async ({ store }) => {
    const spec = newJob("nightly-ü 1", {
      command: `printf '%s\\n' "a b" && echo "ü ✓" | tr a-z A-Z\nexit 0`,
      maxRetries: 7,
      priority: -12,
      runAt: T0 + 86_400_000,
      timeoutMs: 90_000,
      cwd: "/srv/app dir/ü",
      // Parsed, so that __proto__ is an own property, as lib/spec.ts produces it.
      env: JSON.parse(
        '{"NAME":"value with spaces","EMPTY":"","JSON":"{\\"a\\":[1]}","__proto__":"1"}',
      ),
    });
    await store.enqueue([spec], T0 - 5);
    const job = await store.getJob(spec.id);
    assert.ok(job);
    assert.equal(typeof job.seq, "number");
    assert.deepEqual({ ...job, seq: 0 }, {
      seq: 0,
      ...spec,
      state: "pending",
      attempts: 0,
      retryBase: 0,
      createdAt: T0 - 5,
      updatedAt: T0 - 5,
      startedAt: null,
      finishedAt: null,
      exitCode: null,
      error: null,
      workerId: null,
      outputKey: null,
      uniqueKey: null,
      waitingOn: 0,
      queue: "default",
    });
  });

  storeTest("enqueue keeps values that look like other types as they are", async ({ store }) => {
    const specs = [
      newJob("42", { command: "1e3", cwd: "007", env: { N: "1.0", B: "true", Z: "null" } }),
      newJob("null", { env: {} }),
      newJob("x", { priority: 1_000_000, maxRetries: 0, runAt: 0, timeoutMs: 2_592_000_000 }),
      newJob("y", { priority: -1_000_000, runAt: 8_640_000_000_000_000 }),
    ];
    await store.enqueue(specs, T0);
    for (const spec of specs) {
      const job = (await store.getJob(spec.id))!;
      const got: NewJob = {
        id: job.id,
        command: job.command,
        maxRetries: job.maxRetries,
        priority: job.priority,
        runAt: job.runAt,
        timeoutMs: job.timeoutMs,
        cwd: job.cwd,
        env: job.env,
      };
      assert.deepEqual(got, spec, spec.id);
    }
  });

  storeTest("getJob of an unknown id is null", async ({ store }) => {
    assert.equal(await store.getJob("nope"), null);
    await store.enqueue([newJob("a")], T0);
    assert.equal(await store.getJob("A"), null);
    assert.equal(await store.getJob("a "), null);
  });

  storeTest(
    "enqueue order gives increasing seqs, within a batch and across batches",
    async ({ store }) => {
      await store.enqueue([newJob("c"), newJob("a"), newJob("b")], T0);
      await store.enqueue([newJob("0")], T0);
      const seqs = await Promise.all(
        ["c", "a", "b", "0"].map(async (id) => (await store.getJob(id))!.seq),
      );
      for (let i = 1; i < seqs.length; i++) assert.ok(seqs[i] > seqs[i - 1], `seqs ${seqs}`);
    },
  );

  storeTest("enqueue of no jobs stores nothing", async ({ store }) => {
    await store.enqueue([], T0);
    assert.equal(await store.countJobs(), 0);
  });

  storeTest(
    "a duplicate id → ConflictError naming it, and nothing from the batch is stored",
    async ({ store }) => {
      await store.enqueue([newJob("a")], T0);
      await assert.rejects(
        store.enqueue([newJob("b"), newJob("a", { command: "other" }), newJob("c")], T0 + 1),
        (e: unknown) => {
          assert.ok(e instanceof ConflictError, `expected ConflictError, got ${e}`);
          assert.match(e.message, /"a"/);
          assert.doesNotMatch(e.message, /\n/);
          return true;
        },
      );
      assert.equal(await store.countJobs(), 1);
      assert.equal(await store.getJob("b"), null);
      assert.equal(await store.getJob("c"), null);
      const a = (await store.getJob("a"))!;
      assert.equal(a.command, "echo a");
      assert.equal(a.updatedAt, T0);
    },
  );

  storeTest(
    "a duplicate id within one batch → ConflictError, nothing stored",
    async ({ store }) => {
      await assert.rejects(
        store.enqueue([newJob("x"), newJob("y"), newJob("x")], T0),
        (e: unknown) => e instanceof ConflictError && /"x"/.test(e.message),
      );
      assert.equal(await store.countJobs(), 0);
      // The failed batch left nothing behind: the same ids can be enqueued afterwards.
      await store.enqueue([newJob("x"), newJob("y")], T0);
      assert.equal(await store.countJobs(), 2);
    },
  );

  storeTest(
    "listJobs returns jobs in enqueue order, by state, with limit and offset",
    async ({ store }) => {
      const ids = await oneJobPerState(store);
      await store.enqueue([newJob("late")], T0 + 30);
      const all = await store.listJobs({ limit: 100 });
      assert.deepEqual(all.map((j) => j.id), [...JOB_STATES.map((s) => ids[s]), "late"]);
      assert.deepEqual(
        (await store.listJobs({ limit: 2, offset: 1 })).map((j) => j.id),
        [ids.processing, ids.completed],
      );
      assert.deepEqual(
        (await store.listJobs({ state: "pending", limit: 100 })).map((j) => j.id),
        [ids.pending, "late"],
      );
      assert.deepEqual(
        (await store.listJobs({ state: "pending", limit: 1, offset: 1 })).map((j) => j.id),
        ["late"],
      );
      assert.deepEqual(await store.listJobs({ state: "dead", limit: 0 }), []);
      assert.deepEqual(all[0], await store.getJob(all[0].id));
    },
  );

  storeTest("countJobs counts all jobs or those of one state", async ({ store }) => {
    assert.equal(await store.countJobs(), 0);
    await oneJobPerState(store);
    assert.equal(await store.countJobs(), JOB_STATES.length);
    for (const s of JOB_STATES) assert.equal(await store.countJobs(s), 1, s);
  });

  storeTest("another connection sees committed jobs at once", async ({ store, connect }) => {
    const other = await connect();
    await store.enqueue([newJob("a")], T0);
    assert.equal((await other.getJob("a"))?.state, "pending");
  });

  // --- claiming -------------------------------------------------------------------------------

  storeTest(
    "claimNext orders by priority (high first), then run_at, then enqueue order",
    async ({ store }) => {
      await store.enqueue([
        newJob("a", { priority: 0, runAt: T0 }),
        newJob("b", { priority: 5, runAt: T0 + 10 }),
        newJob("c", { priority: 0, runAt: T0 - 100 }),
        newJob("d", { priority: 5, runAt: T0 }),
        newJob("e", { priority: 0, runAt: T0 }),
        newJob("f", { priority: -1, runAt: T0 - 1000 }),
      ], T0 - 1000);
      await store.enqueue([newJob("g", { priority: 0, runAt: T0 })], T0 - 999);
      const order: string[] = [];
      for (let i = 0; i < 7; i++) order.push((await claimOne(store, "w1", T0 + 10)).id);
      assert.deepEqual(order, ["d", "b", "c", "a", "e", "g", "f"]);
      assert.deepEqual(await store.claimNext("w1", T0 + 10), []);
    },
  );

  storeTest("claimNext with a limit returns several jobs, in claim order", async ({ store }) => {
    await store.enqueue([
      newJob("low", { priority: -1 }),
      newJob("later", { runAt: T0 + 5 }),
      newJob("high", { priority: 9 }),
      newJob("first"),
    ], T0);
    const jobs = await store.claimNext("w1", T0 + 5, 3);
    assert.deepEqual(jobs.map((j) => j.id), ["high", "first", "later"]);
    assert.deepEqual((await store.claimNext("w1", T0 + 5, 10)).map((j) => j.id), ["low"]);
  });

  storeTest(
    "claimNext moves a job to processing exactly as transition(claim) says",
    async ({ store }) => {
      await store.enqueue([newJob("a", { runAt: T0 - 50 })], T0 - 100);
      const before = (await store.getJob("a"))!;
      const claimed = await claimOne(store, "w1", T0);
      const next = transition(before, { type: "claim" }, T0);
      assert.deepEqual(claimed, {
        ...before,
        state: next.state,
        attempts: next.attempts,
        workerId: "w1",
        startedAt: T0,
        updatedAt: T0,
        outputKey: claimed.outputKey,
      });
      assert.match(claimed.outputKey ?? "", /^[0-9a-f]{16}$/);
      assert.deepEqual(await store.getJob("a"), claimed);
    },
  );

  storeTest(
    "claimNext skips jobs whose run_at is in the future; run_at = now is ready",
    async ({ store }) => {
      await store.enqueue([newJob("later", { runAt: T0 + 1000, priority: 100 })], T0);
      assert.deepEqual(await store.claimNext("w1", T0), []);
      assert.deepEqual(await store.claimNext("w1", T0 + 999), []);
      assert.equal((await store.getJob("later"))!.state, "pending");
      assert.equal((await claimOne(store, "w1", T0 + 1000)).id, "later");
    },
  );

  storeTest("claimNext takes only pending and failed jobs", async ({ store }) => {
    const ids = await oneJobPerState(store);
    // The failed job's retry is due 2 s after it failed (at T0+20).
    const claimed = await store.claimNext("w2", T0 + 1_000_000, 10);
    assert.deepEqual(claimed.map((j) => j.id).sort(), [ids.failed, ids.pending].sort());
    for (const s of ["completed", "dead", "cancelled"] as const) {
      assert.equal((await store.getJob(ids[s]))!.state, s);
    }
    assert.equal((await store.getJob(ids.processing))!.workerId, "w1");
  });

  storeTest(
    "a failed job is claimed again once its retry is due, with attempts + 1",
    async ({ store }) => {
      await store.enqueue([newJob("a")], T0);
      const failed = await finish(store, await claimOne(store, "w1", T0), T0 + 100, EXIT3);
      assert.equal(failed.state, "failed");
      assert.equal(failed.runAt, T0 + 100 + 2_000);
      assert.deepEqual(await store.claimNext("w1", T0 + 2_099), []);
      const again = await claimOne(store, "w2", T0 + 2_100);
      assert.equal(again.attempts, 2);
      assert.equal(again.workerId, "w2");
      assert.equal(again.startedAt, T0 + 2_100);
      assert.equal(again.finishedAt, null);
    },
  );

  storeTest(
    "two connections claiming in turn never get the same job",
    async ({ store, connect }) => {
      const other = await connect();
      const n = 25;
      await store.enqueue(Array.from({ length: n }, (_, i) => newJob(`j${i}`)), T0);
      const seen: string[] = [];
      for (let round = 0; seen.length < n && round < 2 * n; round++) {
        const [s, w] = round % 2 === 0 ? [store, "w1"] : [other, "w2"];
        const jobs = await s.claimNext(w, T0 + round, 1 + (round % 3));
        for (const j of jobs) {
          assert.equal(j.workerId, w);
          seen.push(j.id);
        }
      }
      assert.equal(seen.length, n);
      assert.equal(new Set(seen).size, n, "a job was claimed twice");
      assert.deepEqual(await store.claimNext("w1", T0 + 1000), []);
      assert.deepEqual(await other.claimNext("w2", T0 + 1000), []);
      assert.equal(await store.countJobs("processing"), n);
    },
  );

  // node:sqlite is synchronous: claims on two connections of one process run one after another
  // however they are awaited. Real concurrency needs processes, as workers are.
  storeTest(
    "claims started together in 4 processes never share a job, and every job is claimed",
    async ({ store, url }) => {
      const n = 400;
      await store.enqueue(Array.from({ length: n }, (_, i) => newJob(`j${i}`)), T0);
      const claimers = Array.from({ length: 4 }, (_, i) => spawnClaimer(url, `w${i}`, T0 + 1));
      try {
        // Open the start gate only once every claimer has its connection, so that they claim
        // at the same time rather than in the order they happened to start.
        await Promise.all(claimers.map((c) => c.ready));
      } finally {
        for (const c of claimers) await c.start();
      }
      const claimed = await Promise.all(claimers.map((c) => c.result));
      const ids = claimed.flat();
      assert.equal(new Set(ids).size, ids.length, "a job was claimed twice");
      assert.deepEqual([...ids].sort(), Array.from({ length: n }, (_, i) => `j${i}`).sort());
      for (const [i, batch] of claimed.entries()) {
        for (const id of batch) assert.equal((await store.getJob(id))!.workerId, `w${i}`);
      }
      assert.equal(await store.countJobs("processing"), n);
    },
  );

  // --- finishing an attempt -------------------------------------------------------------------

  storeTest("finishAttempt records success on the job and as an attempt", async ({ store }) => {
    await store.enqueue([newJob("a")], T0);
    const claimed = await claimOne(store, "w1", T0 + 1);
    const done = await finish(store, claimed, T0 + 5);
    assert.deepEqual(done, {
      ...claimed,
      state: "completed",
      finishedAt: T0 + 5,
      updatedAt: T0 + 5,
      exitCode: 0,
      error: null,
    });
    assert.deepEqual(await store.getJob("a"), done);
    assert.deepEqual(await store.listAttempts("a"), [{
      jobId: "a",
      attempt: 1,
      workerId: "w1",
      startedAt: T0 + 1,
      finishedAt: T0 + 5,
      outcome: "completed",
      exitCode: 0,
      signal: null,
      error: null,
      outputKey: claimed.outputKey,
      note: null,
    }]);
  });

  storeTest(
    "finishAttempt records a failure with its retry time, exit code and error",
    async ({ store }) => {
      await store.enqueue([newJob("a")], T0);
      const claimed = await claimOne(store, "w1", T0 + 1);
      const failed = await finish(store, claimed, T0 + 5, EXIT3);
      assert.deepEqual(failed, {
        ...claimed,
        state: "failed",
        runAt: T0 + 5 + 2_000,
        finishedAt: T0 + 5,
        updatedAt: T0 + 5,
        exitCode: 3,
        error: "boom",
      });
      assert.deepEqual(await store.listAttempts("a"), [{
        jobId: "a",
        attempt: 1,
        workerId: "w1",
        startedAt: T0 + 1,
        finishedAt: T0 + 5,
        outcome: "exited",
        exitCode: 3,
        signal: null,
        error: "boom",
        outputKey: claimed.outputKey,
        note: null,
      }]);
    },
  );

  storeTest(
    "finishAttempt on the last attempt moves the job to dead, run_at unchanged",
    async ({ store }) => {
      await store.enqueue([newJob("a", { maxRetries: 0, runAt: T0 - 7 })], T0 - 10);
      const signalled: AttemptResult = {
        outcome: "signalled",
        exitCode: null,
        signal: "SIGKILL",
        error: "killed by SIGKILL",
      };
      const dead = await finish(store, await claimOne(store, "w1", T0), T0 + 5, signalled);
      assert.equal(dead.state, "dead");
      assert.equal(dead.attempts, 1);
      assert.equal(dead.runAt, T0 - 7);
      assert.equal(dead.exitCode, null);
      assert.equal(dead.error, "killed by SIGKILL");
      const [attempt] = await store.listAttempts("a");
      assert.equal(attempt.outcome, "signalled");
      assert.equal(attempt.signal, "SIGKILL");
      assert.equal(attempt.exitCode, null);
    },
  );

  storeTest(
    "an interrupted run goes back to pending and is recorded as that run",
    async ({ store }) => {
      await store.enqueue([newJob("a")], T0);
      const claimed = await claimOne(store, "w1", T0 + 1);
      const back = await finish(store, claimed, T0 + 5, INTERRUPTED);
      assert.equal(back.state, "pending");
      assert.equal(back.attempts, 0);
      assert.equal(back.runAt, T0 + 5);
      const [attempt] = await store.listAttempts("a");
      assert.equal(attempt.attempt, 1);
      assert.equal(attempt.outcome, "interrupted");
      assert.equal(attempt.signal, "SIGTERM");
      const again = await claimOne(store, "w2", T0 + 6);
      assert.equal(again.attempts, 1, "the interrupted run did not use up a retry");
    },
  );

  storeTest("finishAttempt by another worker → null, nothing written", async ({ store }) => {
    await store.enqueue([newJob("a")], T0);
    const claimed = await claimOne(store, "w1", T0 + 1);
    const next = transition(claimed, { type: "succeed" }, T0 + 5);
    assert.equal(await store.finishAttempt("a", "w2", next, OK, T0 + 5), null);
    assert.deepEqual(await store.getJob("a"), claimed);
    assert.deepEqual(await store.listAttempts("a"), []);
  });

  storeTest(
    "finishAttempt on a job that is not processing → null, nothing written",
    async ({ store }) => {
      const ids = await oneJobPerState(store);
      const next = { state: "completed" as const, attempts: 1, runAt: null };
      for (const s of ["pending", "completed", "failed", "dead", "cancelled"] as const) {
        const before = (await store.getJob(ids[s]))!;
        const attempts = await store.listAttempts(ids[s]);
        // w1 held every claimed one of them last.
        assert.equal(await store.finishAttempt(ids[s], "w1", next, OK, T0 + 500), null, s);
        assert.deepEqual(await store.getJob(ids[s]), before, s);
        assert.deepEqual(await store.listAttempts(ids[s]), attempts, s);
      }
      assert.equal(await store.finishAttempt("nope", "w1", next, OK, T0 + 500), null);
      assert.deepEqual(await store.listAttempts("nope"), []);
    },
  );

  storeTest(
    "a second finishAttempt for the same run → null, one attempt recorded",
    async ({ store }) => {
      await store.enqueue([newJob("a")], T0);
      const claimed = await claimOne(store, "w1", T0 + 1);
      const done = await finish(store, claimed, T0 + 5);
      const next = transition(claimed, { type: "fail", outcome: "exited" }, T0 + 6, POLICY);
      assert.equal(await store.finishAttempt("a", "w1", next, EXIT3, T0 + 6), null);
      assert.deepEqual(await store.getJob("a"), done);
      assert.equal((await store.listAttempts("a")).length, 1);
    },
  );

  storeTest("attempts are listed oldest first, each with its own run number", async ({ store }) => {
    await store.enqueue([newJob("a"), newJob("b")], T0);
    let job = await claimOne(store, "w1", T0);
    job = await finish(store, job, T0 + 10, EXIT3); // retry at T0+2010
    await finish(store, await claimOne(store, "w2", T0 + 20), T0 + 30); // b
    job = await finish(store, await claimOne(store, "w2", T0 + 2_010), T0 + 2_020, LOST);
    assert.equal(job.runAt, T0 + 2_020 + 4_000);
    job = await finish(store, await claimOne(store, "w1", T0 + 6_020), T0 + 6_030);
    assert.equal(job.state, "completed");
    assert.equal(job.attempts, 3);
    const attempts = await store.listAttempts("a");
    assert.deepEqual(
      attempts.map((a) => [a.attempt, a.workerId, a.startedAt - T0, a.finishedAt - T0, a.outcome]),
      [
        [1, "w1", 0, 10, "exited"],
        [2, "w2", 2_010, 2_020, "worker_lost"],
        [3, "w1", 6_020, 6_030, "completed"],
      ],
    );
    assert.equal(attempts[1].error, LOST.error);
    assert.deepEqual((await store.listAttempts("b")).map((a) => a.jobId), ["b"]);
    assert.deepEqual(await store.listAttempts("nope"), []);
  });

  // --- a person's changes ---------------------------------------------------------------------

  storeTest(
    "applyTransition applies cancel and retry when the job is in the expected state",
    async ({ store }) => {
      await store.enqueue([newJob("a", { runAt: T0 + 50 }), newJob("b", { maxRetries: 0 })], T0);
      const cancelled = await apply(store, "a", "cancel", T0 + 5);
      assert.equal(cancelled.state, "cancelled");
      assert.equal(cancelled.runAt, T0 + 50, "cancel leaves run_at unchanged");
      assert.equal(cancelled.updatedAt, T0 + 5);
      assert.deepEqual(await store.getJob("a"), cancelled);

      await finish(store, await claimOne(store, "w1", T0 + 10), T0 + 20, EXIT3);
      assert.equal((await store.getJob("b"))!.state, "dead");
      const retried = await apply(store, "b", "retry", T0 + 30);
      assert.equal(retried.state, "pending");
      assert.equal(retried.attempts, 1, "attempt numbers continue after a retry");
      assert.equal(retried.retryBase, 1, "with a fresh budget");
      assert.equal(retried.runAt, T0 + 30);
      assert.equal(retried.updatedAt, T0 + 30);
      assert.deepEqual(await store.listAttempts("a"), [], "a person's change is not an attempt");
      assert.equal((await store.listAttempts("b")).length, 1);
      assert.equal((await claimOne(store, "w1", T0 + 30)).id, "b");
    },
  );

  storeTest(
    "applyTransition when the job left the expected state → null, nothing written",
    async ({ store }) => {
      await store.enqueue([newJob("a")], T0);
      const pending = (await store.getJob("a"))!;
      const cancel = transition(pending, { type: "cancel" }, T0 + 5);
      // A worker claimed it between the read and the write.
      const claimed = await claimOne(store, "w1", T0 + 1);
      assert.equal(await store.applyTransition("a", pending, cancel, T0 + 5), null);
      assert.deepEqual(await store.getJob("a"), claimed);
      assert.equal(await store.applyTransition("nope", pending, cancel, T0 + 5), null);
      assert.equal(await store.countJobs(), 1);
    },
  );

  storeTest(
    "applyTransition on a job that failed again since it was read → null, nothing written",
    async ({ store }) => {
      await store.enqueue([newJob("a", { maxRetries: 5 })], T0);
      await finish(store, await claimOne(store, "w1", T0 + 1), T0 + 2, EXIT3);
      const read = (await store.getJob("a"))!;
      const retry = transition(read, { type: "retry" }, T0 + 50);
      // Between the read and the write, a worker claimed it and it failed once more: the state is
      // "failed" again but attempts moved on, and the old count must not be written back.
      await finish(store, await claimOne(store, "w1", T0 + 9000), T0 + 9001, EXIT3);
      const now = (await store.getJob("a"))!;
      assert.equal(now.state, "failed");
      assert.equal(await store.applyTransition("a", read, retry, T0 + 9002), null);
      assert.deepEqual(await store.getJob("a"), now);
    },
  );

  // --- counts and schedule --------------------------------------------------------------------

  storeTest("counts gives every state and the scheduled ones", async ({ store }) => {
    const zero: JobCounts = {
      pending: 0,
      processing: 0,
      completed: 0,
      failed: 0,
      dead: 0,
      cancelled: 0,
      scheduled: 0,
      waiting: 0,
    };
    assert.deepEqual(await store.counts(T0), zero);
    await oneJobPerState(store);
    await store.enqueue([newJob("soon", { runAt: T0 + 500 }), newJob("now2")], T0);
    // The failed job's retry is at T0+20+2000.
    assert.deepEqual(await store.counts(T0 + 100), {
      pending: 3,
      processing: 1,
      completed: 1,
      failed: 1,
      dead: 1,
      cancelled: 1,
      scheduled: 2,
      waiting: 0,
    });
    assert.equal((await store.counts(T0 + 500)).scheduled, 1, "run_at = now is not scheduled");
    assert.equal((await store.counts(T0 + 2_020)).scheduled, 0);
  });

  storeTest(
    "counts stay right when one statement moves many jobs, and in one batch of results",
    async ({ store }) => {
      await store.enqueue(Array.from({ length: 300 }, (_, i) => newJob(`m${i}`)), T0);
      const held = await store.claimNext("w1", T0 + 1, 250);
      assert.equal(held.length, 250);
      let c = await store.counts(T0 + 2);
      assert.deepEqual([c.pending, c.processing], [50, 250]);
      const ends = held.map((j, i) => ({
        jobId: j.id,
        next: i % 2
          ? transition(j, { type: "succeed" }, T0 + 3)
          : transition(j, { type: "fail", outcome: "exited" }, T0 + 3, POLICY),
        result: i % 2 ? OK : EXIT3,
      }));
      const r = await store.finishAndClaim("w1", ends, 10, T0 + 3);
      assert.equal(r.claimed.length, 10);
      c = await store.counts(T0 + 4);
      assert.deepEqual([c.pending, c.processing, c.completed, c.failed], [40, 10, 125, 125]);
      assert.equal(await store.countJobs(), 300);
      assert.equal(await store.countJobs(["failed", "completed"]), 250);
      // Failed ones claimed again leave failed; the running ones end in the same call.
      const again = await store.finishAndClaim(
        "w1",
        r.claimed.map((j) => ({
          jobId: j.id,
          next: transition(j, { type: "succeed" }, T0 + 10_000_000),
          result: OK,
        })),
        500,
        T0 + 10_000_000,
      );
      assert.equal(again.claimed.length, 165);
      c = await store.counts(T0 + 10_000_001);
      assert.deepEqual([c.pending, c.processing, c.completed, c.failed], [0, 165, 135, 0]);
    },
  );

  storeTest("nextRunAt is the earliest run_at among pending and failed jobs", async ({ store }) => {
    assert.equal(await store.nextRunAt(), null);
    await store.enqueue([newJob("a", { runAt: T0 + 500 }), newJob("b", { runAt: T0 + 300 })], T0);
    assert.equal(await store.nextRunAt(), T0 + 300);
    await store.enqueue([newJob("c", { runAt: T0 - 10, priority: 9 })], T0);
    assert.equal(await store.nextRunAt(), T0 - 10, "a job that is due already counts");
    // Once c runs (and fails), its retry time counts, not its old run_at.
    await finish(store, await claimOne(store, "w1", T0), T0 + 1, EXIT3);
    assert.equal(await store.nextRunAt(), T0 + 300);
    await claimOne(store, "w1", T0 + 300);
    await claimOne(store, "w1", T0 + 500);
    assert.equal(await store.nextRunAt(), T0 + 1 + 2_000);
    await claimOne(store, "w1", T0 + 2_001);
    assert.equal(await store.nextRunAt(), null, "processing jobs are not waiting");
  });

  storeTest("nextRunAt ignores completed, dead and cancelled jobs", async ({ store }) => {
    const ids = await oneJobPerState(store);
    await claimOne(store, "w2", T0 + 100); // the pending one
    assert.equal(await store.nextRunAt(), T0 + 20 + 2_000); // only the failed one waits
    await apply(store, ids.failed, "cancel", T0 + 200);
    assert.equal(await store.nextRunAt(), null);
  });

  // --- lost workers ---------------------------------------------------------------------------

  storeTest(
    "findStaleJobs finds jobs whose worker's heartbeat is older than the lease",
    async ({ store }) => {
      const lease = 30_000;
      await registerWorker(store, "w1", T0);
      await registerWorker(store, "w2", T0);
      await store.enqueue([newJob("a"), newJob("b"), newJob("c")], T0);
      await claimOne(store, "w1", T0);
      await claimOne(store, "w2", T0);
      await finish(store, await claimOne(store, "w1", T0), T0 + 1); // completed: never stale
      await store.heartbeat("w2", T0 + 20_000);
      assert.deepEqual(await store.findStaleJobs(T0 + lease, lease), [], "heartbeat = now - lease");
      const stale = await store.findStaleJobs(T0 + lease + 1, lease);
      assert.deepEqual(stale.map((s) => [s.job.id, s.workerId]), [["a", "w1"]]);
      assert.deepEqual(stale[0].job, await store.getJob("a"));
      await store.heartbeat("w1", T0 + lease);
      assert.deepEqual(await store.findStaleJobs(T0 + lease + 1, lease), []);
      const later = await store.findStaleJobs(T0 + lease + lease + 1, lease);
      assert.deepEqual(later.map((s) => [s.job.id, s.workerId]).sort(), [["a", "w1"], ["b", "w2"]]);
    },
  );

  storeTest(
    "findStaleJobs finds jobs of a stopped worker, however fresh its heartbeat",
    async ({ store }) => {
      await registerWorker(store, "w1", T0);
      await store.enqueue([newJob("a")], T0);
      await claimOne(store, "w1", T0);
      await store.heartbeat("w1", T0 + 10);
      assert.deepEqual(await store.findStaleJobs(T0 + 10, 30_000), []);
      await store.markWorkerStopped("w1", T0 + 10);
      const stale = await store.findStaleJobs(T0 + 10, 30_000);
      assert.deepEqual(stale.map((s) => [s.job.id, s.workerId]), [["a", "w1"]]);
    },
  );

  storeTest(
    "findStaleJobs finds jobs held by a worker that never registered",
    async ({ store }) => {
      await store.enqueue([newJob("a")], T0);
      await claimOne(store, "ghost", T0);
      const stale = await store.findStaleJobs(T0, 30_000);
      assert.deepEqual(stale.map((s) => [s.job.id, s.workerId]), [["a", "ghost"]]);
    },
  );

  storeTest(
    "a rescue never overwrites a job its worker completed meanwhile",
    async ({ store, connect }) => {
      const worker = await connect();
      await registerWorker(store, "w1", T0);
      await store.enqueue([newJob("a")], T0);
      const claimed = await claimOne(worker, "w1", T0);
      const [stale] = await store.findStaleJobs(T0 + 60_000, 30_000);
      assert.equal(stale.job.id, "a");
      // The slow worker finishes between the rescuer's read and its write.
      const done = await finish(worker, claimed, T0 + 60_001);
      const lost = transition(stale.job, { type: "fail", outcome: "worker_lost" }, T0 + 60_002);
      assert.equal(
        await store.finishAttempt("a", stale.workerId, lost, LOST, T0 + 60_002),
        null,
      );
      assert.deepEqual(await store.getJob("a"), done);
      assert.deepEqual((await store.listAttempts("a")).map((a) => a.outcome), ["completed"]);
    },
  );

  storeTest(
    "a lost worker's late result never overwrites the job after a rescue",
    async ({ store, connect }) => {
      const slow = await connect();
      await registerWorker(store, "w1", T0);
      await registerWorker(store, "w2", T0 + 60_000);
      await store.enqueue([newJob("a")], T0);
      const first = await claimOne(slow, "w1", T0);
      const [stale] = await store.findStaleJobs(T0 + 60_000, 30_000);
      const rescued = await store.finishAttempt(
        "a",
        stale.workerId,
        transition(stale.job, { type: "fail", outcome: "worker_lost" }, T0 + 60_000, POLICY),
        LOST,
        T0 + 60_000,
      );
      assert.equal(rescued?.state, "failed");
      assert.equal(rescued?.error, LOST.error);
      const second = await claimOne(store, "w2", T0 + 62_000);
      // w1 comes back from the dead with the result of its run.
      const late = transition(first, { type: "succeed" }, T0 + 63_000);
      assert.equal(await slow.finishAttempt("a", "w1", late, OK, T0 + 63_000), null);
      assert.deepEqual(await store.getJob("a"), second);
      assert.deepEqual(
        (await store.listAttempts("a")).map((a) => [a.attempt, a.workerId, a.outcome]),
        [[1, "w1", "worker_lost"]],
      );
    },
  );

  storeTest("jobsHeldBy lists the processing jobs of one worker", async ({ store }) => {
    await store.enqueue([newJob("a"), newJob("b"), newJob("c"), newJob("d")], T0);
    await claimOne(store, "w1", T0);
    await claimOne(store, "w2", T0);
    await claimOne(store, "w1", T0);
    await finish(store, await claimOne(store, "w1", T0), T0 + 1);
    const held = await store.jobsHeldBy("w1");
    assert.deepEqual(held.map((j) => j.id).sort(), ["a", "c"]);
    for (const j of held) assert.deepEqual(j, await store.getJob(j.id));
    assert.deepEqual((await store.jobsHeldBy("w2")).map((j) => j.id), ["b"]);
    assert.deepEqual(await store.jobsHeldBy("w3"), []);
  });

  // --- purge ----------------------------------------------------------------------------------

  storeTest(
    "purge deletes only jobs of the given state that finished before the cutoff",
    async ({ store }) => {
      await store.enqueue(
        ["old", "new", "dead", "pend"].map((id) =>
          newJob(id, { maxRetries: id === "dead" ? 0 : 3 })
        ),
        T0,
      );
      await finish(store, await claimOne(store, "w1", T0), T0 + 10);
      await finish(store, await claimOne(store, "w1", T0), T0 + 20);
      await finish(store, await claimOne(store, "w1", T0), T0 + 10, EXIT3);
      assert.equal((await store.getJob("dead"))!.state, "dead");

      assert.deepEqual(await store.purge("completed", T0 + 10), [], "finished at the cutoff: kept");
      assert.deepEqual((await store.purge("completed", T0 + 11)).map((j) => j.id), ["old"]);
      assert.equal(await store.getJob("old"), null);
      assert.deepEqual(await store.listAttempts("old"), [], "its attempts went with it");
      assert.equal((await store.getJob("new"))?.state, "completed");
      assert.equal((await store.listAttempts("new")).length, 1);
      assert.equal((await store.getJob("dead"))?.state, "dead");
      assert.equal((await store.listAttempts("dead")).length, 1);
      assert.equal((await store.getJob("pend"))?.state, "pending");
      assert.equal(await store.countJobs(), 3);
    },
  );

  storeTest("purge returns every deleted job with its runs' output keys", async ({ store }) => {
    await store.enqueue([newJob("a", { maxRetries: 0 }), newJob("b", { maxRetries: 0 })], T0);
    const a = await finish(store, await claimOne(store, "w1", T0), T0 + 1, EXIT3);
    const b = await finish(store, await claimOne(store, "w1", T0), T0 + 2, EXIT3);
    const deleted = (await store.purge("dead", T0 + 100)).sort((x, y) => x.id < y.id ? -1 : 1);
    assert.deepEqual(deleted, [
      { id: "a", outputKeys: [a.outputKey] },
      { id: "b", outputKeys: [b.outputKey] },
    ]);
    assert.equal(await store.countJobs(), 0);
    assert.deepEqual(await store.purge("dead", T0 + 100), []);
  });

  storeTest(
    "purge of cancelled jobs counts the cancel time for jobs that never ran",
    async ({ store }) => {
      await store.enqueue([newJob("a"), newJob("b")], T0);
      const a = await apply(store, "a", "cancel", T0 + 10);
      await apply(store, "b", "cancel", T0 + 30);
      assert.deepEqual(await store.purge("cancelled", T0 + 20), [{ id: a.id, outputKeys: [] }]);
      assert.equal((await store.getJob("b"))?.state, "cancelled");
    },
  );

  storeTest("every claim names its run's output with a fresh key", async ({ store }) => {
    await store.enqueue([newJob("a", { maxRetries: 2 }), newJob("b", { runAt: T0 + 5_000 })], T0);
    const first = await claimOne(store, "w1", T0);
    assert.equal(first.id, "a");
    assert.match(first.outputKey ?? "", /^[0-9a-f]{16}$/);
    assert.deepEqual(await store.outputKeys("a"), [{ attempt: 1, key: first.outputKey }]);
    const noted = { ...EXIT3, note: "output not stored: disk full" };
    const failed = await store.finishAttempt(
      "a",
      "w1",
      transition(first, { type: "fail", outcome: "exited" }, T0 + 1, POLICY),
      noted,
      T0 + 1,
    );
    assert.equal(failed?.outputKey, first.outputKey, "the key stays with the job after the run");
    const [attempt1] = await store.listAttempts("a");
    assert.equal(attempt1.outputKey, first.outputKey);
    assert.equal(attempt1.note, "output not stored: disk full");
    const second = (await store.claimNext("w2", T0 + 10_000))[0];
    assert.equal(second.id, "a", "a's retry was due before b");
    assert.notEqual(second.outputKey, first.outputKey, "a new run never shares its output");
    assert.deepEqual(await store.outputKeys("a"), [
      { attempt: 1, key: first.outputKey },
      { attempt: 2, key: second.outputKey },
    ]);
    const other = await claimOne(store, "w3", T0 + 10_000);
    assert.notEqual(other.outputKey, second.outputKey);
    assert.deepEqual(await store.outputKeys("nope"), []);
    assert.equal((await store.getJob("b"))?.outputKey, other.outputKey);
  });

  storeTest(
    "output is stored per run, trimmed to its cap, and read from an offset",
    async ({ store, connect }) => {
      await store.enqueue([newJob("a")], T0);
      const a = await claimOne(store, "w1", T0);
      const key = a.outputKey!;
      const bytes = (s: string) => new TextEncoder().encode(s);
      const text = (p: { offset: number; data: Uint8Array }[]) =>
        p.map((x) => `${x.offset}:${new TextDecoder().decode(x.data)}`);
      assert.deepEqual(await store.readOutput(key), []);
      await store.appendOutput("a", key, { offset: 0, data: bytes("hello "), capBytes: 10 });
      await store.appendOutput("a", key, { offset: 6, data: bytes("wor"), capBytes: 10 });
      const other = await connect();
      assert.deepEqual(text(await other.readOutput(key)), ["0:hello ", "6:wor"]);
      assert.deepEqual(text(await other.readOutput(key, 7)), ["6:wor"], "pieces ending after 7");
      assert.deepEqual(await other.readOutput(key, 9), []);
      // Past the cap, pieces wholly before the last 10 bytes go.
      await store.appendOutput("a", key, { offset: 9, data: bytes("ld and more"), capBytes: 10 });
      assert.deepEqual(text(await store.readOutput(key)), ["9:ld and more"]);
      // The last piece can come with the result, in the same commit.
      const done = await store.finishAttempt(
        "a",
        "w1",
        transition(a, { type: "succeed" }, T0 + 5),
        { ...OK, output: { offset: 20, data: bytes("!"), capBytes: 10 } },
        T0 + 5,
      );
      assert.equal(done?.state, "completed");
      assert.deepEqual(text(await store.readOutput(key)), ["9:ld and more", "20:!"]);
      // It goes with its job.
      assert.equal((await store.purge("completed", T0 + 10)).length, 1);
      assert.deepEqual(await store.readOutput(key), []);
    },
  );

  storeTest(
    "requestStop reaches the supervisors of one host, or of all; now beats graceful",
    async ({ store }) => {
      const reg = (id: string, host: string, supervisorPid: number) =>
        store.registerWorker({ id, pid: 1, host, supervisorPid, startedAt: T0, heartbeatAt: T0 });
      await reg("a1", "hostA", 10);
      await reg("a2", "hostA", 11);
      await reg("b1", "hostB", 20);
      assert.equal(await store.stopRequestFor("hostA", 10), null);
      const asked = await store.requestStop({ host: "hostA" }, "graceful", T0 + 1);
      assert.deepEqual(asked.map((w) => w.id).sort(), ["a1", "a2"]);
      assert.equal(await store.stopRequestFor("hostA", 10), "graceful");
      assert.equal(await store.stopRequestFor("hostA", 11), "graceful");
      assert.equal(await store.stopRequestFor("hostB", 20), null, "another host is left alone");
      await store.requestStop({}, "now", T0 + 2);
      assert.equal(await store.stopRequestFor("hostB", 20), "now");
      assert.equal(await store.stopRequestFor("hostA", 10), "now", "now beats graceful");
      await store.requestStop({}, "graceful", T0 + 3);
      assert.equal(await store.stopRequestFor("hostA", 10), "now", "never the other way");
      await store.markWorkerStopped("b1", T0 + 4);
      assert.equal(await store.stopRequestFor("hostB", 20), null, "stopped workers ask nothing");
      await reg("a1", "hostA", 10);
      await store.markWorkerStopped("a2", T0 + 5);
      assert.equal(await store.stopRequestFor("hostA", 10), null, "registering again clears it");
    },
  );

  storeTest(
    "a store that is still where it was opened passes assertSameStore",
    async ({ store }) => {
      await store.assertSameStore();
    },
  );

  storeTest("a purged id can be enqueued again, without the old attempts", async ({ store }) => {
    await store.enqueue([newJob("a")], T0);
    await finish(store, await claimOne(store, "w1", T0), T0 + 1);
    await store.purge("completed", T0 + 2);
    await store.enqueue([newJob("a")], T0 + 3);
    assert.equal((await store.getJob("a"))?.state, "pending");
    assert.deepEqual(await store.listAttempts("a"), []);
  });

  // --- workers --------------------------------------------------------------------------------

  storeTest(
    "registerWorker + listWorkers, with the current job derived from the jobs",
    async ({ store }) => {
      assert.deepEqual(await store.listWorkers(), []);
      await registerWorker(store, "w1", T0, 101);
      await registerWorker(store, "w2", T0 + 1, 102);
      assert.deepEqual(await store.listWorkers(), [
        {
          id: "w1",
          pid: 101,
          host: "testhost",
          supervisorPid: 4000,
          startedAt: T0,
          heartbeatAt: T0,
          stoppingAt: null,
          stoppedAt: null,
          currentJob: null,
          runningJobs: 0,
        },
        {
          id: "w2",
          pid: 102,
          host: "testhost",
          supervisorPid: 4000,
          startedAt: T0 + 1,
          heartbeatAt: T0 + 1,
          stoppingAt: null,
          stoppedAt: null,
          currentJob: null,
          runningJobs: 0,
        },
      ]);
      await store.enqueue([newJob("a"), newJob("b")], T0);
      const a = await claimOne(store, "w2", T0 + 2);
      const current = async () =>
        Object.fromEntries((await store.listWorkers()).map((w) => [w.id, w.currentJob]));
      assert.deepEqual(await current(), { w1: null, w2: "a" });
      await finish(store, a, T0 + 3);
      assert.deepEqual(await current(), { w1: null, w2: null });
      await claimOne(store, "w1", T0 + 4);
      assert.deepEqual(await current(), { w1: "b", w2: null });
      // A worker running several jobs: the one it started first, and how many.
      await store.enqueue([newJob("c"), newJob("d")], T0 + 5);
      assert.equal((await store.claimNext("w2", T0 + 6, 2)).length, 2);
      const w2 = (await store.listWorkers()).find((w) => w.id === "w2")!;
      assert.equal(w2.currentJob, "c");
      assert.equal(w2.runningJobs, 2);
    },
  );

  storeTest("heartbeat renews one worker's lease", async ({ store }) => {
    await registerWorker(store, "w1", T0);
    await registerWorker(store, "w2", T0);
    await store.heartbeat("w1", T0 + 5_000);
    const beats = Object.fromEntries((await store.listWorkers()).map((w) => [w.id, w.heartbeatAt]));
    assert.deepEqual(beats, { w1: T0 + 5_000, w2: T0 });
    await store.heartbeat("unknown", T0 + 6_000);
    assert.equal((await store.listWorkers()).length, 2, "a heartbeat registers nothing");
  });

  storeTest("a stopped worker is listed only with all", async ({ store }) => {
    await registerWorker(store, "w1", T0);
    await registerWorker(store, "w2", T0 + 1);
    await store.markWorkerStopped("w1", T0 + 50);
    assert.deepEqual((await store.listWorkers()).map((w) => w.id), ["w2"]);
    const all = await store.listWorkers({ all: true });
    assert.deepEqual(all.map((w) => [w.id, w.stoppedAt]).sort(), [["w1", T0 + 50], ["w2", null]]);
  });

  storeTest("registering a known worker id again refreshes it", async ({ store }) => {
    await registerWorker(store, "w1", T0, 101);
    await store.markWorkerStopped("w1", T0 + 50);
    await registerWorker(store, "w1", T0 + 100, 202);
    const [w] = await store.listWorkers();
    assert.equal(w.id, "w1");
    assert.equal(w.pid, 202);
    assert.equal(w.heartbeatAt, T0 + 100);
    assert.equal(w.stoppedAt, null);
    assert.equal((await store.listWorkers({ all: true })).length, 1);
  });

  // --- config ---------------------------------------------------------------------------------

  storeTest("config values are set, replaced and unset", async ({ store, connect }) => {
    assert.deepEqual(await store.getConfig(), {});
    await store.setConfig("max-retries", "5");
    await store.setConfig("backoff-base", "0.5");
    await store.setConfig("max-retries", "6");
    assert.deepEqual(await store.getConfig(), { "max-retries": "6", "backoff-base": "0.5" });
    const other = await connect();
    assert.deepEqual(await other.getConfig(), { "max-retries": "6", "backoff-base": "0.5" });
    await store.setConfig("max-retries", null);
    assert.deepEqual(await store.getConfig(), { "backoff-base": "0.5" });
    await store.setConfig("never-set", null);
    assert.deepEqual(await other.getConfig(), { "backoff-base": "0.5" });
  });

  // --- waiting for changes --------------------------------------------------------------------

  storeTest(
    "waitForChange returns at once when another connection committed since the last wait",
    async ({ store, connect }) => {
      const other = await connect();
      await store.waitForChange(1);
      await other.enqueue([newJob("a")], T0);
      const started = performance.now();
      await store.waitForChange(10_000);
      assert.ok(performance.now() - started < 5_000, "the commit woke the waiter");
    },
  );

  storeTest("waitForChange returns when aborted, and after maxWaitMs", async ({ store }) => {
    const abort = new AbortController();
    const started = performance.now();
    const waiting = store.waitForChange(10_000, abort.signal);
    abort.abort();
    await waiting;
    await store.waitForChange(5);
    assert.ok(performance.now() - started < 5_000);
  });

  // --- finishAndClaim -------------------------------------------------------------------------

  storeTest(
    "finishAndClaim records the result and claims the next ready job",
    async ({ store }) => {
      await store.enqueue([newJob("a"), newJob("b"), newJob("later", { runAt: T0 + 9000 })], T0);
      const a = await claimOne(store, "w1", T0 + 10);
      const r = await store.finishAndClaim(
        "w1",
        [{ jobId: a.id, next: transition(a, { type: "succeed" }, T0 + 20), result: OK }],
        1,
        T0 + 20,
      );
      assert.equal(r.finished[0]?.state, "completed");
      assert.equal(r.claimed.length, 1);
      assert.equal(r.claimed[0].id, "b");
      assert.equal(r.claimed[0].state, "processing");
      assert.equal(r.claimed[0].workerId, "w1");
      assert.equal(r.claimed[0].attempts, 1);
      assert.equal(r.claimed[0].startedAt, T0 + 20);
      assert.deepEqual((await store.listAttempts("a")).map((x) => x.outcome), ["completed"]);
      const b = (await store.getJob("b"))!;
      const r2 = await store.finishAndClaim(
        "w1",
        [{ jobId: "b", next: transition(b, { type: "succeed" }, T0 + 30), result: OK }],
        1,
        T0 + 30,
      );
      assert.equal(r2.finished[0]?.state, "completed");
      assert.deepEqual(r2.claimed, [], "the job due at T0+9000 is not ready at T0+30");
    },
  );

  storeTest("finishAndClaim whose guard fails writes nothing for that job", async ({ store }) => {
    await store.enqueue([newJob("a"), newJob("b")], T0);
    const a = await claimOne(store, "w1", T0 + 10);
    // Rescued meanwhile: w1 no longer holds "a".
    await store.finishAttempt(
      "a",
      "w1",
      transition(a, { type: "fail", outcome: "worker_lost" }, T0 + 15, POLICY),
      LOST,
      T0 + 15,
    );
    const before = await store.getJob("a");
    const r = await store.finishAndClaim(
      "w1",
      [{ jobId: "a", next: transition(a, { type: "succeed" }, T0 + 20), result: OK }],
      1,
      T0 + 20,
    );
    assert.deepEqual(r.finished, [null]);
    assert.deepEqual(await store.getJob("a"), before);
    assert.deepEqual((await store.listAttempts("a")).map((x) => x.outcome), ["worker_lost"]);
    assert.equal(r.claimed[0]?.id, "b");
  });

  storeTest(
    "finishAndClaim records several results, each under its own guard, and claims up to the limit",
    async ({ store }) => {
      await store.enqueue(["a", "b", "c", "d", "e", "f"].map((id) => newJob(id)), T0);
      const held = await store.claimNext("w1", T0 + 10, 3);
      assert.deepEqual(held.map((j) => j.id), ["a", "b", "c"]);
      const [a, b, c] = held;
      // "b" was rescued meanwhile: its result must be dropped, the others kept.
      await store.finishAttempt(
        "b",
        "w1",
        transition(b, { type: "fail", outcome: "worker_lost" }, T0 + 15, POLICY),
        LOST,
        T0 + 15,
      );
      const r = await store.finishAndClaim(
        "w1",
        [
          { jobId: "a", next: transition(a, { type: "succeed" }, T0 + 20), result: OK },
          { jobId: "b", next: transition(b, { type: "succeed" }, T0 + 20), result: OK },
          {
            jobId: "c",
            next: transition(c, { type: "fail", outcome: "exited" }, T0 + 20, POLICY),
            result: EXIT3,
          },
        ],
        2,
        T0 + 20,
      );
      assert.deepEqual(r.finished.map((j) => j?.state ?? null), ["completed", null, "failed"]);
      // "b" came back as failed (worker_lost) and is due later; d and e are next.
      assert.deepEqual(r.claimed.map((j) => j.id), ["d", "e"]);
      assert.ok(r.claimed.every((j) => j.state === "processing" && j.workerId === "w1"));
      assert.deepEqual((await store.listAttempts("b")).map((x) => x.outcome), ["worker_lost"]);
      assert.deepEqual((await store.listAttempts("c")).map((x) => x.outcome), ["exited"]);
      const none = await store.finishAndClaim("w1", [], 0, T0 + 30);
      assert.deepEqual(none, { finished: [], claimed: [] });
      assert.equal((await store.getJob("f"))?.state, "pending");
    },
  );

  storeTest("assertWritable passes on a writable store and changes nothing", async ({ store }) => {
    await store.enqueue([newJob("a")], T0);
    const before = await store.getJob("a");
    await store.assertWritable();
    assert.deepEqual(await store.getJob("a"), before);
    assert.equal(await store.countJobs(), 1);
  });

  // --- cancelling a running job, removing one, finding jobs ------------------------------------

  storeTest(
    "cancelRunning moves the run's job to cancelled and records the run as cancelled",
    async ({ store }) => {
      await store.enqueue([newJob("a", { maxRetries: 1 })], T0);
      await finish(store, await claimOne(store, "w1", T0 + 1), T0 + 2, EXIT3);
      const running = await claimOne(store, "w1", T0 + 5000);
      assert.equal(running.attempts, 2);
      const next = transition(running, { type: "cancel" }, T0 + 5010);
      const saved = await store.cancelRunning("a", "w1", 2, next, "stopped by hand", T0 + 5010);
      assert.ok(saved);
      assert.equal(saved.state, "cancelled");
      assert.equal(saved.attempts, 2);
      assert.equal(saved.finishedAt, T0 + 5010);
      assert.equal(saved.updatedAt, T0 + 5010);
      assert.equal(saved.exitCode, null);
      assert.equal(saved.error, "stopped by hand");
      assert.deepEqual(await store.getJob("a"), saved);
      assert.deepEqual(
        (await store.listAttempts("a")).map((x) => [x.attempt, x.outcome, x.workerId, x.error]),
        [[1, "exited", "w1", "boom"], [2, "cancelled", "w1", "stopped by hand"]],
      );
      const [, cancelled] = await store.listAttempts("a");
      assert.equal(cancelled.startedAt, T0 + 5000);
      assert.equal(cancelled.finishedAt, T0 + 5010);
      assert.equal(cancelled.exitCode, null);
      assert.equal(cancelled.signal, null);
      assert.equal((await store.counts(T0 + 5010)).cancelled, 1);
      assert.equal((await store.counts(T0 + 5010)).processing, 0);
      // The worker's own report comes later and loses: its guard no longer matches.
      const late = transition(running, { type: "succeed" }, T0 + 5020);
      assert.equal(await store.finishAttempt("a", "w1", late, OK, T0 + 5020), null);
      assert.deepEqual(await store.getJob("a"), saved);
      assert.equal((await store.listAttempts("a")).length, 2);
      assert.deepEqual(await store.claimNext("w1", T0 + 99_999), [], "a cancelled job never runs");
    },
  );

  storeTest(
    "cancelRunning whose guard fails (other worker, other run, not processing) writes nothing",
    async ({ store }) => {
      await store.enqueue([newJob("a", { maxRetries: 3 }), newJob("p", { runAt: T0 + 1e9 })], T0);
      const first = await claimOne(store, "w1", T0 + 1);
      const cancel = transition(first, { type: "cancel" }, T0 + 2);
      // Another worker's id, or a run number the job is not on: no match.
      assert.equal(await store.cancelRunning("a", "w2", 1, cancel, "x", T0 + 2), null);
      assert.equal(await store.cancelRunning("a", "w1", 2, cancel, "x", T0 + 2), null);
      assert.deepEqual(await store.getJob("a"), first);
      // The run the caller read ended and the same worker runs the job again: a different run.
      await finish(store, first, T0 + 3, EXIT3);
      const second = await claimOne(store, "w1", T0 + 10_000);
      assert.equal(await store.cancelRunning("a", "w1", 1, cancel, "x", T0 + 10_001), null);
      assert.deepEqual(await store.getJob("a"), second);
      // Not processing at all, and no such job.
      const pending = (await store.getJob("p"))!;
      const p = { ...transition(pending, { type: "cancel" }, T0 + 5) };
      assert.equal(await store.cancelRunning("p", "w1", 0, p, "x", T0 + 5), null);
      assert.equal((await store.getJob("p"))!.state, "pending");
      assert.equal(await store.cancelRunning("nope", "w1", 1, p, "x", T0 + 5), null);
      assert.deepEqual((await store.listAttempts("a")).map((x) => x.outcome), ["exited"]);
      assert.deepEqual(await store.listAttempts("p"), []);
    },
  );

  storeTest(
    "two cancelRunning calls for one run: exactly one wins, one attempt is recorded",
    async ({ store, connect }) => {
      const other = await connect();
      await store.enqueue([newJob("a")], T0);
      const job = await claimOne(store, "w1", T0 + 1);
      const next = transition(job, { type: "cancel" }, T0 + 2);
      const results = await Promise.all([
        store.cancelRunning("a", "w1", 1, next, "one", T0 + 2),
        other.cancelRunning("a", "w1", 1, next, "two", T0 + 2),
      ]);
      assert.equal(results.filter((r) => r !== null).length, 1);
      assert.equal((await store.listAttempts("a")).length, 1);
    },
  );

  storeTest("removeJob deletes a job in one of the given states, with its history", async (
    { store },
  ) => {
    const ids = await oneJobPerState(store);
    await apply(store, ids.dead, "retry", T0 + 30);
    await finish(store, await claimOne(store, "w1", T0 + 40), T0 + 50, EXIT3);
    assert.equal((await store.getJob(ids.dead))!.state, "dead");
    const finished = ["completed", "dead", "cancelled"] as const;
    for (const state of ["pending", "processing", "failed"] as const) {
      assert.equal(await store.removeJob(ids[state], finished), null, state);
      assert.equal((await store.getJob(ids[state]))?.state, state, `${state} kept`);
    }
    assert.equal(await store.removeJob("nope", finished), null);
    const before = await store.getJob(ids.dead);
    const removed = await store.removeJob(ids.dead, finished);
    assert.deepEqual(removed, before, "returns the deleted job");
    assert.equal(await store.getJob(ids.dead), null);
    assert.deepEqual(await store.listAttempts(ids.dead), []);
    assert.deepEqual(await store.listRetries(ids.dead), []);
    assert.equal(await store.removeJob(ids.dead, finished), null, "only once");
    assert.ok(await store.removeJob(ids.completed, ["completed"]));
    assert.equal(await store.removeJob(ids.cancelled, []), null, "no state allowed: nothing");
    const counts = await store.counts(T0 + 60);
    assert.equal(counts.dead, 0);
    assert.equal(counts.completed, 0);
    assert.equal(counts.cancelled, 1);
    assert.equal(await store.countJobs(), JOB_STATES.length - 2);
    // The id is free again.
    await store.enqueue([newJob(ids.dead)], T0 + 70);
    assert.equal((await store.getJob(ids.dead))!.attempts, 0);
  });

  storeTest(
    "a retry from dead or cancelled keeps attempt numbers going and is kept as a retry mark",
    async ({ store }) => {
      await store.enqueue([
        newJob("d", { maxRetries: 1, priority: 1 }),
        newJob("x", { runAt: T0 + 1e9 }),
      ], T0);
      for (const t of [T0 + 1, T0 + 10_000]) {
        await finish(store, await claimOne(store, "w1", t), t + 1, EXIT3);
      }
      assert.equal((await store.getJob("d"))!.state, "dead");
      await apply(store, "d", "retry", T0 + 20_000);
      await apply(store, "x", "cancel", T0 + 20_001);
      await apply(store, "x", "retry", T0 + 20_002);
      // Runs 3 and 4 use the fresh budget of two; the backoff restarts at 2^1 s.
      const third = await claimOne(store, "w1", T0 + 20_010);
      assert.equal(third.attempts, 3);
      const failed = await finish(store, third, T0 + 20_011, EXIT3);
      assert.equal(failed.state, "failed");
      assert.equal(failed.runAt, T0 + 20_011 + 2_000);
      const fourth = await claimOne(store, "w1", T0 + 30_000);
      assert.equal(fourth.attempts, 4);
      assert.equal((await finish(store, fourth, T0 + 30_001, EXIT3)).state, "dead");
      assert.deepEqual((await store.listAttempts("d")).map((a) => a.attempt), [1, 2, 3, 4]);
      assert.deepEqual(await store.listRetries("d"), [
        { jobId: "d", afterAttempt: 2, fromState: "dead", retriedAt: T0 + 20_000 },
      ]);
      assert.deepEqual(await store.listRetries("x"), [
        { jobId: "x", afterAttempt: 0, fromState: "cancelled", retriedAt: T0 + 20_002 },
      ]);
      assert.deepEqual(await store.listRetries("nope"), []);
      // A failed job's retry keeps its budget: no mark.
      await store.enqueue([newJob("f")], T0);
      await finish(store, await claimOne(store, "w1", T0 + 40_000), T0 + 40_001, EXIT3);
      const f = await apply(store, "f", "retry", T0 + 40_002);
      assert.equal(f.retryBase, 0);
      assert.deepEqual(await store.listRetries("f"), []);
      // Purging removes the marks with the job.
      assert.equal(await store.countPurgeable("dead", T0 + 40_000), 1);
      await store.purge("dead", T0 + 40_000);
      assert.deepEqual(await store.listRetries("d"), []);
    },
  );

  storeTest("countPurgeable counts what purge would delete, and deletes nothing", async (
    { store },
  ) => {
    await store.enqueue([newJob("old"), newJob("new"), newJob("p", { runAt: T0 + 1e9 })], T0);
    await finish(store, await claimOne(store, "w1", T0 + 1), T0 + 10);
    await finish(store, await claimOne(store, "w1", T0 + 11), T0 + 20);
    assert.equal(await store.countPurgeable("completed", T0 + 10), 0, "at the cutoff: kept");
    assert.equal(await store.countPurgeable("completed", T0 + 11), 1);
    assert.equal(await store.countPurgeable("completed", T0 + 21), 2);
    assert.equal(await store.countPurgeable("pending", T0 + 21), 1);
    assert.equal(await store.countPurgeable("dead", T0 + 21), 0);
    assert.equal(await store.countJobs(), 3);
    assert.equal(
      (await store.purge("completed", T0 + 11)).length,
      1,
      "purge with the same cutoff deletes as many",
    );
  });

  storeTest("listJobs newest first, by several states, and countJobs of several", async (
    { store },
  ) => {
    const ids = await oneJobPerState(store);
    const all = await store.listJobs({ limit: 100 });
    const newest = await store.listJobs({ limit: 100, newestFirst: true });
    assert.deepEqual(newest.map((j) => j.id), all.map((j) => j.id).reverse());
    assert.deepEqual(
      (await store.listJobs({ limit: 2, offset: 1, newestFirst: true })).map((j) => j.id),
      newest.slice(1, 3).map((j) => j.id),
    );
    const dl = await store.listJobs({ states: ["dead", "failed"], limit: 100, newestFirst: true });
    assert.deepEqual(dl.map((j) => j.id), [ids.dead, ids.failed]);
    assert.deepEqual(await store.listJobs({ states: [], limit: 100 }), []);
    assert.deepEqual(
      (await store.listJobs({ state: "dead", states: ["dead", "failed"], limit: 9 })).map((j) =>
        j.id
      ),
      [ids.dead],
    );
    assert.equal(await store.countJobs(["dead", "failed"]), 2);
    assert.equal(await store.countJobs([]), 0);
    assert.equal(await store.countJobs([...JOB_STATES]), JOB_STATES.length);
  });

  storeTest(
    "listJobs search finds text in id, command or error, in any ASCII case, % and _ literal",
    async ({ store }) => {
      await store.enqueue([
        newJob("backup-nightly", { command: "tar cf /x" }),
        newJob("b2", { command: "./BackUp.sh --full" }),
        newJob("b3", { command: "echo 100% done_ok", maxRetries: 0 }),
        newJob("b4", { command: "echo plain", runAt: T0 + 1e9 }),
      ], T0);
      await finish(store, await claimOne(store, "w1", T0 + 1), T0 + 2);
      await finish(store, await claimOne(store, "w1", T0 + 3), T0 + 4);
      const b3 = await claimOne(store, "w1", T0 + 5);
      await finish(store, b3, T0 + 6, { ...EXIT3, error: "Disk FULL on /backup" });
      const find = async (search: string, more: Partial<ListOptions> = {}) =>
        (await store.listJobs({ search, limit: 100, ...more })).map((j) => j.id);
      assert.deepEqual(await find("backup"), ["backup-nightly", "b2", "b3"]);
      assert.deepEqual(await find("BACKUP", { newestFirst: true }), ["b3", "b2", "backup-nightly"]);
      assert.deepEqual(await find("disk full"), ["b3"]);
      assert.deepEqual(await find("100%"), ["b3"]);
      assert.deepEqual(await find("%"), ["b3"], "% is a character, not a wildcard");
      assert.deepEqual(await find("d_ne"), [], "_ is a character, not a wildcard");
      assert.deepEqual(await find("done_"), ["b3"]);
      assert.deepEqual(await find("\\"), []);
      assert.deepEqual(await find("backup", { states: ["completed"] }), ["backup-nightly", "b2"]);
      assert.deepEqual(await find("backup", { limit: 1, offset: 1 }), ["b2"]);
      assert.deepEqual(await find("nothing like it"), []);
      assert.deepEqual(await find(""), ["backup-nightly", "b2", "b3", "b4"], "empty: no filter");
    },
  );

  storeTest(
    "markWorkerStopping records the first graceful stop; registering again clears it",
    async ({ store }) => {
      await registerWorker(store, "w1", T0);
      await registerWorker(store, "w2", T0 + 1);
      await store.markWorkerStopping("w1", T0 + 10);
      await store.markWorkerStopping("w1", T0 + 20); // a second request keeps the first time
      await store.markWorkerStopping("unknown", T0 + 20);
      const stopping = async (all = false) =>
        Object.fromEntries((await store.listWorkers({ all })).map((w) => [w.id, w.stoppingAt]));
      assert.deepEqual(await stopping(), { w1: T0 + 10, w2: null });
      // A draining worker is still listed (it may hold a job) until it is stopped.
      await store.markWorkerStopped("w1", T0 + 30);
      await store.markWorkerStopping("w2", T0 + 40);
      await store.markWorkerStopped("w2", T0 + 50);
      await store.markWorkerStopping("w2", T0 + 60); // stopped: unchanged
      assert.deepEqual(await stopping(true), { w1: T0 + 10, w2: T0 + 40 });
      await registerWorker(store, "w1", T0 + 100);
      assert.deepEqual(await stopping(), { w1: null });
    },
  );
}
