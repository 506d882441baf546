/**
 * `migrate --to`: SQLite → PostgreSQL → SQLite again, with jobs in every finished state, their
 * attempts, retry marks, output and settings, schedules (one paused) and queue rules; an empty
 * target only. Needs a PostgreSQL test
 * server; where none answers, this file says so and is ignored.
 */
import assert from "node:assert/strict";
import { pgTestServer } from "./pg_helpers.ts";
import { cliOk, openDb, runCli, startWorkers, tempDb, waitFor } from "./helpers.ts";

const server = await pgTestServer();

/** What a user sees of a queue: every job as JSON, each one's output, and the settings. */
async function snapshot(db: string) {
  const jobs = JSON.parse(await cliOk(db, ["list", "--all", "--json"]));
  const shows = [];
  for (const j of jobs) {
    const show = JSON.parse(await cliOk(db, ["show", j.id, "--json"]));
    const logs = JSON.parse(await cliOk(db, ["logs", j.id, "--json"]));
    shows.push({ show, logs });
  }
  const config = JSON.parse(await cliOk(db, ["config", "list", "--json"]));
  const schedules = JSON.parse(await cliOk(db, ["schedule", "list", "--json"]));
  const queues = JSON.parse(await cliOk(db, ["queue", "list", "--json"]));
  return { jobs, shows, config, schedules, queues };
}

Deno.test({
  name:
    `migrate: SQLite → PostgreSQL → SQLite keeps every job, attempt, output, setting, schedule and queue rule${
      server ? "" : " (skipped: no PostgreSQL server answers)"
    }`,
  ignore: server === null,
  async fn() {
    await using t = await tempDb();
    try {
      await cliOk(t.db, ["config", "set", "backoff-base", "1"]);
      await cliOk(t.db, ["config", "set", "log-max-bytes", "2KiB"]);
      await cliOk(t.db, ["enqueue", "--file", "-"], {
        stdin: [
          { id: "ok", command: "echo fine; echo warn >&2" },
          { id: "bad", command: "echo try-$QUEUECTL_ATTEMPT; exit 3", max_retries: 1 },
          { id: "later", command: "true", delay: "1h", priority: 5 },
          { id: "stopped", command: "true", delay: "1h" },
        ].map((j) => JSON.stringify(j)).join("\n"),
      });
      await cliOk(t.db, ["cancel", "stopped"]);
      const w = startWorkers(t.db, 1);
      try {
        await waitFor(async () => {
          const jobs = JSON.parse(await cliOk(t.db, ["list", "--all", "--json"]));
          return jobs.filter((j: { state: string }) => j.state === "dead").length === 1 &&
            jobs.filter((j: { state: string }) => j.state === "completed").length === 1;
        }, { what: "ok completed and bad dead" });
      } finally {
        w.signal("SIGTERM");
        await w.done();
      }
      await cliOk(t.db, ["dlq", "retry", "bad"]);
      await cliOk(t.db, ["cancel", "bad"]);
      await cliOk(t.db, ["schedule", "add", "nightly", "0 2 * * *", "--queue", "io", "--", "true"]);
      await cliOk(t.db, ["schedule", "add", "hourly", "@hourly", "--tz", "UTC", "--", "true"]);
      await cliOk(t.db, ["schedule", "pause", "hourly"]);
      await cliOk(t.db, ["queue", "set", "io", "--concurrency", "2"]);
      await cliOk(t.db, ["queue", "pause", "io"]);
      await cliOk(t.db, ["queue", "set", "mail", "--concurrency", "1"]);
      const before = await snapshot(t.db);
      assert.equal(before.schedules.length, 2);
      assert.equal(before.queues.filter((q: { paused: boolean }) => q.paused).length, 1);

      const pg = server!.freshSchemaUrl();
      const there = await runCli(t.db, ["migrate", "--to", pg]);
      assert.equal(there.code, 0, there.stderr);
      assert.match(
        there.stdout,
        /^migrated 4 jobs \(3 attempts\), 2 settings, 2 schedules and the rules of 2 queues to postgres:/,
      );
      assert.deepEqual(await snapshot(pg), before);

      const back = `${t.dir}/back.db`;
      const again = await runCli(pg, ["migrate", "--to", back]);
      assert.equal(again.code, 0, again.stderr);
      assert.deepEqual(await snapshot(back), before);

      // Only into an empty queue, and never with jobs running.
      const full = await runCli(t.db, ["migrate", "--to", back]);
      assert.equal(full.code, 1);
      assert.match(full.stderr, /already holds a queue; migrate only into an empty one/);
      const s = await openDb(t.db);
      try {
        await cliOk(t.db, ["retry", "bad"]);
        assert.equal((await s.claimNext("w", await s.now())).length, 1);
      } finally {
        await s.close();
      }
      const busy = await runCli(t.db, ["migrate", "--to", `${t.dir}/other.db`]);
      assert.equal(busy.code, 1);
      assert.match(busy.stderr, /1 job is running; stop the workers first/);
    } finally {
      await server!.dispose();
    }
  },
});
