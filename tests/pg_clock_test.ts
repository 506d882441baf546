/**
 * Leases go by the database's clock: a host whose own clock is ten minutes off neither loses its
 * running job to a rescuer on another host nor looks alive when it is not. The skewed host is a
 * supervisor run under libfaketime (Debian's `faketime`); the database is a real PostgreSQL
 * server. Where either is missing, this file says so and is ignored.
 */
import assert from "node:assert/strict";
import { pgTestServer } from "./pg_helpers.ts";
import { cliOk, startWorkers, waitFor } from "./helpers.ts";

const server = await pgTestServer();
const faketime = await new Deno.Command("faketime", { args: ["-f", "+0", "true"] }).output()
  .then((o) => o.success, () => false);

interface Attempt {
  outcome: string;
}

if (!server || !faketime) {
  Deno.test({
    name: `pg clock: skipped (${!server ? "no PostgreSQL server answers" : "faketime is missing"})`,
    fn() {},
  });
  await server?.dispose();
} else {
  Deno.test("pg clock: a host whose clock is 10 min slow keeps its job; no other takes it", async () => {
    const db = server.freshSchemaUrl();
    await cliOk(db, ["config", "set", "lease-timeout", "2s"]);
    await cliOk(db, ["enqueue", JSON.stringify({ id: "long", command: "sleep 6; echo done" })]);
    // The slow host takes the job (it is alone), then a host with a true clock joins, whose
    // workers look for stale leases every second: by the slow host's clock its heartbeats are
    // ten minutes old.
    const slow = startWorkers(db, 1, skewed("-10m"));
    let honest: ReturnType<typeof startWorkers> | null = null;
    try {
      await waitFor(async () => (await job(db)).state === "processing", {
        what: "the slow host claimed the job",
      });
      honest = startWorkers(db, 1);
      await waitFor(async () => (await job(db)).state === "completed", {
        timeoutMs: 60_000,
        what: "the job completed",
      });
    } finally {
      slow.signal("SIGTERM");
      honest?.signal("SIGTERM");
    }
    await slow.done();
    await honest?.done();
    const outcomes = ((await job(db)).attempt_history as Attempt[]).map((a) => a.outcome);
    assert.deepEqual(outcomes, ["completed"], `${slow.log()}\n${honest?.log()}`);
  });

  Deno.test("pg clock: a dead host whose clock is 10 min fast is rescued after the lease", async () => {
    const db = server.freshSchemaUrl();
    const marker = String(crypto.getRandomValues(new Uint32Array(1))[0]).padStart(10, "0");
    await cliOk(db, ["config", "set", "lease-timeout", "2s"]);
    await cliOk(db, [
      "enqueue",
      JSON.stringify({
        id: "long",
        command: `if [ $QUEUECTL_ATTEMPT = 1 ]; then sleep 60.${marker}; fi`,
      }),
    ]);
    // By the fast host's clock its heartbeats are ten minutes ahead: judged by it, it would look
    // alive for ten minutes after it died.
    const fast = startWorkers(db, 1, skewed("+10m"));
    await waitFor(async () => (await job(db)).state === "processing", {
      what: "the fast host claimed the job",
    });
    const workers = JSON.parse(await cliOk(db, ["worker", "list", "--json"]));
    // The whole host dies at once: its supervisor first, so nobody rescues on its behalf.
    fast.signal("SIGKILL");
    for (const w of workers) Deno.kill(w.pid, "SIGKILL");
    await fast.done();
    const honest = startWorkers(db, 1);
    try {
      await waitFor(async () => (await job(db)).state === "completed", {
        timeoutMs: 30_000,
        what: "the job rescued after the lease and run again",
      });
    } finally {
      honest.signal("SIGTERM");
      await honest.done();
    }
    const outcomes = ((await job(db)).attempt_history as Attempt[]).map((a) => a.outcome);
    assert.deepEqual(outcomes, ["worker_lost", "completed"], honest.log());
    // The dead host's job process was orphaned with it: end it (this test's own marker only).
    await new Deno.Command("pkill", { args: ["-f", `sleep 60\\.${marker}`] }).output();
  });

  Deno.test({
    name: "pg clock: drop the test database",
    async fn() {
      await server.dispose();
    },
  });
}

/** The environment of a host whose clock is `offset` off (libfaketime, as `faketime` sets it). */
function skewed(offset: string): Record<string, string> {
  return { FAKETIME: offset, LD_PRELOAD: libfaketime() };
}

/** The job `long`, as `show --json` says. */
async function job(db: string) {
  return JSON.parse(await cliOk(db, ["show", "long", "--json"]));
}

/** Where Debian's libfaketime lives (the `faketime` wrapper preloads it). */
function libfaketime(): string {
  for (
    const p of [
      "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
      "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
    ]
  ) {
    try {
      Deno.statSync(p);
      return p;
    } catch { /* next */ }
  }
  return "libfaketime.so.1";
}
