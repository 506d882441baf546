/**
 * A PostgreSQL server that goes away for a few seconds (a restart, a failover) while workers run:
 * they keep their job, report it once the server is back, and go on serving the queue; the outage
 * is not taken for a dropped queue. The shared test server cannot be restarted under other tests,
 * so that test starts a private one (root and PostgreSQL's server binaries; elsewhere it says so
 * and is ignored). And a queue whose database is dropped for good: the workers stop with one clear
 * line, as they do when an SQLite file is deleted, instead of being restarted for ever.
 */
import assert from "node:assert/strict";
import { reapWithDb, statusWithin } from "./chaos.ts";
import { runDir } from "../lib/store/open.ts";
import { cliOk, gateCommand, openGate, startWorkers, waitFor } from "./helpers.ts";
import { canStartPrivateServer, PG_BASE, pgTestServer, privateServer } from "./pg_helpers.ts";

/** A job's state, through the CLI (which may reach the private server's port; this process not). */
async function jobState(db: string, id: string): Promise<string> {
  return JSON.parse(await cliOk(db, ["show", id, "--json"])).state;
}

Deno.test({
  name: `pg outage: the server restarts under a running job → it completes, the workers go on${
    canStartPrivateServer ? "" : " (skipped: needs root and PostgreSQL's server binaries)"
  }`,
  ignore: !canStartPrivateServer,
  async fn() {
    await using server = await privateServer();
    const db = `postgres://postgres@127.0.0.1:${server.port}/postgres?schema=q`;
    const gate = `${server.dir}/gate`;
    // A heartbeat each second, so that several fall in the outage.
    await cliOk(db, ["config", "set", "lease-timeout", "4s"]);
    await cliOk(db, ["enqueue", "--id", "held", "--", gateCommand(gate)]);
    const w = startWorkers(db, 1);
    try {
      await waitFor(() => w.log().includes("job.started"), { what: "the held job started" });
      await server.stop();
      await waitFor(() => (w.log().match(/heartbeat_failed|check_failed/g)?.length ?? 0) >= 3, {
        what: "three failed heartbeats or checks while the server is down",
      });
      await server.start();
      await openGate(gate);
      await waitFor(async () => (await jobState(db, "held")) === "completed", {
        timeoutMs: 60_000,
        what: "the held job completed after the outage",
      });
      // Still serving: a job enqueued after the outage runs too.
      await cliOk(db, ["enqueue", "--id", "after", "--", "true"]);
      await waitFor(async () => (await jobState(db, "after")) === "completed", {
        timeoutMs: 60_000,
        what: `the job enqueued after the outage completed\n${w.log()}`,
      });
    } finally {
      await openGate(gate);
      w.signal("SIGTERM");
      if ((await statusWithin(w.process, 30_000)) === null) w.signal("SIGKILL");
      // This host's directory for the queue (pid files, logs) lives outside the server's.
      await Deno.remove(runDir(db), { recursive: true }).catch(() => {});
    }
    const status = await w.done();
    const log = w.log();
    assert.doesNotMatch(log, /store_replaced|worker\.died|worker\.failed|internal error/, log);
    assert.equal(status.code, 0, log);
    assert.equal(log.match(/worker\.started/g)?.length, 1, log);
  },
});

Deno.test("pg outage: the queue's database is dropped under a running job → the workers stop, exit 1", async () => {
  const server = await pgTestServer();
  if (!server) {
    console.log(`skipped: no PostgreSQL server answers at ${PG_BASE}`);
    return;
  }
  let dropped = false;
  try {
    const db = server.freshSchemaUrl();
    const gate = await Deno.makeTempFile({ prefix: "queuectl-gate-" });
    await Deno.remove(gate);
    await cliOk(db, ["enqueue", "--id", "held", "--", gateCommand(gate)]);
    const w = startWorkers(db, 2);
    let status: Deno.CommandStatus | null = null;
    try {
      await waitFor(() => w.log().includes("job.started"), { what: "the held job started" });
      // Both workers up: one that is still opening the store when it goes is another case (it
      // fails to start, and the supervisor's own check stops it).
      await waitFor(() => (w.log().match(/worker\.started/g)?.length ?? 0) >= 2, {
        what: "both workers started",
      });
      await server.dispose();
      dropped = true;
      // The job ends after the drop: its result has nowhere to go.
      await openGate(gate);
      status = await statusWithin(w.process, 60_000);
    } finally {
      await openGate(gate);
      if (!status) {
        w.signal("SIGKILL");
        // Workers that outlive their supervisor hold its pipes: end them first.
        await reapWithDb(db, 10_000);
      }
      await w.done();
      await Deno.remove(gate).catch(() => {});
      await Deno.remove(runDir(db), { recursive: true }).catch(() => {});
    }
    const log = w.log();
    assert.ok(status, `the supervisor still ran 60s after its database was dropped\n${log}`);
    assert.equal(status.code, 1, log);
    assert.match(log, /worker\.store_replaced .*was dropped or recreated/, log);
    assert.match(log, /supervisor\.store_replaced/, log);
    assert.doesNotMatch(log, /worker\.died|worker\.failed|internal error/, log);
  } finally {
    if (!dropped) await server.dispose();
  }
});
