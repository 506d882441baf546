/**
 * Stopping workers, as users do it from two terminals: a graceful stop stays graceful however often
 * it is asked for (SIGTERM, `worker stop`); forcing is explicit (a second Ctrl+C, `worker stop
 * --now`) and exits 130; `worker list` shows draining workers as stopping; a killed supervisor's
 * workers are stopped directly; `worker start --detach` runs in a session of its own. Running jobs
 * wait on a gate file, so no case depends on how fast the machine is.
 */
import assert from "node:assert/strict";
import { isWorkerLive, workerStatus } from "../workers/liveness.ts";
import { statusWithin } from "./chaos.ts";
import { runDir } from "../lib/store/open.ts";
import {
  assertOneLineError,
  cliCommand,
  cliOk,
  type CliResult,
  jobState,
  openDb,
  procsOfStore,
  reapStore,
  runCli,
  startWorkers,
  tempDb,
  waitFor,
  type Workers,
} from "./helpers.ts";

/** Enqueues job `id` that runs until `<dir>/gate` exists. */
async function enqueueGated(db: string, dir: string, id: string) {
  await cliOk(db, [
    "enqueue",
    JSON.stringify({
      id,
      command: `echo started; while [ ! -e gate ]; do sleep 0.05; done; echo released`,
      cwd: dir,
      max_retries: 0,
    }),
  ]);
}

interface WorkerRow {
  pid: number;
  supervisor_pid: number;
  status: string;
  current_job: string | null;
}

async function workerList(db: string): Promise<WorkerRow[]> {
  return JSON.parse(await cliOk(db, ["worker", "list", "--json"]));
}

/** Workers registered and not stopped, read through the Store (cheap enough to poll). */
async function registered(db: string): Promise<number> {
  const s = await openDb(db);
  try {
    return (await s.listWorkers()).length;
  } finally {
    await s.close();
  }
}

async function job(db: string, id: string) {
  return JSON.parse(await cliOk(db, ["show", id, "--json"]));
}

async function outcomes(db: string, id: string): Promise<string[]> {
  const s = await openDb(db);
  try {
    return (await s.listAttempts(id)).map((a) => a.outcome);
  } finally {
    await s.close();
  }
}

/** Starts `count` workers and waits until job `id` runs. */
async function workersRunning(db: string, id: string, count = 1): Promise<Workers> {
  const w = startWorkers(db, count);
  try {
    await waitFor(async () => (await jobState(db, id)) === "processing", {
      what: `${id} running`,
    });
    await waitFor(async () => (await registered(db)) === count, {
      what: `${count} workers registered`,
    });
  } catch (e) {
    w.signal("SIGKILL");
    await w.done();
    throw e;
  }
  return w;
}

/** Awaits the supervisor, killing it (and failing) if it does not exit within 30 s. */
async function exitOf(w: Workers): Promise<Deno.CommandStatus> {
  const status = await statusWithin(w.process, 30_000);
  if (!status) w.signal("SIGKILL");
  await w.done();
  assert.ok(status, `the supervisor did not exit\n${w.log()}`);
  return status;
}

Deno.test("[worker stop] asking again stays graceful; the timeout says what is true; worker list shows stopping", async () => {
  await using t = await tempDb();
  await enqueueGated(t.db, t.dir, "long");
  const w = await workersRunning(t.db, "long");
  try {
    w.signal("SIGTERM");
    await waitFor(() => w.log().includes("supervisor.stopping"), { what: "stopping logged" });
    w.signal("SIGTERM");
    const stop = await runCli(t.db, ["worker", "stop", "--timeout", "1s"]);
    assertOneLineErrorAfter(stop, /^asked 1 worker to stop \(running jobs finish first\)/);
    assert.match(stop.stderr, /still running after 1s, finishing 1 job;.*worker stop --now/);
    // Again, as the old message advised: still graceful.
    const again = await runCli(t.db, ["worker", "stop", "--timeout", "1s"]);
    assert.equal(again.code, 1, again.stderr);
    await waitFor(async () => (await workerList(t.db))[0]?.status === "stopping", {
      intervalMs: 200,
      what: "the worker listed as stopping",
    });
    assert.equal((await workerList(t.db))[0].current_job, "long");
    assert.match(await cliOk(t.db, ["worker", "list"]), /\bstopping\b/);
  } finally {
    Deno.writeTextFileSync(`${t.dir}/gate`, "");
  }
  assert.equal((await exitOf(w)).code, 0, w.log());
  const done = await job(t.db, "long");
  assert.equal(done.state, "completed", w.log());
  assert.deepEqual(await outcomes(t.db, "long"), ["completed"]);
  assert.doesNotMatch(w.log(), /interrupted|stopping_now/, w.log());
});

/** Exit 1, `pattern` on stdout, one line on stderr. */
function assertOneLineErrorAfter(r: CliResult, pattern: RegExp) {
  const detail = `exit ${r.code}\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}`;
  assert.equal(r.code, 1, detail);
  assert.match(r.stdout, pattern, detail);
  assert.match(r.stderr, /^queuectl: [^\n]+\n$/, detail);
}

