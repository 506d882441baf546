/**
 * The commands that inspect and change jobs, end to end: status, list, show, logs, dlq, retry,
 * cancel and purge, each run as the real CLI against a temporary database. Jobs are put into the
 * states a test needs through the store's own guarded transitions, so no worker has to run.
 */
import assert from "node:assert/strict";
import {
  allDone,
  assertOneLineError,
  cliOk,
  type CliResult,
  jobState,
  openDb,
  runCli,
  startWorkers,
  tempDb,
  waitFor,
} from "./helpers.ts";
import { type JobState, transition } from "../lib/job.ts";
import type { AttemptResult } from "../lib/store/store.ts";

const WORKER = "testhost:1";

interface Seed {
  id: string;
  state: JobState;
  /** When the job was enqueued and last changed (default: now). */
  agoMs?: number;
  /** A pending job's delay: it counts as scheduled. */
  runInMs?: number;
  error?: string;
}

/**
 * Puts jobs into the store in the given states, through the same guarded store calls a worker or
 * a person would make. Jobs that ran are claimed as they are seeded, so list them before any
 * pending ones; a failed job is scheduled to retry 2s after it failed.
 */
async function seed(db: string, jobs: Seed[]): Promise<void> {
  const s = await openDb(db);
  try {
    for (const j of jobs) {
      const now = Date.now() - (j.agoMs ?? 0);
      await s.enqueue([{
        id: j.id,
        command: `echo ${j.id}`,
        maxRetries: j.state === "dead" ? 0 : 2,
        priority: 0,
        runAt: now + (j.runInMs ?? 0),
        timeoutMs: 0,
        cwd: "/tmp",
        env: null,
      }], now);
      if (j.state === "pending") continue;
      if (j.state === "cancelled") {
        const job = (await s.getJob(j.id))!;
        assert.ok(
          await s.applyTransition(j.id, job, transition(job, { type: "cancel" }, now), now),
        );
        continue;
      }
      const [job] = await s.claimNext(WORKER, now);
      assert.equal(job?.id, j.id, "seed jobs that run before pending ones");
      if (j.state === "processing") continue;
      const ok = j.state === "completed";
      const next = transition(
        job,
        ok ? { type: "succeed" } : { type: "fail", outcome: "exited" },
        now,
      );
      assert.equal(next.state, j.state, `seeding ${j.id}`);
      const result: AttemptResult = ok
        ? { outcome: "completed", exitCode: 0, signal: null, error: null }
        : { outcome: "exited", exitCode: 3, signal: null, error: j.error ?? "boom" };
      assert.ok(await s.finishAttempt(j.id, WORKER, next, result, now));
    }
  } finally {
    await s.close();
  }
}

/** Everything a command could change: every job with its attempts, and the stored config. */
async function dump(db: string) {
  const s = await openDb(db);
  try {
    const jobs = await s.listJobs({ limit: 1_000_000 });
    const attempts = await Promise.all(jobs.map((j) => s.listAttempts(j.id)));
    return { jobs, attempts, config: await s.getConfig() };
  } finally {
    await s.close();
  }
}

const ids = (json: string) => (JSON.parse(json) as Array<{ id: string }>).map((j) => j.id);

