/**
 * Commands that only read, run where no queue exists yet: one line saying so and exit 1, and no
 * database file (or directory) left behind. Commands that write still create it.
 */
import assert from "node:assert/strict";
import { allDone, assertOneLineError, cliOk, runCli, sqliteOnly, tempDb } from "./helpers.ts";
import { dumpSchema, pgTestServer } from "./pg_helpers.ts";

const READS = [
  ["status"],
  ["status", "--json"],
  ["list"],
  ["list", "--state", "dead", "--json"],
  ["show", "job1"],
  ["dlq", "list"],
  ["worker", "list"],
  ["config", "get"],
  ["config", "get", "max-retries"],
  ["config", "list"],
  ["config", "show"],
];

const exists = (p: string) => Deno.stat(p).then(() => true, () => false);

Deno.test({
  name: "[cli] read commands on a missing database say so, exit 1 and create nothing",
  // SQLite files whatever the test store (on PostgreSQL, the first command creates the schema).
  ignore: sqliteOnly,
  async fn() {
    await using t = await tempDb();
    // A directory that does not exist yet either: it must not be created.
    const db = `${t.dir}/not-yet/queue.db`;
    const results = await allDone(READS.map((args) => runCli(db, args)));
    const line = new RegExp(
      `^queuectl: no queue at ${db} yet; enqueue a job or run queuectl init \\(or pass --db\\)$`,
    );
    for (const r of results) assertOneLineError(r, 1, line);
    assert.equal(await exists(`${t.dir}/not-yet`), false, "nothing created");
  },
});

Deno.test({
  name: "[cli] writes still create a missing database, and reads work after",
  // SQLite files whatever the test store (on PostgreSQL, the first command creates the schema).
  ignore: sqliteOnly,
  async fn() {
    await using t = await tempDb();
    const [a, b] = [`${t.dir}/a/queue.db`, `${t.dir}/b/queue.db`];
    await cliOk(a, ["enqueue", '{"id":"job1","command":"true"}']);
    await cliOk(b, ["init"]);
    assert.ok(await exists(a));
    assert.ok(await exists(b));
    assert.match(await cliOk(a, ["show", "job1"]), /^id:\s+job1$/m);
    assert.equal(await cliOk(b, ["list"]), "no jobs\n");
  },
});

const server = await pgTestServer();

Deno.test({
  name:
    `[cli] read commands on a PostgreSQL schema that does not exist say so, exit 1 and create nothing${
      server ? "" : " (skipped: no PostgreSQL server answers)"
    }`,
  ignore: server === null,
  async fn() {
    const url = server!.freshSchemaUrl();
    const results = await allDone(READS.map((args) => runCli(url, args)));
    const line = new RegExp(
      `^queuectl: no queue in ${RegExp.escape(url)} yet; enqueue a job or run queuectl init`,
    );
    for (const r of results) assertOneLineError(r, 1, line);
    assert.equal(await dumpSchema(url), "{}", "no table created");
    // A write creates it, and the reads work after.
    await cliOk(url, ["enqueue", '{"id":"job1","command":"true"}']);
    assert.match(await cliOk(url, ["show", "job1"]), /^id:\s+job1$/m);
  },
});