Deno.test("[worker start] one Ctrl+C delivered twice at once (terminal and `deno task`) stays graceful", async () => {
  await using t = await tempDb();
  await enqueueGated(t.db, t.dir, "long");
  const w = await workersRunning(t.db, "long");
  try {
    w.signal("SIGINT");
    w.signal("SIGINT");
    await waitFor(() => w.log().includes("supervisor.stopping"), { what: "stopping logged" });
    await new Promise((r) => setTimeout(r, 300));
    assert.doesNotMatch(w.log(), /stopping_now/, w.log());
  } finally {
    Deno.writeTextFileSync(`${t.dir}/gate`, "");
  }
  assert.equal((await exitOf(w)).code, 0, w.log());
  assert.equal((await job(t.db, "long")).state, "completed", w.log());
});

Deno.test("[worker start] a second Ctrl+C interrupts the running job: back to pending, exit 130", async () => {
  await using t = await tempDb();
  await enqueueGated(t.db, t.dir, "long");
  const w = await workersRunning(t.db, "long");
  w.signal("SIGINT");
  await waitFor(() => w.log().includes("supervisor.stopping"), { what: "stopping logged" });
  // A second press, as a person makes it: later than one press delivered twice.
  await new Promise((r) => setTimeout(r, 200));
  w.signal("SIGINT");
  const status = await exitOf(w);
  assert.equal(status.code, 130, w.log());
  assert.match(w.log(), /^queuectl: stopped at once: running jobs were interrupted/m);
  const j = await job(t.db, "long");
  assert.equal(j.state, "pending");
  assert.equal(j.attempts, 0, "an interrupted run must not use up a retry");
  assert.deepEqual(await outcomes(t.db, "long"), ["interrupted"]);
  assert.deepEqual(await workerList(t.db), []);
});

Deno.test("[worker stop] --now interrupts running jobs; the supervisor exits 130", async () => {
  await using t = await tempDb();
  await enqueueGated(t.db, t.dir, "long");
  const w = await workersRunning(t.db, "long", 2);
  let stop: CliResult;
  try {
    stop = await runCli(t.db, ["worker", "stop", "--now", "--timeout", "30s"]);
  } finally {
    Deno.writeTextFileSync(`${t.dir}/gate`, ""); // only matters when --now failed
  }
  assert.equal(stop.code, 0, stop.stderr);
  assert.match(stop.stdout, /^asked 2 workers to stop now .*\nstopped 2 workers\n$/);
  assert.equal((await exitOf(w)).code, 130, w.log());
  assert.equal((await job(t.db, "long")).state, "pending");
  assert.deepEqual(await outcomes(t.db, "long"), ["interrupted"]);
});

Deno.test("[worker stop] after the supervisor was SIGKILLed: stops its workers directly, removes its pid file", async () => {
  await using t = await tempDb();
  // Two busy workers: an idle orphan stops on its own as soon as its supervisor is gone.
  await enqueueGated(t.db, t.dir, "long");
  await enqueueGated(t.db, t.dir, "long2");
  const w = await workersRunning(t.db, "long", 2);
  await waitFor(async () => (await jobState(t.db, "long2")) === "processing", {
    what: "long2 running",
  });
  const supervisor = w.process.pid;
  w.signal("SIGKILL");
  // Not w.done(): the orphaned workers hold its output pipes until they stop.
  await w.process.status;
  try {
    // Graceful first: the orphans keep their job and say so.
    const graceful = await runCli(t.db, ["worker", "stop", "--timeout", "1s"]);
    assertOneLineErrorAfter(graceful, /removed 1 stale pid file.*\nasked 2 workers to stop/);
    assert.match(graceful.stdout, /2 of them had lost their supervisor/);
    assert.deepEqual(
      [...Deno.readDirSync(runDir(t.db))].filter((e) => e.name.endsWith(".pid")),
      [],
    );
    const forced = await runCli(t.db, ["worker", "stop", "--now", "--timeout", "30s"]);
    assert.equal(forced.code, 0, forced.stderr);
    assert.match(forced.stdout, /^asked 2 workers to stop now .*\n.*\nstopped 2 workers\n$/);
    assert.deepEqual(await workerList(t.db), []);
    for (const id of ["long", "long2"]) {
      assert.equal((await job(t.db, id)).state, "pending");
      assert.deepEqual(await outcomes(t.db, id), ["interrupted"]);
    }
  } finally {
    Deno.writeTextFileSync(`${t.dir}/gate`, "");
    assert.deepEqual(await reapStore(t.db, 20_000), [], `supervisor ${supervisor}`);
    await w.done();
  }
  assert.equal(
    await cliOk(t.db, ["worker", "stop"]),
    "no workers are running on this host\n",
  );
});

