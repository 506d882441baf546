/**
 * Retention: workers delete finished jobs past `retention-completed` / `retention-dead`, with
 * their output, on both stores (PostgreSQL where a test server answers).
 */
import assert from "node:assert/strict";
import { pgTestServer } from "./pg_helpers.ts";
import { cliOk, startWorkers, tempDb, waitFor } from "./helpers.ts";

interface JobJson {
  id: string;
  state: string;
}

async function retentionCase(db: string) {
  await cliOk(db, ["config", "set", "lease-timeout", "2s"]);
  await cliOk(db, ["config", "set", "retention-completed", "1s"]);
  await cliOk(db, ["config", "set", "retention-dead", "1h"]);
  await cliOk(db, ["enqueue", "--file", "-"], {
    stdin: [
      { id: "ok1", command: "echo one" },
      { id: "ok2", command: "echo two" },
      { id: "bad", command: "exit 3", max_retries: 0 },
    ].map((j) => JSON.stringify(j)).join("\n"),
  });
  const w = startWorkers(db, 1);
  try {
    await waitFor(async () => {
      const jobs: JobJson[] = JSON.parse(await cliOk(db, ["list", "--all", "--json"]));
      return jobs.length === 1;
    }, { what: "the completed jobs pruned" });
  } finally {
    w.signal("SIGTERM");
  }
  assert.equal((await w.done()).code, 0, w.log());
  const jobs: JobJson[] = JSON.parse(await cliOk(db, ["list", "--all", "--json"]));
  assert.deepEqual(jobs.map((j) => [j.id, j.state]), [["bad", "dead"]], "dead jobs stay 1h");
  assert.match(w.log(), /jobs\.pruned .*completed=2/);
  const status = JSON.parse(await cliOk(db, ["status", "--json"]));
  assert.equal(status.completed, 0);
  assert.equal(status.dead, 1);
}

Deno.test("retention: workers delete completed jobs past retention-completed (sqlite)", async () => {
  await using t = await tempDb();
  await retentionCase(t.db);
});

const server = await pgTestServer();
Deno.test({
  name: `retention: the same on PostgreSQL${server ? "" : " (skipped: no server answers)"}`,
  ignore: server === null,
  async fn() {
    try {
      await retentionCase(server!.freshSchemaUrl());
    } finally {
      await server!.dispose();
    }
  },
});
