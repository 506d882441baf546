/**
 * Store conformance for recurring jobs (`queuectl schedule`): the schedules table and the
 * compare-and-set that fires each tick once, run through the supervisor's own firing code
 * (workers/schedules.ts) with the time passed in as `now`. Called from store_sqlite_test.ts and
 * store_postgres_test.ts.
 */
import assert from "node:assert/strict";
import { parseCron, tickJobId } from "../lib/cron.ts";
import { type BackoffPolicy, transition } from "../lib/job.ts";
import type { NewSchedule, Store } from "../lib/store/store.ts";
import { fireDueSchedules } from "../workers/schedules.ts";
import { conformanceTest, type DatabaseFactory, newJob } from "./store_conformance.ts";

/** 2027-01-15T08:00:00Z: a tick of every hourly and daily-at-08:00 UTC expression. */
const T0 = 1_800_000_000_000;
const HOUR = 3_600_000;
const POLICY: BackoffPolicy = { backoffBaseSeconds: 2, backoffMaxSeconds: 3600, jitter: false };

/** A schedule of `cron` in UTC whose next run is its first tick after `after` (default T0 - 1). */
function newSchedule(name: string, cron: string, fields: Partial<NewSchedule> = {}): NewSchedule {
  return {
    name,
    cron,
    tz: "UTC",
    catchUp: "last",
    job: {
      command: `echo ${name}`,
      maxRetries: 2,
      priority: 5,
      timeoutMs: 0,
      cwd: "/tmp",
      env: null,
      queue: "default",
      uniqueKey: null,
    },
    nextRunAt: parseCron(cron, "UTC").nextAfter(T0 - 1),
    ...fields,
  };
}

async function jobIds(store: Store): Promise<string[]> {
  return (await store.listJobs({ limit: 1000 })).map((j) => j.id).sort();
}

