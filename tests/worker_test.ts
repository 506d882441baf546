/** Real workers running real shell jobs against a real SQLite file. */
import assert from "node:assert/strict";
import {
  cliOk,
  gateCommand,
  jobState,
  lineCount,
  openDb,
  openGate,
  startWorkers,
  tempDb,
  waitFor,
} from "./helpers.ts";

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
  const s = await openDb(t.db);
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
  const s = await openDb(t.db);
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
  // The job runs until the test opens its gate, after the SIGTERM: it cannot end before the stop
  // request however slow the machine is. `after` is not due for an hour: a stopping worker must
  // not wait for it.
  const gate = `${t.dir}/gate`;
  await cliOk(t.db, [
    "enqueue",
    JSON.stringify({ id: "slow", command: `${gateCommand(gate)}; echo done` }),
  ]);
  await cliOk(t.db, [
    "enqueue",
    JSON.stringify({ id: "after", command: "echo never", delay: "1h" }),
  ]);
  const w = startWorkers(t.db, 1);
  try {
    await waitFor(async () => (await jobState(t.db, "slow")) === "processing", {
      what: "slow running",
    });
    w.signal("SIGTERM");
    await waitFor(() => /supervisor\.stopping/.test(w.log()), { what: "stopping logged" });
    assert.equal(await jobState(t.db, "slow"), "processing");
  } finally {
    await openGate(gate);
  }
  const status = await w.done();
  assert.equal(status.code, 0, w.log());
  assert.equal(await jobState(t.db, "slow"), "completed");
  assert.equal(await cliOk(t.db, ["logs", "slow"]), "done\n");
  assert.equal(await jobState(t.db, "after"), "pending");
});

/** Pids of live processes whose command line contains `needle` (Deno denies /proc: ask pgrep). */
function processesWith(needle: string): number[] {
  const out = new Deno.Command("pgrep", { args: ["-f", needle], stdout: "piped", stderr: "null" })
    .outputSync();
  return new TextDecoder().decode(out.stdout).split("\n").filter(Boolean).map(Number);
}

Deno.test("worker: a timeout kills the job's whole process tree and counts as a failure", async () => {
  await using t = await tempDb();
  const marker = `qtest-${crypto.randomUUID().slice(0, 8)}`;
  // Two background sleeps that would outlive the shell if only `sh` were killed; the marker is
  // in every process's command line so the test can look for survivors.
  await cliOk(t.db, [
    "enqueue",
    JSON.stringify({
      id: "slow",
      command: `exec sh -c 'sleep 100 & sleep 100 & wait' ${marker}`,
      timeout: 1,
      max_retries: 0,
    }),
  ]);
  const w = startWorkers(t.db, 1);
  try {
    await waitFor(async () => (await jobState(t.db, "slow")) === "dead", { what: "slow dead" });
  } finally {
    w.signal("SIGTERM");
  }
  assert.equal((await w.done()).code, 0);
  const s = await openDb(t.db);
  try {
    const job = (await s.getJob("slow"))!;
    assert.match(job.error ?? "", /timed out after 1s/);
    assert.equal((await s.listAttempts("slow"))[0].outcome, "timeout");
  } finally {
    await s.close();
  }
  // The sleeps were in the job's process group: nothing of the job is left.
  await waitFor(() => processesWith(marker).length === 0, {
    what: "job tree gone",
  });
});