Deno.test("[worker start] an invalid configured value exits 2 with one line before any worker starts", async () => {
  await using t = await tempDb();
  for (const detach of [[], ["--detach"]]) {
    const [exec, ...pre] = cliCommand();
    const child = new Deno.Command(exec, {
      args: [...pre, "worker", "start", ...detach],
      env: { QUEUECTL_DB: t.db, NO_COLOR: "1", QUEUECTL_MAX_RETRIES: "abc" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const output = child.output();
    const status = await statusWithin(child, 20_000);
    if (!status) child.kill("SIGKILL");
    const { code, stdout, stderr } = await output;
    await reapStore(t.db, 10_000);
    const dec = new TextDecoder();
    const r = { code, stdout: dec.decode(stdout), stderr: dec.decode(stderr) };
    assert.ok(status, `worker start ${detach} kept running\n${r.stderr}`);
    assertOneLineError(r, 2, /QUEUECTL_MAX_RETRIES: max-retries must be an integer/);
    assert.deepEqual(await workerList(t.db), []);
  }
});

/** The session id of `pid`, from `ps`. */
async function sessionOf(pid: number): Promise<number> {
  const out = await new Deno.Command("ps", { args: ["-o", "sid=", "-p", String(pid)] }).output();
  return Number(new TextDecoder().decode(out.stdout).trim());
}

Deno.test("[worker start] --detach returns once the workers are up; worker list and stop work on it", async () => {
  await using t = await tempDb();
  await enqueueGated(t.db, t.dir, "long");
  await enqueueGated(t.db, t.dir, "long2");
  const r = await runCli(t.db, ["worker", "start", "--detach", "--count", "2"]);
  let pid = 0;
  try {
    assert.equal(r.code, 0, r.stderr);
    const m = /^started 2 workers in the background; supervisor pid (\d+)\nlog: (\S+)\n/.exec(
      r.stdout,
    );
    assert.ok(m, r.stdout);
    pid = Number(m[1]);
    const log = m[2];
    assert.equal(log, `${runDir(t.db)}/${pid}.log`);
    assert.equal(Deno.statSync(log).mode! & 0o777, 0o600);
    // Up when it returns: both registered, by that supervisor.
    const workers = await workerList(t.db);
    assert.deepEqual(workers.map((w) => w.supervisor_pid), [pid, pid]);
    // A session of its own: Ctrl+C in this terminal (our session) never reaches it.
    assert.notEqual(await sessionOf(pid), await sessionOf(Deno.pid));
    for (const id of ["long", "long2"]) {
      await waitFor(async () => (await jobState(t.db, id)) === "processing", {
        what: `${id} running`,
      });
    }
    const stop = await runCli(t.db, ["worker", "stop", "--timeout", "1s"]);
    assert.equal(stop.code, 1, stop.stderr);
    assert.deepEqual((await workerList(t.db)).map((w) => w.status).sort(), [
      "stopping",
      "stopping",
    ]);
    Deno.writeTextFileSync(`${t.dir}/gate`, "");
    // The stop asked for stays under way: once their jobs end, the workers and supervisor exit.
    await waitFor(async () => (await procsOfStore(t.db)).length === 0, {
      intervalMs: 100,
      what: "the background supervisor and its workers to exit",
    });
    assert.deepEqual(await workerList(t.db), []);
    assert.equal((await job(t.db, "long")).state, "completed");
    assert.equal((await job(t.db, "long2")).state, "completed");
    assert.match(Deno.readTextFileSync(log), /job\.completed .*job=long[\s\S]*supervisor\.stopped/);
  } finally {
    Deno.writeTextFileSync(`${t.dir}/gate`, "");
    if (pid) {
      try {
        Deno.kill(pid, "SIGTERM");
      } catch { /* stopped */ }
    }
    await reapStore(t.db, 20_000);
  }
});

Deno.test("[worker start] --detach with --foreground is refused", async () => {
  await using t = await tempDb();
  const r = await runCli(t.db, ["worker", "start", "--detach", "--foreground"]);
  assertOneLineError(r, 2, /give either --detach or --foreground/);
});

Deno.test("[liveness] one rule: live until stopped or the lease runs out; draining shows stopping", () => {
  const base = { heartbeatAt: 1000, stoppedAt: null, stoppingAt: null };
  assert.equal(isWorkerLive(base, 500, 1500), true);
  assert.equal(isWorkerLive(base, 500, 1501), false);
  assert.equal(isWorkerLive({ ...base, stoppedAt: 1200 }, 500, 1200), false);
  assert.equal(workerStatus(base, 500, 1200), "running");
  assert.equal(workerStatus({ ...base, stoppingAt: 1100 }, 500, 1200), "stopping");
  assert.equal(workerStatus({ ...base, stoppingAt: 1100 }, 500, 2000), "lost");
  assert.equal(workerStatus({ ...base, stoppedAt: 1300 }, 500, 1400), "stopped");
});
