/**
 * `queuectl schedule`: recurring jobs fired by real `worker start` supervisors against a real
 * store, with real shell jobs. Every-second schedules (the 6-field form, seconds first) keep the
 * tests short; catch-up after a downtime is covered with the store's `now` in
 * tests/store_conformance_cron.ts.
 */
import assert from "node:assert/strict";
import {
  assertOneLineError,
  cliOk,
  dumpStore,
  lineCount,
  runCli,
  sqliteOnly,
  startCli,
  startWorkers,
  tempDb,
  waitFor,
  type Workers,
} from "./helpers.ts";

interface ScheduleJson {
  name: string;
  cron: string;
  tz: string;
  catch_up: string;
  paused: boolean;
  next_run_at: string | null;
  last_run_at: string | null;
  last_job_id: string | null;
  last_outcome: string | null;
  command: string;
  max_retries: number;
  priority: number;
  timeout_seconds: number;
  env_keys: string[];
  queue: string;
  unique_key: string | null;
}

async function schedules(db: string): Promise<ScheduleJson[]> {
  return JSON.parse(await cliOk(db, ["schedule", "list", "--json"]));
}

async function jobIds(db: string): Promise<string[]> {
  const jobs: Array<{ id: string }> = JSON.parse(
    await cliOk(db, ["list", "--json", "--limit", "1000"]),
  );
  return jobs.map((j) => j.id).sort();
}

/** Stops supervisors gracefully and waits for them. */
async function stopAll(...ws: Workers[]) {
  for (const w of ws) w.signal("SIGTERM");
  for (const w of ws) await w.done();
}