Deno.test("worker: kill -9 of a worker mid-job puts the job back as 'worker lost' and it runs again", async () => {
  await using t = await tempDb();
  await cliOk(t.db, ["config", "set", "backoff-base", "0"]);
  const runs = `${t.dir}/runs.txt`;
  const gate = `${t.dir}/gate`;
  // First run blocks until the gate file exists; the worker is killed while it waits.
  await cliOk(t.db, [
    "enqueue",
    JSON.stringify({
      id: "victim",
      command: `echo run >> ${runs}; while [ ! -e ${gate} ]; do sleep 0.05; done`,
    }),
  ]);
  const w = startWorkers(t.db, 1);
  try {
    // Claimed is not enough: the kill must land once the job's shell runs, or the first run
    // never appends its line.
    await waitFor(() => lineCount(runs) === 1, { what: "the first run" });
    const s = await openDb(t.db);
    const [worker] = await s.listWorkers();
    await s.close();
    Deno.kill(worker.pid, "SIGKILL");
    await waitFor(() => lineCount(runs) >= 2, { what: "second run" }).catch((e) => {
      throw new Error(`${e.message}\n${w.log()}`);
    });
    await Deno.writeTextFile(gate, "");
    await waitFor(async () => (await jobState(t.db, "victim")) === "completed", {
      what: "completed",
    });
  } finally {
    w.signal("SIGTERM");
  }
  assert.equal((await w.done()).code, 0, w.log());
  const s = await openDb(t.db);
  try {
    const attempts = await s.listAttempts("victim");
    assert.deepEqual(attempts.map((a) => a.outcome), ["worker_lost", "completed"]);
    assert.match(attempts[0].error ?? "", /worker lost: killed by SIGKILL/);
  } finally {
    await s.close();
  }
  assert.match(w.log(), /worker\.died/);
});

Deno.test("worker: 50 jobs × 4 workers, each job executed exactly once", async () => {
  await using t = await tempDb();
  const runs = `${t.dir}/runs.txt`;
  // Every job holds its worker until the gate opens, and the gate opens only once four jobs run
  // at the same time: all four workers take part, however the machine schedules them.
  const gate = `${t.dir}/gate`;
  const lines = Array.from(
    { length: 50 },
    (_, i) =>
      JSON.stringify({ id: `j${i}`, command: `echo j${i} >> ${runs}; ${gateCommand(gate)}` }),
  ).join("\n");
  await cliOk(t.db, ["enqueue", "--file", "-"], { stdin: lines });
  const w = startWorkers(t.db, 4);
  try {
    await waitFor(async () => {
      const s = await openDb(t.db);
      try {
        return (await s.countJobs("processing")) === 4;
      } finally {
        await s.close();
      }
    }, { what: "4 jobs running at once" });
    await openGate(gate);
    await waitFor(async () => {
      const s = await openDb(t.db);
      try {
        return (await s.counts(Date.now())).completed === 50;
      } finally {
        await s.close();
      }
    }, { timeoutMs: 60_000, what: "50 completed" });
  } finally {
    await openGate(gate);
    w.signal("SIGTERM");
  }
  assert.equal((await w.done()).code, 0);
  const ids = (await Deno.readTextFile(runs)).split("\n").filter(Boolean).sort();
  assert.deepEqual(ids, Array.from({ length: 50 }, (_, i) => `j${i}`).sort());
  const workers = new Set(w.log().match(/job\.completed worker=\d+/g));
  assert.equal(workers.size, 4, `only ${workers.size} workers ran jobs`);
});

Deno.test("worker: ready jobs run by priority, then run_at, then enqueue order; future run_at waits", async () => {
  await using t = await tempDb();
  const order = `${t.dir}/order.txt`;
  const past = new Date(Date.now() - 60_000).toISOString();
  const job = (id: string, extra: Record<string, unknown> = {}) =>
    JSON.stringify({ id, command: `echo ${id} >> ${order}`, ...extra });
  // `future` has the highest priority but is not due for an hour: it must wait however long the
  // others take, until the test makes it due (cancel, then retry: pending now).
  const lines = [
    job("low1"),
    job("high", { priority: 5 }),
    job("low2"),
    job("old", { run_at: past }),
    job("future", { delay: "1h", priority: 100 }),
  ].join("\n");
  await cliOk(t.db, ["enqueue", "--file", "-"], { stdin: lines });
  const w = startWorkers(t.db, 1);
  try {
    await waitFor(async () => (await jobState(t.db, "low2")) === "completed", { what: "low2" });
    assert.equal(await jobState(t.db, "future"), "pending");
    await cliOk(t.db, ["cancel", "future"]);
    await cliOk(t.db, ["retry", "future"]);
    await waitFor(async () => (await jobState(t.db, "future")) === "completed", { what: "future" });
  } finally {
    w.signal("SIGTERM");
  }
  assert.equal((await w.done()).code, 0);
  const ran = (await Deno.readTextFile(order)).split("\n").filter(Boolean);
  assert.deepEqual(ran, ["high", "old", "low1", "low2", "future"]);
});

