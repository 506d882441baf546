/**
 * `worker stop --host` and `--all-hosts` reach supervisors through the store, whatever host they
 * run on. Two supervisors on this machine stand for two hosts (`QUEUECTL_HOST`); the store is a
 * real SQLite file here and a real PostgreSQL server in tests/pg_e2e_test.ts.
 */
import assert from "node:assert/strict";
import { cliOk, runCli, startWorkers, tempDb, waitFor } from "./helpers.ts";

interface WorkerJson {
  host: string;
  status: string;
}

Deno.test("[worker stop] --host stops one host's workers through the store; --all-hosts --now the rest", async () => {
  await using t = await tempDb();
  await cliOk(t.db, ["init"]);
  const a = startWorkers(t.db, 2, { QUEUECTL_HOST: "host-a" });
  const b = startWorkers(t.db, 1, { QUEUECTL_HOST: "host-b" });
  try {
    const list = async (): Promise<WorkerJson[]> =>
      JSON.parse(await cliOk(t.db, ["worker", "list", "--json"]));
    await waitFor(async () => (await list()).length === 3, { what: "3 workers registered" });
    const hosts = (await list()).map((w) => w.host).sort();
    assert.deepEqual(hosts, ["host-a", "host-a", "host-b"]);

    const stopA = await runCli(t.db, ["worker", "stop", "--host", "host-a", "--timeout", "30s"]);
    assert.equal(stopA.code, 0, stopA.stderr);
    assert.match(stopA.stdout, /^asked 2 workers on host-a to stop \(running jobs finish first\)/);
    assert.match(stopA.stdout, /stopped 2 workers on host-a\n$/);
    assert.equal((await a.done()).code, 0, a.log());
    assert.match(a.log(), /supervisor\.stopping .*asked through the store/);
    assert.deepEqual((await list()).map((w) => w.host), ["host-b"], "host-b still runs");

    const none = await runCli(t.db, ["worker", "stop", "--host", "host-z"]);
    assert.equal(none.code, 0, none.stderr);
    assert.equal(none.stdout, "no workers are running on host-z\n");

    // Only host b is left to take a job.
    await cliOk(t.db, [
      "enqueue",
      JSON.stringify({ id: "long", command: `while [ ! -e ${t.dir}/gate ]; do sleep 0.05; done` }),
    ]);
    await waitFor(async () => (await cliOk(t.db, ["list", "--json"])).includes("processing"), {
      what: "host-b runs the job",
    });
    const stopAll = await runCli(t.db, ["worker", "stop", "--all-hosts", "--now"]);
    assert.equal(stopAll.code, 0, stopAll.stderr);
    assert.match(stopAll.stdout, /stopped 1 worker on any host\n$/);
    assert.equal((await b.done()).code, 130, b.log());
    const job = JSON.parse(await cliOk(t.db, ["show", "long", "--json"]));
    assert.equal(job.state, "pending", "interrupted, back in the queue");

    const both = await runCli(t.db, ["worker", "stop", "--host", "x", "--all-hosts"]);
    assert.equal(both.code, 2);
  } finally {
    Deno.writeTextFileSync(`${t.dir}/gate`, "");
    a.signal("SIGTERM");
    b.signal("SIGTERM");
    await a.done();
    await b.done();
  }
});