Deno.test("[schedule] a real worker start fires an every-second schedule once per tick; list shows the last run", async () => {
  await using t = await tempDb();
  const out = `${t.dir}/ticks`;
  const added = await cliOk(t.db, [
    "schedule",
    "add",
    "tick",
    "* * * * * *",
    "--tz",
    "UTC",
    "--retries",
    "0",
    "--priority",
    "7",
    "--env",
    "WHO=cron",
    "--",
    `echo "$QUEUECTL_JOB_ID $WHO" >> ${out}`,
  ]);
  assert.match(added, /^added schedule tick: \* \* \* \* \* \* \(UTC\), next run \S+Z \(in /);
  assert.match(added, /no worker is running: start one/);
  const w = startWorkers(t.db, 1);
  try {
    await waitFor(() => lineCount(out) >= 3, { what: "3 ticks ran", timeoutMs: 30_000 });
    await cliOk(t.db, ["schedule", "pause", "tick"]);
    const [paused] = await schedules(t.db);
    assert.equal(paused.paused, true);
    assert.equal(paused.next_run_at, null);
    await waitFor(async () => (await schedules(t.db))[0].last_outcome === "completed", {
      what: "the last tick's job completed",
    });
    const before = await jobIds(t.db);
    // Paused: no tick fires however long the supervisor runs.
    await new Promise((r) => setTimeout(r, 2_500));
    assert.deepEqual(await jobIds(t.db), before, "a paused schedule fires nothing");

    const lines = Deno.readTextFileSync(out).trim().split("\n");
    const ids = lines.map((l) => l.split(" ")[0]);
    assert.ok(lines.every((l) => l.endsWith(" cron")), "the job has the schedule's env");
    assert.equal(new Set(ids).size, ids.length, "each tick's job ran once");
    for (const id of ids) assert.match(id, /^tick@\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.deepEqual([...ids].sort(), before, "one job per tick, each ran");

    const [s] = await schedules(t.db);
    assert.equal(s.last_job_id, before.at(-1));
    assert.equal(s.last_run_at, before.at(-1)!.replace("tick@", "").replace("Z", ".000Z"));
    const job = JSON.parse(await cliOk(t.db, ["show", s.last_job_id!, "--json"]));
    assert.deepEqual([job.priority, job.max_retries, job.env_keys], [7, 0, ["WHO"]]);

    const table = await cliOk(t.db, ["schedule", "list"]);
    assert.match(
      table,
      /^NAME +CRON +TZ +QUEUE +NEXT RUN +LAST RUN +LAST JOB +OUTCOME +COMMAND\n/,
    );
    assert.match(
      table,
      /\ntick +\* \* \* \* \* \* +UTC +default +paused +\S+ ago +tick@\S+ +completed /,
    );

    const resumed = await cliOk(t.db, ["schedule", "resume", "tick"]);
    assert.match(resumed, /^resumed schedule tick, next run \S+Z \(in /);
    await waitFor(async () => (await jobIds(t.db)).length > before.length, {
      what: "a tick after resume",
    });
  } finally {
    await stopAll(w);
  }
  assert.match(w.log(), /schedule\.fired schedule=tick job=tick@/);
  assert.doesNotMatch(w.log(), /WHO|echo/, "no command or env at info level");
});

Deno.test("[schedule] two supervisors firing one schedule enqueue one job per tick", async () => {
  await using t = await tempDb();
  await cliOk(t.db, ["schedule", "add", "both", "* * * * * *", "--", "true"]);
  const a = startWorkers(t.db, 1, { QUEUECTL_HOST: "host-a" });
  const b = startWorkers(t.db, 1, { QUEUECTL_HOST: "host-b" });
  try {
    await waitFor(async () => (await jobIds(t.db)).length >= 5, {
      what: "5 ticks fired",
      timeoutMs: 30_000,
    });
    await cliOk(t.db, ["schedule", "pause", "both"]);
  } finally {
    await stopAll(a, b);
  }
  const ids = await jobIds(t.db);
  const fired = (log: string) => [...log.matchAll(/schedule\.fired schedule=both job=(\S+)/g)];
  const firedA = fired(a.log()).map((m) => m[1]);
  const firedB = fired(b.log()).map((m) => m[1]);
  // Each tick is reported fired by exactly one supervisor: the other lost the compare-and-set.
  assert.deepEqual([...firedA, ...firedB].sort(), ids, `a: ${firedA}\nb: ${firedB}`);
  assert.equal(new Set(ids).size, ids.length);
});

Deno.test("[schedule] bad cron, unknown zone, a taken name: one line, exit 2, nothing stored", async () => {
  await using t = await tempDb();
  await cliOk(t.db, ["schedule", "add", "nightly", "0 2 * * *", "--tz", "UTC", "--", "true"]);
  const before = await dumpStore(t.db);
  const cases: Array<[string[], RegExp]> = [
    [["bad", "61 * * * *", "--", "true"], /"61 \* \* \* \*" is not a cron expression .*minute/],
    [["bad", "every day", "--", "true"], /is not a cron expression/],
    [["bad", "@reboot", "--", "true"], /@reboot is not supported/],
    [["bad", "0 0 31 2 *", "--", "true"], /never matches a date/],
    [["bad", "@daily", "--tz", "Mars/Olympus", "--", "true"], /unknown time zone "Mars\/Olympus"/],
    [["nightly", "@hourly", "--", "true"], /schedule "nightly" exists already; .*remove/],
    [["bad", "0", "2", "*", "*", "*", "--", "true"], /quote the expression/],
    [["bad", "@daily", "echo", "hi"], /put the command after --/],
    [["bad", "@daily"], /missing command after --/],
    [["@daily", "--", "true"], /give a name, a quoted cron expression and a command/],
    [["bad", "@daily", "--"], /missing command after --/],
    [["bad name", "@daily", "--", "true"], /schedule name "bad name" must be/],
    [["bad", "@daily", "--catch-up", "all", "--", "true"], /--catch-up must be last or none/],
    [["bad", "@daily", "--retries", "x", "--", "true"], /--retries must be an integer/],
    [["bad", "@daily", "--cwd", "/nonexistent/dir", "--", "true"], /does not exist/],
  ];
  for (const [args, pattern] of cases) {
    assertOneLineError(await runCli(t.db, ["schedule", "add", ...args]), 2, pattern);
  }
  assert.equal(await dumpStore(t.db), before, "nothing stored");
  for (const verb of ["remove", "pause", "resume", "show"]) {
    assertOneLineError(
      await runCli(t.db, ["schedule", verb, "nope"]),
      1,
      /schedule "nope" not found; see queuectl schedule list/,
    );
  }
});

Deno.test("[schedule] show lists the next runs in the schedule's zone; remove keeps its jobs", async () => {
  await using t = await tempDb();
  await cliOk(t.db, [
    "schedule",
    "add",
    "report",
    "30 8 * * MON-FRI",
    "--tz",
    "europe/paris",
    "--catch-up",
    "none",
    "--timeout",
    "5m",
    "--",
    "make",
    "report",
  ]);
  const s = JSON.parse(await cliOk(t.db, ["schedule", "show", "report", "--json"]));
  assert.equal(s.tz, "Europe/Paris", "the zone is stored as the runtime spells it");
  assert.equal(s.catch_up, "none");
  assert.equal(s.timeout_seconds, 300);
  assert.equal(s.command, "make report");
  assert.equal(s.next_runs.length, 5);
  for (const at of s.next_runs as string[]) {
    const d = new Date(at);
    const paris = new Intl.DateTimeFormat("en-GB", {
      timeZone: "Europe/Paris",
      weekday: "short",
      hour: "2-digit",
      minute: "2-digit",
    }).format(d);
    assert.match(paris, /^(Mon|Tue|Wed|Thu|Fri) 08:30$/, `${at} is ${paris} in Paris`);
  }
  const text = await cliOk(t.db, ["schedule", "show", "report"]);
  assert.match(text, /^name: +report\ncron: +30 8 \* \* MON-FRI \(Europe\/Paris\)\n/);
  assert.match(text, /catch-up: +none/);
  assert.equal(
    await cliOk(t.db, ["schedule", "remove", "report"]),
    "removed schedule report (jobs it enqueued stay)\n",
  );
  assert.match(await cliOk(t.db, ["schedule", "list"]), /^no schedules; add one with /);
  assert.deepEqual(await schedules(t.db), []);
});

/** Debian's libfaketime, which the `faketime` wrapper preloads; `null` where it is missing. */
function libfaketime(): string | null {
  for (const arch of ["x86_64", "aarch64"]) {
    const p = `/usr/lib/${arch}-linux-gnu/faketime/libfaketime.so.1`;
    try {
      Deno.statSync(p);
      return p;
    } catch { /* next */ }
  }
  return null;
}

Deno.test({
  name:
    "[schedule] after a 5 h downtime (faketime), catch-up last runs the last tick once; none runs none",
  // PostgreSQL's store clock is the server's, which faketime does not move.
  ignore: sqliteOnly || libfaketime() === null,
  async fn() {
    await using t = await tempDb();
    for (const mode of ["last", "none"]) {
      await cliOk(t.db, [
        "schedule",
        "add",
        mode,
        "@hourly",
        "--tz",
        "UTC",
        "--catch-up",
        mode,
        "--",
        `echo ${mode}`,
      ]);
    }
    // Five hours on, at half past an hour: ticks of five hours were missed, none is on time.
    const hour = 3_600_000;
    const now = Date.now();
    const offsetMs = 5 * hour + (hour / 2 - (now % hour));
    const expected = Math.floor((now + offsetMs) / hour) * hour;
    const w = startWorkers(t.db, 1, {
      FAKETIME: `+${Math.round(offsetMs / 1000)}`,
      LD_PRELOAD: libfaketime()!,
    });
    try {
      await waitFor(() => /schedule\.skipped schedule=none/.test(w.log()), {
        what: "the missed tick of none skipped",
      });
      await waitFor(async () => (await schedules(t.db))[0].last_outcome === "completed", {
        what: "the last tick of last ran",
      });
      // Another second of firing passes: nothing more is due.
      await new Promise((r) => setTimeout(r, 1_500));
    } finally {
      await stopAll(w);
    }
    const tick = new Date(expected).toISOString().replace(".000Z", "Z");
    assert.deepEqual(await jobIds(t.db), [`last@${tick}`], w.log());
    const [last, none] = await schedules(t.db);
    assert.deepEqual([last.name, last.last_job_id], ["last", `last@${tick}`]);
    assert.deepEqual([none.name, none.last_job_id, none.last_run_at], ["none", null, null]);
    assert.equal(new Date(none.next_run_at!).getTime(), expected + hour);
  },
});

Deno.test("[schedule] --queue puts each tick's job in that queue; --unique skips ticks while one runs", async () => {
  await using t = await tempDb();
  await cliOk(t.db, [
    "schedule",
    "add",
    "sync",
    "* * * * * *",
    "--queue",
    "io",
    "--unique",
    "sync",
    "--",
    "sleep 3",
  ]);
  const [s] = await schedules(t.db);
  assert.deepEqual([s.queue, s.unique_key], ["io", "sync"]);
  const shown = await cliOk(t.db, ["schedule", "show", "sync"]);
  assert.match(shown, /\nqueue: +io\n/);
  assert.match(shown, /\nunique: +sync \(a tick is skipped/);
  const w = startCli(t.db, ["worker", "start", "--queue", "io"]);
  try {
    await waitFor(async () => (await jobIds(t.db)).length === 1, { what: "the first tick" });
    // Later ticks find the first job holding the key: no second job while it runs.
    await waitFor(() => /schedule\.skipped schedule=sync/.test(w.log()), {
      what: "a skipped tick",
    });
    const jobs = JSON.parse(await cliOk(t.db, ["list", "--json", "--queue", "io"]));
    assert.equal(jobs.length, 1);
    assert.equal(jobs[0].queue, "io");
  } finally {
    await stopAll(w);
  }
});

Deno.test("[schedule] add --queue with a bad name: one line, exit 2, nothing stored", async () => {
  await using t = await tempDb();
  const r = await runCli(t.db, [
    "schedule",
    "add",
    "x",
    "@hourly",
    "--queue",
    "no way",
    "--",
    "true",
  ]);
  assertOneLineError(r, 2, /--queue/);
  assert.deepEqual(await schedules(t.db), []);
});