Deno.test("[status] should count every state, scheduled jobs and active workers", async () => {
  await using t = await tempDb();
  await seed(t.db, [
    { id: "p", state: "processing" },
    { id: "c", state: "completed" },
    { id: "f", state: "failed" },
    { id: "d", state: "dead" },
    { id: "x", state: "cancelled" },
    { id: "a", state: "pending" },
    { id: "later", state: "pending", runInMs: 3_600_000 },
  ]);
  const s = await openDb(t.db);
  try {
    const now = Date.now();
    const worker = { host: "testhost", supervisorPid: 1, startedAt: now, heartbeatAt: now };
    await s.registerWorker({ ...worker, id: WORKER, pid: 1 });
    await s.registerWorker({ ...worker, id: "testhost:2", pid: 2 });
    // Silent for longer than the lease: not active.
    await s.registerWorker({ ...worker, id: "testhost:3", pid: 3, heartbeatAt: now - 600_000 });
  } finally {
    await s.close();
  }
  const [text, json] = await allDone([
    cliOk(t.db, ["status"]),
    cliOk(t.db, ["status", "--json"]),
  ]);
  assert.deepEqual(JSON.parse(json), {
    pending: 2,
    processing: 1,
    completed: 1,
    failed: 1,
    dead: 1,
    cancelled: 1,
    scheduled: 2,
    waiting: 0,
    total: 7,
    active_workers: 2,
    busy_workers: 1,
    queues: [{
      name: "default",
      pending: 2,
      processing: 1,
      completed: 1,
      failed: 1,
      dead: 1,
      cancelled: 1,
      paused: false,
      concurrency: 0,
    }],
    schedules: 0,
    paused_schedules: 0,
    db: t.db,
  });
  const rows = text.split("\n").map((l) => l.trim().split(/\s{2,}/));
  for (
    const [state, n] of [
      ["pending", "2"],
      ["processing", "1"],
      ["completed", "1"],
      ["failed", "1"],
      ["dead", "1"],
      ["cancelled", "1"],
      ["scheduled", "2"],
      ["total", "7"],
    ]
  ) {
    assert.ok(rows.some((r) => r[0] === state && r[1] === n), `${state} ${n} in:\n${text}`);
  }
  assert.match(text, /^active workers: 2 \(1 busy\)$/m);
  // The file's path, or the PostgreSQL URL (its `?schema=` holds regex metacharacters).
  assert.ok(text.split("\n").includes(`database: ${t.db}`), text);
});

Deno.test("[list] should list newest first, by --state, a page at a time", async () => {
  await using t = await tempDb();
  await seed(t.db, [
    { id: "c1", state: "completed" },
    { id: "d1", state: "dead", error: "nope" },
    { id: "p1", state: "pending" },
    { id: "p2", state: "pending" },
    { id: "p3", state: "pending" },
  ]);
  const [all, pending, page1, page2, none, upper, past] = await allDone([
    cliOk(t.db, ["list"]),
    cliOk(t.db, ["list", "--state", "pending", "--json"]),
    runCli(t.db, ["list", "--limit", "2"]),
    cliOk(t.db, ["list", "-n", "2", "--offset", "2", "--json"]),
    cliOk(t.db, ["list", "--state", "cancelled"]),
    cliOk(t.db, ["list", "-s", "DEAD", "--json"]),
    cliOk(t.db, ["list", "--state", "pending", "--offset", "3"]),
  ]);
  const lines = all.trimEnd().split("\n");
  assert.deepEqual(lines[0].split(/\s{2,}/), [
    "ID",
    "STATE",
    "ATTEMPTS",
    "PRI",
    "RUN AT",
    "UPDATED",
    "COMMAND",
    "LAST ERROR",
  ]);
  assert.deepEqual(lines.slice(1).map((l) => l.split(/\s+/).slice(0, 3)), [
    ["p3", "pending", "0/3"],
    ["p2", "pending", "0/3"],
    ["p1", "pending", "0/3"],
    ["d1", "dead", "1/1"],
    ["c1", "completed", "1/3"],
  ]);
  assert.match(lines[4], /echo d1\s+nope$/);
  assert.deepEqual(ids(pending), ["p3", "p2", "p1"]);
  // Rows on stdout, the hint about the rest on stderr, so a pipe gets only rows.
  assert.equal(page1.code, 0);
  const page1Lines = page1.stdout.trimEnd().split("\n");
  assert.deepEqual(page1Lines.slice(1).map((l) => l.split(" ")[0]), ["p3", "p2"]);
  assert.equal(page1.stderr, "… 3 more (older); see them with --offset 2, or --all\n");
  assert.deepEqual(ids(page2), ["p1", "d1"]);
  assert.equal(none, "no cancelled jobs\n");
  assert.deepEqual(ids(upper), ["d1"]);
  assert.equal(past, "nothing after --offset 3: there are 3 pending jobs in all\n");
});

Deno.test("[list] should say so when there is nothing to list", async () => {
  await using t = await tempDb();
  await cliOk(t.db, ["init"]);
  const out = await allDone([
    cliOk(t.db, ["list"]),
    cliOk(t.db, ["list", "--json"]),
    cliOk(t.db, ["dlq", "list"]),
    cliOk(t.db, ["dlq", "list", "--json"]),
  ]);
  assert.deepEqual(out, ["no jobs\n", "[]\n", "the dead letter queue is empty\n", "[]\n"]);
});

