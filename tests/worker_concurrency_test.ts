/**
 * `worker start --concurrency C`: one worker process runs up to C jobs at once, claims them
 * together and records their results together, and keeps every guarantee of a one-job worker:
 * each result recorded once, retries and the DLQ, timeouts of one job leaving the others alone,
 * a graceful stop letting every running job finish, a forced stop putting them all back.
 * Running jobs wait on gate files, so no case depends on how fast the machine is.
 */
import assert from "node:assert/strict";
import {
  assertOneLineError,
  cliOk,
  jobState,
  lineCount,
  openDb,
  runCli,
  startCli,
  tempDb,
  waitFor,
} from "./helpers.ts";

/** `queuectl worker start --count N --concurrency C`, its output collected. */
function startPool(db: string, count: number, concurrency: number) {
  const w = startCli(db, [
    "worker",
    "start",
    "--count",
    String(count),
    "--concurrency",
    String(concurrency),
  ]);
  return {
    signal: w.signal,
    async done() {
      const status = await w.done();
      return { code: status.code, log: w.log() };
    },
  };
}

/** Job `id`: appends its id to `<dir>/started`, waits for `<dir>/gate`, then runs `then`. */
function gated(dir: string, id: string, then = "true", extra: Record<string, unknown> = {}) {
  return JSON.stringify({
    id,
    command: `echo ${id} >> started; while [ ! -e gate ]; do sleep 0.05; done; ${then}`,
    cwd: dir,
    max_retries: 0,
    ...extra,
  });
}

async function states(db: string): Promise<Record<string, string>> {
  const s = await openDb(db);
  try {
    const jobs = await s.listJobs({ limit: 1000 });
    return Object.fromEntries(jobs.map((j) => [j.id, j.state]));
  } finally {
    await s.close();
  }
}

async function attemptsOf(db: string, id: string): Promise<string[]> {
  const s = await openDb(db);
  try {
    return (await s.listAttempts(id)).map((a) => a.outcome);
  } finally {
    await s.close();
  }
}

Deno.test("[concurrency] one worker runs 4 jobs at once and records each result once", async () => {
  await using t = await tempDb();
  for (const id of ["a", "b", "c", "d", "e"]) await cliOk(t.db, ["enqueue", gated(t.dir, id)]);
  const pool = startPool(t.db, 1, 4);
  try {
    // Four run together in one worker process; the fifth waits for a free slot.
    await waitFor(() => lineCount(`${t.dir}/started`) === 4, { what: "4 jobs started" });
    const running = JSON.parse(await cliOk(t.db, ["list", "--state", "processing", "--json"]));
    assert.equal(running.length, 4);
    assert.equal(new Set(running.map((j: { worker_id: string }) => j.worker_id)).size, 1);
    const [worker] = JSON.parse(await cliOk(t.db, ["worker", "list", "--json"]));
    assert.equal(worker.running_jobs, 4);
    assert.match(await cliOk(t.db, ["worker", "list"]), / a \+3\b/);
    await Deno.writeTextFile(`${t.dir}/gate`, "");
    await waitFor(async () => Object.values(await states(t.db)).every((s) => s === "completed"), {
      what: "all completed",
    });
  } finally {
    pool.signal("SIGTERM");
  }
  const { code } = await pool.done();
  assert.equal(code, 0);
  assert.equal(lineCount(`${t.dir}/started`), 5);
  for (const id of ["a", "b", "c", "d", "e"]) {
    assert.deepEqual(await attemptsOf(t.db, id), ["completed"], id);
  }
});