Deno.test("worker: jobs and their results persist across processes and restarts", async () => {
  await using t = await tempDb();
  await cliOk(t.db, ["enqueue", JSON.stringify({ id: "a", command: "true" })]);
  let w = startWorkers(t.db, 1);
  await waitFor(async () => (await jobState(t.db, "a")) === "completed", { what: "a" });
  w.signal("SIGTERM");
  await w.done();
  await cliOk(t.db, ["enqueue", JSON.stringify({ id: "b", command: "true" })]);
  assert.equal(await jobState(t.db, "b"), "pending");
  w = startWorkers(t.db, 1);
  await waitFor(async () => (await jobState(t.db, "b")) === "completed", { what: "b" });
  w.signal("SIGTERM");
  await w.done();
  const list = JSON.parse(await cliOk(t.db, ["list", "--json"]));
  // Newest first.
  assert.deepEqual(list.map((j: { id: string; state: string }) => [j.id, j.state]), [
    ["b", "completed"],
    ["a", "completed"],
  ]);
});

Deno.test("worker: `worker stop` from another terminal waits for the running job, then reports", async () => {
  await using t = await tempDb();
  const gate = `${t.dir}/gate`;
  await cliOk(t.db, ["enqueue", JSON.stringify({ id: "slow", command: gateCommand(gate) })]);
  const w = startWorkers(t.db, 2);
  let stop: Promise<string> | undefined;
  try {
    await waitFor(async () => (await jobState(t.db, "slow")) === "processing", {
      what: "running",
    });
    await waitFor(
      async () => JSON.parse(await cliOk(t.db, ["worker", "list", "--json"])).length === 2,
      { what: "2 workers registered" },
    );
    stop = cliOk(t.db, ["worker", "stop", "--timeout", "120s"]);
    // The job ends only once the stop request has reached the supervisor.
    await waitFor(() => /supervisor\.stopping/.test(w.log()), { what: "stopping logged" });
    assert.equal(await jobState(t.db, "slow"), "processing");
  } finally {
    await openGate(gate);
  }
  assert.match(await stop, /stopped 2 workers/);
  assert.equal(await jobState(t.db, "slow"), "completed");
  assert.equal((await w.done()).code, 0, w.log());
  assert.match(await cliOk(t.db, ["worker", "stop"]), /no workers are running/);
});

Deno.test("worker: kill -9 of a worker also ends its job's processes before the job is retried", async () => {
  await using t = await tempDb();
  const marker = `qtest-${crypto.randomUUID().slice(0, 8)}`;
  await cliOk(t.db, [
    "enqueue",
    JSON.stringify({
      id: "orphan",
      command: `exec sh -c 'sleep 100 & sleep 100 & wait' ${marker}`,
      max_retries: 0,
    }),
  ]);
  const w = startWorkers(t.db, 1);
  try {
    await waitFor(() => processesWith(marker).length > 0, { what: "the job running" });
    const s = await openDb(t.db);
    const [worker] = await s.listWorkers();
    await s.close();
    Deno.kill(worker.pid, "SIGKILL");
    await waitFor(async () => (await jobState(t.db, "orphan")) === "dead", { what: "rescued" });
    await waitFor(() => processesWith(marker).length === 0, {
      what: "the dead worker's job processes to be gone",
    });
  } finally {
    w.signal("SIGTERM");
  }
  assert.equal((await w.done()).code, 0, w.log());
});