Deno.test("[list] --json should keep the same field names in list, dlq list and show", async () => {
  await using t = await tempDb();
  await seed(t.db, [{ id: "d", state: "dead" }]);
  const fields = [
    "id",
    "command",
    "state",
    "queue",
    "attempts",
    "max_retries",
    "priority",
    "run_at",
    "timeout_seconds",
    "cwd",
    "env_keys",
    "created_at",
    "updated_at",
    "started_at",
    "finished_at",
    "exit_code",
    "error",
    "worker",
    "unique_key",
    "waiting_on",
  ];
  const [list, dlq, show] = await allDone([
    cliOk(t.db, ["list", "--json"]),
    cliOk(t.db, ["dlq", "list", "--json"]),
    cliOk(t.db, ["show", "d", "--json"]),
  ]);
  assert.deepEqual(Object.keys(JSON.parse(list)[0]), fields);
  assert.deepEqual(JSON.parse(dlq), JSON.parse(list));
  const shown = JSON.parse(show);
  assert.deepEqual(Object.keys(shown), [
    ...fields,
    "attempt_history",
    "retry_history",
    "after",
    "dependants",
  ]);
  const { attempt_history: _, retry_history: __, after: ___, dependants: ____, ...job } = shown;
  assert.deepEqual(job, JSON.parse(list)[0]);
  assert.equal(job.attempts, 1);
  assert.equal(job.state, "dead");
});