Deno.test("[concurrency] failures retry and reach the DLQ; a timeout ends only its own job", async () => {
  await using t = await tempDb();
  await cliOk(t.db, ["config", "set", "backoff-base", "1"]);
  await cliOk(t.db, ["enqueue", gated(t.dir, "ok")]);
  await cliOk(t.db, ["enqueue", gated(t.dir, "fails", "exit 3", { max_retries: 1 })]);
  await cliOk(t.db, ["enqueue", gated(t.dir, "slow", "sleep 30", { timeout: "1s" })]);
  const pool = startPool(t.db, 1, 3);
  try {
    await waitFor(() => lineCount(`${t.dir}/started`) === 3, { what: "3 jobs started" });
    await Deno.writeTextFile(`${t.dir}/gate`, "");
    await waitFor(async () => {
      const s = await states(t.db);
      return s.ok === "completed" && s.fails === "dead" && s.slow === "dead";
    }, { what: "ok completed, fails and slow dead" });
  } finally {
    pool.signal("SIGTERM");
  }
  assert.equal((await pool.done()).code, 0);
  assert.deepEqual(await attemptsOf(t.db, "ok"), ["completed"]);
  assert.deepEqual(await attemptsOf(t.db, "fails"), ["exited", "exited"]);
  assert.deepEqual(await attemptsOf(t.db, "slow"), ["timeout"]);
  const dlq = JSON.parse(await cliOk(t.db, ["dlq", "list", "--json"]));
  assert.deepEqual(dlq.map((j: { id: string }) => j.id).sort(), ["fails", "slow"]);
});

Deno.test("[concurrency] Ctrl+C lets every running job finish; a second one puts them all back", async () => {
  await using t = await tempDb();
  for (const id of ["a", "b", "c"]) await cliOk(t.db, ["enqueue", gated(t.dir, id)]);
  // Graceful: all three finish after the stop was asked for, nothing new is claimed.
  await cliOk(t.db, ["enqueue", JSON.stringify({ id: "later", command: "true", cwd: t.dir })]);
  const pool = startPool(t.db, 1, 3);
  await waitFor(() => lineCount(`${t.dir}/started`) === 3, { what: "3 jobs started" });
  pool.signal("SIGINT");
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(
    Object.values(await states(t.db)).filter((s) => s === "processing").length,
    3,
    "still running after one Ctrl+C",
  );
  await Deno.writeTextFile(`${t.dir}/gate`, "");
  const graceful = await pool.done();
  assert.equal(graceful.code, 0, graceful.log);
  assert.deepEqual(await states(t.db), {
    a: "completed",
    b: "completed",
    c: "completed",
    later: "pending",
  });

  // Forced: a second Ctrl+C interrupts all three; they go back to pending; exit 130.
  await Deno.remove(`${t.dir}/gate`);
  await Deno.remove(`${t.dir}/started`);
  await cliOk(t.db, ["cancel", "later"]);
  for (const id of ["x", "y", "z"]) await cliOk(t.db, ["enqueue", gated(t.dir, id)]);
  const again = startPool(t.db, 1, 3);
  await waitFor(() => lineCount(`${t.dir}/started`) === 3, { what: "3 jobs started again" });
  again.signal("SIGINT");
  await new Promise((r) => setTimeout(r, 200));
  again.signal("SIGINT");
  const forced = await again.done();
  assert.equal(forced.code, 130, forced.log);
  for (const id of ["x", "y", "z"]) {
    assert.equal(await jobState(t.db, id), "pending", id);
    assert.deepEqual(await attemptsOf(t.db, id), ["interrupted"], id);
  }
});

Deno.test("[concurrency] a value out of range is refused in one line before anything starts", async () => {
  await using t = await tempDb();
  await cliOk(t.db, ["enqueue", JSON.stringify({ id: "a", command: "true", cwd: t.dir })]);
  for (const bad of ["0", "257", "many"]) {
    const r = await runCli(t.db, ["worker", "start", "--concurrency", bad]);
    assertOneLineError(r, 2, /concurrency/);
  }
  const workers = JSON.parse(await cliOk(t.db, ["worker", "list", "--json", "--all"]));
  assert.deepEqual(workers, []);
  assert.equal(await jobState(t.db, "a"), "pending");
});