export function cronConformance(name: string, newDatabase: DatabaseFactory): void {
  const test = conformanceTest(`store(${name}) cron`, newDatabase);
  const cronTest = (title: string, fn: (store: Store, connect: () => Promise<Store>) => unknown) =>
    test(title, ({ store, connect }) => fn(store, connect));

  cronTest("add, get, list and remove round-trip; a taken name stores nothing", async (store) => {
    const s = newSchedule("nightly", "0 2 * * *", {
      tz: "Europe/Paris",
      catchUp: "none",
      job: {
        command: "./backup.sh --all",
        maxRetries: 0,
        priority: -3,
        timeoutMs: 60_000,
        cwd: "/srv",
        env: { TOKEN: "x y" },
        queue: "backups",
        uniqueKey: "nightly",
      },
      nextRunAt: T0 + 5,
    });
    assert.equal(await store.addSchedule(s, T0), true);
    assert.equal(
      await store.addSchedule(newSchedule("nightly", "@hourly"), T0 + 1),
      false,
      "a second schedule of the same name is refused",
    );
    const got = await store.getSchedule("nightly");
    assert.deepEqual(got, {
      ...s,
      paused: false,
      lastRunAt: null,
      lastJobId: null,
      lastJobState: null,
      createdAt: T0,
      updatedAt: T0,
    });
    await store.addSchedule(newSchedule("a-first", "@hourly"), T0);
    assert.deepEqual((await store.listSchedules()).map((x) => x.name), ["a-first", "nightly"]);
    assert.equal(await store.removeSchedule("nightly"), true);
    assert.equal(await store.removeSchedule("nightly"), false);
    assert.equal(await store.getSchedule("nightly"), null);
  });

  cronTest(
    "importSchedules stores schedules as they are; a taken name stores none",
    async (store) => {
      await store.addSchedule(newSchedule("hourly", "@hourly"), T0 - 10);
      await store.addSchedule(newSchedule("daily", "0 8 * * *", { catchUp: "none" }), T0 - 20);
      await fireDueSchedules(store, T0 + 300);
      await store.setSchedulePaused("daily", true, null, T0 + 400);
      const before = await store.listSchedules();
      assert.deepEqual(before.map((s) => [s.name, s.paused, s.lastRunAt]), [
        ["daily", true, T0],
        ["hourly", false, T0],
      ]);
      for (const s of before) await store.removeSchedule(s.name);
      await store.importSchedules(before);
      assert.deepEqual(
        await store.listSchedules(),
        before,
        "every field, the last job's state too",
      );
      await store.removeSchedule("hourly");
      await assert.rejects(() => store.importSchedules(before));
      assert.deepEqual((await store.listSchedules()).map((s) => s.name), ["daily"]);
    },
  );

  cronTest("a due tick becomes one job with the schedule's fields", async (store) => {
    await store.addSchedule(newSchedule("hourly", "@hourly"), T0 - 10);
    assert.deepEqual(await fireDueSchedules(store, T0 - 1), [], "nothing is due before the tick");
    const fired = await fireDueSchedules(store, T0 + 300);
    assert.deepEqual(fired, [{ name: "hourly", tick: T0, jobId: tickJobId("hourly", T0) }]);
    assert.equal(tickJobId("hourly", T0), "hourly@2027-01-15T08:00:00Z");
    const job = await store.getJob(tickJobId("hourly", T0));
    assert.ok(job);
    assert.deepEqual(
      [job.command, job.maxRetries, job.priority, job.cwd, job.state, job.runAt, job.createdAt],
      ["echo hourly", 2, 5, "/tmp", "pending", T0, T0 + 300],
    );
    assert.equal(await store.countJobs("pending"), 1);
    const s = (await store.getSchedule("hourly"))!;
    assert.deepEqual(
      [s.nextRunAt, s.lastRunAt, s.lastJobId, s.lastJobState],
      [T0 + HOUR, T0, job.id, "pending"],
    );
    assert.deepEqual(await fireDueSchedules(store, T0 + 600), [], "a tick fires once");
    assert.deepEqual(await jobIds(store), [job.id]);
  });

  cronTest("a tick's job goes to the schedule's queue; a held unique key skips the tick", async (
    store,
  ) => {
    const s = newSchedule("sync", "@hourly");
    await store.addSchedule({ ...s, job: { ...s.job, queue: "io", uniqueKey: "sync" } }, T0 - 10);
    const first = tickJobId("sync", T0);
    assert.deepEqual(await fireDueSchedules(store, T0 + 1), [{
      name: "sync",
      tick: T0,
      jobId: first,
    }]);
    const job = (await store.getJob(first))!;
    assert.deepEqual([job.queue, job.uniqueKey], ["io", "sync"]);
    // The first job still waits: the next tick enqueues nothing, and the last run stays.
    assert.deepEqual(await fireDueSchedules(store, T0 + HOUR + 1), [{
      name: "sync",
      tick: T0 + HOUR,
      jobId: null,
    }]);
    assert.deepEqual(await jobIds(store), [first]);
    const after = (await store.getSchedule("sync"))!;
    assert.deepEqual([after.nextRunAt, after.lastJobId], [T0 + 2 * HOUR, first]);
    // Once it finished, the key is free: the next tick runs.
    const [claimed] = await store.claimNext("w1", T0 + 2 * HOUR, 1, ["io"]);
    assert.equal(claimed.id, first);
    await store.finishAttempt(
      first,
      "w1",
      transition(claimed, { type: "succeed" }, T0 + 2 * HOUR, POLICY),
      { outcome: "completed", exitCode: 0, signal: null, error: null },
      T0 + 2 * HOUR,
    );
    const second = tickJobId("sync", T0 + 2 * HOUR);
    assert.deepEqual((await fireDueSchedules(store, T0 + 2 * HOUR + 1))[0].jobId, second);
    assert.deepEqual(await jobIds(store), [first, second].sort());
  });

  cronTest("two supervisors firing the same ticks at once enqueue one job per tick", async (
    store,
    connect,
  ) => {
    const other = await connect();
    const third = await connect();
    await store.addSchedule(newSchedule("s", "*/10 * * * * *"), T0 - 10);
    await store.addSchedule(newSchedule("m", "* * * * *"), T0 - 10);
    let firedCount = 0;
    for (let t = T0; t < T0 + 120_000; t += 10_000) {
      const now = t + 1;
      const results = await Promise.all([store, other, third].map((s) => fireDueSchedules(s, now)));
      firedCount += results.flat().length;
    }
    const ids = await jobIds(store);
    assert.equal(ids.length, 12 + 2, "12 ten-second ticks and 2 minute ticks");
    assert.equal(firedCount, ids.length, "each tick reported fired by one firer only");
    assert.equal(new Set(ids).size, ids.length);
    assert.equal(await store.countJobs("pending"), ids.length);
  });

  cronTest("fireSchedule is a compare-and-set on the next run", async (store, connect) => {
    const other = await connect();
    await store.addSchedule(newSchedule("h", "@hourly"), T0 - 10);
    const job = { ...newJob(tickJobId("h", T0)), runAt: T0 };
    const results = await Promise.all([
      store.fireSchedule("h", T0, job, T0 + HOUR, T0 + 1),
      other.fireSchedule("h", T0, job, T0 + HOUR, T0 + 1),
    ]);
    assert.deepEqual(results.sort(), [false, true]);
    assert.equal(await store.fireSchedule("h", T0 + 5, job, T0 + HOUR, T0 + 1), false);
    assert.equal(await store.fireSchedule("nope", T0, job, T0 + HOUR, T0 + 1), false);
    assert.deepEqual(await jobIds(store), [job.id]);
  });

  cronTest("a tick whose job id exists already enqueues nothing more", async (store) => {
    await store.enqueue([newJob(tickJobId("h", T0), { command: "mine" })], T0 - 5);
    await store.addSchedule(newSchedule("h", "@hourly"), T0 - 10);
    assert.equal((await fireDueSchedules(store, T0 + 1)).length, 1);
    assert.equal((await store.getJob(tickJobId("h", T0)))!.command, "mine");
    assert.equal(await store.countJobs(), 1);
    assert.equal((await store.getSchedule("h"))!.nextRunAt, T0 + HOUR);
  });

  cronTest("after a downtime, catch-up last runs the last missed tick once", async (store) => {
    await store.addSchedule(newSchedule("h", "@hourly"), T0 - 10);
    const now = T0 + 5 * HOUR + 10 * 60_000; // ticks T0 … T0+5h were missed
    const fired = await fireDueSchedules(store, now);
    assert.deepEqual(fired, [{
      name: "h",
      tick: T0 + 5 * HOUR,
      jobId: tickJobId("h", T0 + 5 * HOUR),
    }]);
    assert.deepEqual(await jobIds(store), [tickJobId("h", T0 + 5 * HOUR)]);
    assert.equal((await store.getSchedule("h"))!.nextRunAt, T0 + 6 * HOUR);
    assert.deepEqual(await fireDueSchedules(store, now + 1000), []);
  });

  cronTest("after a downtime, catch-up none runs no missed tick; an on-time one runs", async (
    store,
  ) => {
    await store.addSchedule(newSchedule("h", "@hourly", { catchUp: "none" }), T0 - 10);
    const fired = await fireDueSchedules(store, T0 + 5 * HOUR + 10 * 60_000);
    assert.deepEqual(fired, [{ name: "h", tick: T0 + 5 * HOUR, jobId: null }]);
    assert.deepEqual(await jobIds(store), []);
    const s = (await store.getSchedule("h"))!;
    assert.deepEqual([s.nextRunAt, s.lastRunAt, s.lastJobId], [T0 + 6 * HOUR, null, null]);
    const onTime = await fireDueSchedules(store, T0 + 6 * HOUR + 2_000);
    assert.deepEqual(onTime.map((f) => f.jobId), [tickJobId("h", T0 + 6 * HOUR)]);
  });

  cronTest("a paused schedule fires nothing; resumed, it skips the ticks it slept through", async (
    store,
  ) => {
    await store.addSchedule(newSchedule("h", "@hourly"), T0 - 10);
    const paused = await store.setSchedulePaused("h", true, null, T0 - 5);
    assert.equal(paused?.paused, true);
    assert.deepEqual(await fireDueSchedules(store, T0 + 3 * HOUR), []);
    assert.deepEqual(await store.dueSchedules(T0 + 3 * HOUR), []);
    assert.equal(await store.fireSchedule("h", T0, null, T0 + HOUR, T0 + 1), false);
    const resumed = await store.setSchedulePaused("h", false, T0 + 4 * HOUR, T0 + 3 * HOUR + 1);
    assert.deepEqual([resumed?.paused, resumed?.nextRunAt], [false, T0 + 4 * HOUR]);
    assert.deepEqual(await fireDueSchedules(store, T0 + 3 * HOUR + 2), []);
    assert.deepEqual(await jobIds(store), []);
    // Resuming a running schedule leaves its next run alone.
    const again = await store.setSchedulePaused("h", false, T0 + 9 * HOUR, T0 + 3 * HOUR + 3);
    assert.equal(again?.nextRunAt, T0 + 4 * HOUR);
    assert.equal(await store.setSchedulePaused("nope", true, null, T0), null);
  });

  cronTest("the last run's outcome follows its job, and says when the job is gone", async (
    store,
  ) => {
    await store.addSchedule(newSchedule("h", "@hourly"), T0 - 10);
    await fireDueSchedules(store, T0 + 1);
    const id = tickJobId("h", T0);
    const [claimed] = await store.claimNext("w1", T0 + 2);
    assert.equal(claimed.id, id);
    assert.equal((await store.listSchedules())[0].lastJobState, "processing");
    await store.finishAttempt(
      id,
      "w1",
      { state: "completed", attempts: 1, runAt: null },
      { outcome: "completed", exitCode: 0, signal: null, error: null },
      T0 + 3,
    );
    assert.equal((await store.getSchedule("h"))!.lastJobState, "completed");
    await store.removeJob(id, ["completed"]);
    const s = (await store.getSchedule("h"))!;
    assert.deepEqual([s.lastJobId, s.lastJobState], [id, null]);
  });
}