Deno.test("[show] should print a job with every attempt it made", async () => {
  await using t = await tempDb();
  await seed(t.db, [{ id: "f", state: "failed", error: "disk full\nsecond line" }]);
  const [text, json] = await allDone([
    cliOk(t.db, ["show", "f"]),
    cliOk(t.db, ["show", "f", "--json"]),
  ]);
  assert.match(text, /^id:\s+f$/m);
  assert.match(text, /^state:\s+failed$/m);
  assert.match(text, /^command:\s+echo f$/m);
  assert.match(text, /^attempt:\s+1 of 3$/m);
  assert.match(text, /^exit code: 3$/m);
  assert.match(text, /^error:\n {2}disk full\n {2}second line$/m);
  assert.match(text, /^#\s+OUTCOME\s+EXIT\s+DURATION\s+FINISHED\s+WORKER\s+ERROR$/m);
  assert.match(
    text,
    new RegExp(`^1\\s+exited\\s+3\\s+\\S+\\s+.+ ago\\s+${WORKER}\\s+disk full$`, "m"),
  );
  const job = JSON.parse(json);
  assert.equal(job.attempts, 1);
  assert.equal(job.error, "disk full\nsecond line");
  assert.deepEqual(job.attempt_history.map((a: Record<string, unknown>) => Object.keys(a)), [[
    "attempt",
    "outcome",
    "exit_code",
    "signal",
    "worker",
    "started_at",
    "finished_at",
    "duration_ms",
    "error",
  ]]);
  assert.deepEqual(
    job.attempt_history.map((a: Record<string, unknown>) => [a.attempt, a.outcome, a.exit_code]),
    [[1, "exited", 3]],
  );
});

Deno.test("[logs] should say on stderr why a job has no output", async () => {
  await using t = await tempDb();
  await seed(t.db, [
    { id: "c", state: "completed" },
    { id: "f", state: "failed" },
    { id: "p", state: "pending" },
  ]);
  const [c, f, p] = await allDone(["c", "f", "p"].map((id) => runCli(t.db, ["logs", id])));
  assert.deepEqual(p, {
    code: 0,
    stdout: "",
    stderr: "(p has not run yet, so it has no output)\n",
  });
  assert.deepEqual(f, { code: 0, stdout: "", stderr: "(no output yet from f)\n" });
  assert.deepEqual(c, { code: 0, stdout: "", stderr: "(c printed no output)\n" });
});

Deno.test("[logs] show, logs and dlq should report what a real worker ran", async () => {
  await using t = await tempDb();
  await cliOk(t.db, ["enqueue", '{"id":"ok","command":"echo out; echo err >&2"}']);
  await cliOk(t.db, ["enqueue", '{"id":"bad","command":"echo nope >&2; exit 3","max_retries":0}']);
  const w = startWorkers(t.db, 1);
  try {
    await waitFor(
      async () =>
        (await jobState(t.db, "ok")) === "completed" && (await jobState(t.db, "bad")) === "dead",
      { what: "ok completed and bad dead" },
    );
  } finally {
    w.signal("SIGTERM");
  }
  assert.equal((await w.done()).code, 0, w.log());
  const [okLog, badLog, show, dlq] = await allDone([
    cliOk(t.db, ["logs", "ok"]),
    cliOk(t.db, ["logs", "bad"]),
    cliOk(t.db, ["show", "bad", "--json"]),
    cliOk(t.db, ["dlq", "list"]),
  ]);
  assert.equal(okLog, "out\nerr\n");
  assert.equal(badLog, "nope\n");
  const bad = JSON.parse(show);
  assert.equal(bad.state, "dead");
  assert.deepEqual(
    bad.attempt_history.map((a: Record<string, unknown>) => [a.outcome, a.exit_code, a.error]),
    [["exited", 3, "nope"]],
  );
  assert.match(dlq, /^bad\s+dead\s+1\/1\s/m);
  assert.doesNotMatch(dlq, /^ok\s/m);
});

Deno.test("[dlq] retry ID should move one dead job back to pending with a fresh budget", async () => {
  await using t = await tempDb();
  await seed(t.db, [
    { id: "c", state: "completed" },
    { id: "d1", state: "dead" },
    { id: "d2", state: "dead" },
  ]);
  assert.deepEqual(ids(await cliOk(t.db, ["dlq", "list", "--json"])), ["d2", "d1"]);
  const before = Date.now();
  assert.equal(await cliOk(t.db, ["dlq", "retry", "d1"]), "moved to pending: d1\n");
  const s = await openDb(t.db);
  try {
    const d1 = (await s.getJob("d1"))!;
    assert.equal(d1.state, "pending");
    assert.equal(d1.attempts, 1, "the next run is attempt 2");
    assert.equal(d1.retryBase, 1, "with a fresh budget");
    assert.ok(d1.runAt >= before && d1.runAt <= Date.now(), "runs now");
  } finally {
    await s.close();
  }
  assert.deepEqual(ids(await cliOk(t.db, ["dlq", "list", "--json"])), ["d2"]);
});

Deno.test("[dlq] retry --all should move every dead job back to pending", async () => {
  await using t = await tempDb();
  await seed(t.db, [
    { id: "d1", state: "dead" },
    { id: "f", state: "failed" },
    { id: "d2", state: "dead" },
  ]);
  assert.equal(await cliOk(t.db, ["dlq", "retry", "--all"]), "moved to pending: 2 jobs\n");
  assert.deepEqual(
    await Promise.all(["d1", "f", "d2"].map((id) => jobState(t.db, id))),
    ["pending", "failed", "pending"],
  );
  assert.equal(await cliOk(t.db, ["dlq", "retry", "--all"]), "the dead letter queue is empty\n");
});

Deno.test("[retry] should queue failed, dead and cancelled jobs again", async () => {
  await using t = await tempDb();
  await seed(t.db, [
    { id: "f", state: "failed" },
    { id: "d", state: "dead" },
    { id: "x", state: "cancelled" },
  ]);
  const before = Date.now();
  assert.equal(await cliOk(t.db, ["retry", "f", "d", "x"]), "queued again: f, d, x\n");
  const s = await openDb(t.db);
  try {
    const jobs = await s.listJobs({ limit: 10 });
    assert.deepEqual(jobs.map((j) => [j.id, j.state, j.attempts]), [
      ["f", "pending", 1], // keeps its count: it just runs sooner
      ["d", "pending", 1], // a fresh budget, but attempt numbers go on
      ["x", "pending", 0],
    ]);
    for (const j of jobs) assert.ok(j.runAt >= before && j.runAt <= Date.now(), `${j.id} runs now`);
  } finally {
    await s.close();
  }
});

Deno.test("[cancel] should report each id, and exit 1 naming every id that failed", async () => {
  await using t = await tempDb();
  await seed(t.db, [
    { id: "c", state: "completed" },
    { id: "p", state: "processing" },
    { id: "f", state: "failed" },
    { id: "a", state: "pending" },
  ]);
  const r = await runCli(t.db, ["cancel", "a", "c", "f", "p", "nope"]);
  assert.equal(r.code, 1, r.stderr);
  assert.equal(
    r.stdout,
    "cancelled a, f, p (p was running; the worker stops it within a second)\n",
  );
  assert.equal(
    r.stderr,
    'queuectl: 2 of 5 failed: job "c" is completed; only pending, processing or failed jobs ' +
      'can be cancelled; not found: "nope" (see queuectl list)\n',
  );
  assert.deepEqual(
    await Promise.all(["c", "p", "f", "a"].map((id) => jobState(t.db, id))),
    ["completed", "cancelled", "cancelled", "cancelled"],
  );
  // All of them fine: exit 0.
  await seed(t.db, [{ id: "b", state: "pending" }]);
  assert.equal(await cliOk(t.db, ["cancel", "b"]), "cancelled b\n");
});

Deno.test("[purge] should delete finished jobs of one state older than --older-than, with logs", async () => {
  await using t = await tempDb();
  const day = 86_400_000;
  await seed(t.db, [
    { id: "c-old", state: "completed", agoMs: 10 * day },
    { id: "c-new", state: "completed" },
    { id: "d-old", state: "dead", agoMs: 10 * day },
    { id: "x-old", state: "cancelled", agoMs: 10 * day },
    { id: "p", state: "pending", agoMs: 10 * day },
  ]);
  // Output as a worker leaves it, for every job that ran.
  const s = await openDb(t.db);
  const keys: Record<string, string> = {};
  try {
    for (const j of await s.listJobs({ limit: 10 })) {
      if (!j.outputKey) continue;
      keys[j.id] = j.outputKey;
      const data = new TextEncoder().encode("output\n");
      await s.appendOutput(j.id, j.outputKey, { offset: 0, data, capBytes: 1024 });
    }
  } finally {
    await s.close();
  }

  assert.equal(
    await cliOk(t.db, ["purge", "--state", "completed", "--older-than", "7d", "--yes"]),
    "purged 1 completed job\n",
  );
  assert.equal(
    await cliOk(t.db, ["purge", "--state", "cancelled", "--older-than", "30d", "-y"]),
    "purged 0 cancelled jobs\n",
  );
  assert.equal(await cliOk(t.db, ["purge", "--state", "dead", "--yes"]), "purged 1 dead job\n");
  const after = await dump(t.db);
  assert.deepEqual(after.jobs.map((j) => j.id), ["c-new", "x-old", "p"]);
  const s2 = await openDb(t.db);
  try {
    assert.deepEqual(Object.keys(keys).sort(), ["c-new", "c-old", "d-old"]);
    const kept = async (id: string) => (await s2.readOutput(keys[id])).length > 0;
    assert.deepEqual(await Promise.all(["c-old", "c-new", "d-old"].map(kept)), [
      false,
      true,
      false,
    ]);
    assert.deepEqual(await s2.listAttempts("c-old"), []);
  } finally {
    await s2.close();
  }
});

Deno.test("[cli] should refuse bad input with a one-line error and change nothing", async (t) => {
  await using tmp = await tempDb();
  await seed(tmp.db, [
    { id: "c", state: "completed" },
    { id: "p", state: "processing" },
    { id: "d", state: "dead" },
    { id: "f", state: "failed" },
    { id: "x", state: "cancelled" },
    { id: "a", state: "pending" },
  ]);
  const baseline = await dump(tmp.db);
  const cases: Array<[number, string[], RegExp]> = [
    // Usage mistakes: exit 2.
    [
      2,
      ["bogus"],
      /^queuectl: unknown command "bogus"( \(did you mean [^)]*\))?; see queuectl --help$/,
    ],
    [2, ["list", "--db"], /^queuectl: --db needs a value; see queuectl list --help$/],
    [2, ["dlq", "bogus"], /^queuectl: unknown command "bogus"; see queuectl dlq --help$/],
    [2, ["list", "--bogus"], /^queuectl: unknown flag --bogus; see queuectl list --help$/],
    [2, ["list", "--stat", "dead"], /unknown flag --stat \(did you mean --state\?\)/],
    [2, ["list", "--state", "bogus"], /^queuectl: unknown state "bogus"; states are pending, /],
    [2, ["list", "--limit", "0"], /^queuectl: --limit must be an integer between 1 and /],
    [2, ["list", "--limit", "x"], /--limit must be an integer/],
    [2, ["list", "--limit", "1", "--limit", "2"], /--limit was given twice/],
    [
      2,
      ["status", "extra"],
      /^queuectl: unexpected argument "extra"; this command takes none; see queuectl status --help$/,
    ],
    [2, ["show"], /^queuectl: missing argument <id>; see queuectl show --help$/],
    [2, ["show", "a", "b"], /unexpected argument "b"/],
    [2, ["logs"], /missing argument <id>; see queuectl logs --help$/],
    [2, ["retry"], /^queuectl: give at least one job id, e\.g\. queuectl retry job1$/],
    [2, ["cancel"], /^queuectl: give at least one job id, e\.g\. queuectl cancel job1$/],
    [2, ["dlq", "retry"], /^queuectl: give a job id \(queuectl dlq retry job1\) or --all$/],
    [2, ["dlq", "retry", "--all", "d"], /give job ids or --all, not both/],
    [2, ["purge"], /^queuectl: --state is required; see queuectl purge --help$/],
    [
      2,
      ["purge", "--state", "pending"],
      /--state pending cannot be purged; choose completed, dead/,
    ],
    [2, ["purge", "--state", "bogus"], /unknown state "bogus"/],
    [2, ["purge", "--state", "dead", "--older-than", "soon"], /--older-than must be seconds or /],
    [2, ["purge", "--state", "dead"], /^queuectl: purge deletes jobs for good: pass --yes to /],
    [2, ["purge", "--state", "dead", "--yes", "--dry-run"], /give --yes or --dry-run, not both/],
    [2, ["list", "--all", "--limit", "5"], /^queuectl: give --limit or --all, not both$/],
    [2, ["list", "--state", ","], /--state needs a state, e\.g\. --state dead,failed/],
    [2, ["list", "--state", "dead,bogus"], /unknown state "bogus"/],
    [2, ["remove"], /^queuectl: give at least one job id, e\.g\. queuectl remove job1$/],
    // Well formed, but not possible: exit 1.
    [1, ["show", "nope"], /^queuectl: job "nope" not found; see queuectl list$/],
    [1, ["logs", "nope"], /^queuectl: job "nope" not found/],
    [1, ["retry", "nope"], /^queuectl: job "nope" not found/],
    [1, ["retry", "a"], /^queuectl: job "a" is pending; it is already waiting to run$/],
    [1, ["retry", "p"], /^queuectl: job "p" is processing; it is running now/],
    [1, ["retry", "c"], /^queuectl: job "c" is completed; enqueue it again under a new id/],
    [1, ["dlq", "retry", "a"], /^queuectl: job "a" is pending; only dead jobs are in the DLQ/],
    [1, ["dlq", "retry", "f"], /^queuectl: job "f" is failed; only dead jobs are in the DLQ/],
    [1, ["dlq", "retry", "nope"], /job "nope" not found/],
    [1, ["remove", "a"], /^queuectl: job "a" is still pending; only completed, dead or cancelled /],
    [1, ["remove", "nope"], /^queuectl: job "nope" not found; see queuectl list$/],
    [1, ["remove", "p", "f"], /^queuectl: 2 of 2 failed: still processing: "p"; still failed: "f"/],
    [1, ["cancel", "c"], /^queuectl: job "c" is completed; only pending, processing or failed/],
    [
      1,
      ["cancel", "x"],
      /^queuectl: job "x" is cancelled; nothing to do \(queuectl retry runs it again\)$/,
    ],
    [
      1,
      ["cancel", "nope", "gone"],
      /^queuectl: 2 of 2 failed: not found: "nope", "gone" \(see queuectl list\)$/,
    ],
  ];
  // One case at a time, the store read after each, so that a change is pinned on the case that
  // made it (on either store: a PostgreSQL schema cannot be copied like a file).
  const results: Array<{ r: CliResult; after: Awaited<ReturnType<typeof dump>> }> = [];
  for (const [, args] of cases) {
    const r = await runCli(tmp.db, args);
    results.push({ r, after: await dump(tmp.db) });
  }
  for (const [i, [code, args, error]] of cases.entries()) {
    await t.step(`queuectl ${args.join(" ")} → exit ${code}`, () => {
      assertOneLineError(results[i].r, code, error);
      assert.deepEqual(results[i].after, baseline, "nothing may change");
    });
  }
  await t.assertSnapshot(
    cases.map(([, args], i) => `$ queuectl ${args.join(" ")}\n${results[i].r.stderr}`).join(""),
    { serializer: String },
  );
});
