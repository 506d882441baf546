/**
 * Fault injection, stop under load: 4 workers run 2-second jobs with more waiting when `worker
 * stop` (from another process) or SIGTERM arrives, once or twice. Every running job finishes and is
 * completed, none starts after the stop, every process exits and the supervisor exits 0. Only
 * `worker stop --now` interrupts them (back to pending) and makes the supervisor exit 130.
 */
import assert from "node:assert/strict";
import { countLines, statusWithin } from "./chaos.ts";
import {
  cliOk,
  openDb,
  procsOfStore,
  runCli,
  startWorkers,
  tempDb,
  waitFor,
  type Workers,
} from "./helpers.ts";

const RUNNING = 4;
const WAITING = 4;

interface Outcome {
  db: string;
  dir: string;
  log: string;
  status: Deno.CommandStatus;
  /** Jobs that had started when the stop was sent. */
  running: string[];
  stoppedAt: number;
}

/**
 * Enqueues 8 two-second jobs, starts 4 workers, waits until 4 jobs run, calls `stop`, and waits
 * (bounded) for the supervisor to exit.
 */
async function stopUnderLoad(
  dir: string,
  db: string,
  stop: (w: Workers) => Promise<void>,
): Promise<Outcome> {
  const specs = Array.from({ length: RUNNING + WAITING }, (_, i) =>
    JSON.stringify({
      id: `s${i}`,
      command: `echo start s${i} >> runs.txt; sleep 2; echo end s${i} >> runs.txt`,
      cwd: dir,
    }));
  await Deno.writeTextFile(`${dir}/jobs.ndjson`, specs.join("\n") + "\n");
  await cliOk(db, ["enqueue", "--file", `${dir}/jobs.ndjson`]);

  const w = startWorkers(db, 4);
  let status: Deno.CommandStatus | null = null;
  try {
    const started = () =>
      [...countLines(`${dir}/runs.txt`).keys()].filter((l) => l.startsWith("start "));
    await waitFor(() => started().length === RUNNING, { what: `${RUNNING} jobs running` });
    const running = started().map((l) => l.slice("start ".length)).sort();
    const stoppedAt = Date.now();
    await stop(w);
    status = await statusWithin(w.process, 20_000);
    assert.ok(status, `the supervisor did not exit within 20s of the stop\n${w.log()}`);
    await w.done();
    return { db, dir, log: w.log(), status, running, stoppedAt };
  } finally {
    if (!status) {
      w.signal("SIGKILL");
      await w.done();
    }
  }
}

/** Every job, in id order, with its attempts, read through the Store. */
async function storedJobs(db: string) {
  const store = await openDb(db);
  try {
    const jobs = await store.listJobs({ limit: 1_000_000 });
    jobs.sort((a, b) => a.id.localeCompare(b.id));
    return await Promise.all(
      jobs.map(async (job) => ({ job, attempts: await store.listAttempts(job.id) })),
    );
  } finally {
    await store.close();
  }
}

async function assertStoppedCleanly(o: Outcome) {
  assert.equal(o.status.code, 0, o.log);
  const stored = await storedJobs(o.db);
  const jobs = new Map(stored.map(({ job }) => [job.id, job]));
  const runs = countLines(`${o.dir}/runs.txt`);
  const completedAttempts = new Map(
    stored.map(({ job, attempts }) => [
      job.id,
      attempts.filter((a) => a.outcome === "completed").length,
    ]),
  );
  for (const [id, job] of jobs) {
    if (o.running.includes(id)) {
      // It ran to its end, once, and is recorded completed once.
      assert.equal(job.state, "completed", `${id}\n${o.log}`);
      assert.equal(runs.get(`start ${id}`), 1, `${id}`);
      assert.equal(runs.get(`end ${id}`), 1, `${id}`);
      assert.equal(completedAttempts.get(id), 1, `${id}`);
      assert.ok(job.startedAt! <= o.stoppedAt, `${id} started after the stop`);
    } else {
      // Never started after the stop: still pending, no attempt, no side effect.
      assert.equal(job.state, "pending", `${id}\n${o.log}`);
      assert.equal(job.attempts, 0, `${id}`);
      assert.equal(runs.get(`start ${id}`), undefined, `${id} started after the stop`);
    }
  }
  assert.equal(jobs.size, RUNNING + WAITING);
  assert.equal((o.log.match(/job\.started /g) ?? []).length, RUNNING, o.log);
  assert.match(o.log, /supervisor\.stopped/);
  // Every worker unregistered and exited.
  assert.equal(await cliOk(o.db, ["worker", "list", "--json"]), "[]\n");
  assert.deepEqual(await procsOfStore(o.db), []);
}

Deno.test("stop: `worker stop` from another process while 4 jobs run → they finish, nothing new starts, exit 0", async () => {
  await using t = await tempDb();
  let stopOut = { code: -1, stdout: "", stderr: "" };
  const o = await stopUnderLoad(t.dir, t.db, async () => {
    stopOut = await runCli(t.db, ["worker", "stop", "--timeout", "20s"]);
  });
  assert.equal(stopOut.code, 0, `${stopOut.stdout}${stopOut.stderr}`);
  assert.match(stopOut.stdout, /^asked 4 workers to stop .*\nstopped 4 workers\n$/);
  assert.equal(stopOut.stderr, "");
  await assertStoppedCleanly(o);
});

Deno.test("stop: SIGTERM to the supervisor while 4 jobs run → they finish, nothing new starts, exit 0", async () => {
  await using t = await tempDb();
  const o = await stopUnderLoad(t.dir, t.db, (w) => {
    w.signal("SIGTERM");
    return Promise.resolve();
  });
  await assertStoppedCleanly(o);
});

Deno.test("stop: SIGTERM twice while 4 jobs run → still graceful: they finish, exit 0", async () => {
  await using t = await tempDb();
  const o = await stopUnderLoad(t.dir, t.db, async (w) => {
    w.signal("SIGTERM");
    await waitFor(() => w.log().includes("supervisor.stopping"), { what: "first stop logged" });
    w.signal("SIGTERM");
  });
  await assertStoppedCleanly(o);
  assert.doesNotMatch(o.log, /stopping_now|job\.interrupted/, o.log);
});

Deno.test("stop: `worker stop --now` while 4 jobs run → interrupted, back to pending, no retry used, exit 130", async () => {
  await using t = await tempDb();
  let stopOut = { code: -1, stdout: "", stderr: "" };
  const o = await stopUnderLoad(t.dir, t.db, async () => {
    stopOut = await runCli(t.db, ["worker", "stop", "--now", "--timeout", "20s"]);
  });
  assert.equal(stopOut.code, 0, `${stopOut.stdout}${stopOut.stderr}`);
  assert.equal(o.status.code, 130, o.log);
  const stored = await storedJobs(o.db);
  assert.deepEqual(
    stored.map(({ job }) => [job.id, job.state, job.attempts]),
    stored.map(({ job }) => [job.id, "pending", 0]),
    o.log,
  );
  assert.deepEqual(
    stored.flatMap(({ attempts }) => attempts.map((a) => [a.jobId, a.outcome])),
    o.running.map((id) => [id, "interrupted"]),
  );
  // The interrupted jobs were killed, not left to finish.
  const runs = countLines(`${o.dir}/runs.txt`);
  for (const id of o.running) assert.equal(runs.get(`end ${id}`), undefined, id);
  assert.deepEqual(await procsOfStore(o.db), []);
});
