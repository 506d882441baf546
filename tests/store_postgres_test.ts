/**
 * The Store conformance suite against a real PostgreSQL server, plus what only PostgreSQL has.
 * The server comes from `QUEUECTL_TEST_PG` (default postgres://postgres@127.0.0.1:5432/test, as on
 * our machines and CI's). This file makes a database of its own and drops it at the end; each test
 * gets a fresh schema in it. Where no server answers, every test here says so and is ignored.
 */
import assert from "node:assert/strict";
import { StoreError } from "../lib/errors.ts";
import { transition } from "../lib/job.ts";
import { redactUrl } from "../lib/store/open.ts";
import { parsePgUrl, passwordFor, PostgresStore } from "../lib/store/postgres.ts";
import type { Store } from "../lib/store/store.ts";
import { type DatabaseFactory, newJob, storeConformance } from "./store_conformance.ts";
import { cronConformance } from "./store_conformance_cron.ts";
import { uniqueConformance } from "./store_conformance_unique.ts";
import { depsConformance } from "./store_conformance_deps.ts";
import { queuesConformance } from "./store_conformance_queues.ts";
import { batchConformance } from "./store_conformance_batch.ts";
import { drainConformance } from "./store_conformance_drain.ts";
import { pgTestServer } from "./pg_helpers.ts";

const server = await pgTestServer();

if (!server) {
  Deno.test({
    name: "store(postgres): skipped, no PostgreSQL server answers at QUEUECTL_TEST_PG",
    fn() {},
  });
} else {
  const { url, freshSchemaUrl } = server;

  /** A fresh schema per test. */
  const pgDatabase: DatabaseFactory = () => {
    const schemaUrl = freshSchemaUrl();
    return Promise.resolve({
      url: schemaUrl,
      connect: () => PostgresStore.open(schemaUrl) as Promise<Store>,
      async [Symbol.asyncDispose]() {},
    });
  };
  storeConformance("postgres", pgDatabase);
  cronConformance("postgres", pgDatabase);
  uniqueConformance("postgres", pgDatabase);
  depsConformance("postgres", pgDatabase);
  queuesConformance("postgres", pgDatabase);
  drainConformance("postgres", pgDatabase);
  batchConformance("postgres", pgDatabase);

  Deno.test("store(postgres): the URL's password never appears in its location", () => {
    const u = parsePgUrl("postgres://alice:s3cret@db.example:6543/q?schema=jobs&sslmode=require");
    assert.equal(u.schema, "jobs");
    assert.equal(u.host, "db.example");
    assert.equal(u.port, 6543);
    assert.doesNotMatch(u.redacted, /s3cret/);
    assert.match(
      u.redacted,
      /^postgres:\/\/alice@db\.example:6543\/q\?sslmode=require&schema=jobs$/,
    );
    assert.match(u.clientUrl, /s3cret/);
    assert.doesNotMatch(u.clientUrl, /schema=/);
    assert.equal(redactUrl("postgresql://bob:pw@h/d"), "postgresql://bob@h/d");
  });

  Deno.test("store(postgres): ?listen=off polls instead of LISTEN, for poolers", async () => {
    assert.equal(parsePgUrl("postgres://h/d?listen=off").listen, false);
    assert.equal(parsePgUrl("postgres://h/d").listen, true);
    assert.throws(() => parsePgUrl("postgres://h/d?listen=maybe"), StoreError);
    const schemaUrl = freshSchemaUrl() + "&listen=off";
    const store = await PostgresStore.open(schemaUrl);
    try {
      assert.match(store.location, /listen=off/);
      const started = performance.now();
      await store.waitForChange(100);
      assert.ok(performance.now() - started >= 90, "a poll waits its interval");
      const abort = new AbortController();
      abort.abort();
      await store.waitForChange(60_000, abort.signal);
    } finally {
      await store.close();
    }
  });

  Deno.test("store(postgres): a schema of another program is refused and left untouched", async () => {
    const schemaUrl = freshSchemaUrl();
    const schema = parsePgUrl(schemaUrl).schema;
    await server.exec(`CREATE SCHEMA ${schema}; CREATE TABLE ${schema}.theirs (x int)`);
    await assert.rejects(
      () => PostgresStore.open(schemaUrl),
      (e) => e instanceof StoreError && /belongs to another program/.test(e.message),
    );
    assert.equal(await server.query(`SELECT count(*)::int AS n FROM ${schema}.theirs`), 0);
    assert.equal(
      await server.query(
        `SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = '${schema}'`,
      ),
      1,
      "nothing was created beside their table",
    );
  });

  Deno.test("store(postgres): a schema of a newer queuectl is refused untouched", async () => {
    const schemaUrl = freshSchemaUrl();
    const schema = parsePgUrl(schemaUrl).schema;
    (await PostgresStore.open(schemaUrl)).close();
    await server.exec(`UPDATE ${schema}.meta SET value = '999' WHERE key = 'schema_version'`);
    await assert.rejects(
      () => PostgresStore.open(schemaUrl),
      (e) => e instanceof StoreError && /newer than this queuectl/.test(e.message),
    );
  });

  Deno.test("store(postgres): unreachable servers, missing databases and bad users: one line each", async () => {
    const cases: Array<[string, RegExp, string]> = [
      [
        "postgres://postgres@127.0.0.1:1/test",
        /cannot reach PostgreSQL at 127\.0\.0\.1:1/,
        "unreachable",
      ],
      [
        url.replace(/\/[^/?]+(\?|$)/, "/queuectl_no_such_db$1"),
        /database does not exist/,
        "missing",
      ],
    ];
    for (const [bad, pattern, kind] of cases) {
      await assert.rejects(
        () => PostgresStore.open(bad),
        (e) =>
          e instanceof StoreError && e.kind === kind && pattern.test(e.message) &&
          !e.message.includes("\n"),
      );
    }
  });

  Deno.test("store(postgres): a dropped queue is noticed by assertSameStore", async () => {
    const schemaUrl = freshSchemaUrl();
    const store = await PostgresStore.open(schemaUrl);
    try {
      await store.assertSameStore();
      await server.exec(`DROP SCHEMA ${parsePgUrl(schemaUrl).schema} CASCADE`);
      await assert.rejects(
        () => store.assertSameStore(),
        (e) => e instanceof StoreError && /dropped or recreated/.test(e.message),
      );
    } finally {
      await store.close();
    }
  });

  Deno.test("store(postgres): a result recorded after the queue was dropped says so (no retry would help)", async () => {
    const schemaUrl = freshSchemaUrl();
    const store = await PostgresStore.open(schemaUrl);
    try {
      const t0 = 1_800_000_000_000;
      await store.enqueue([newJob("a")], t0);
      const [job] = await store.claimNext("w1", t0, 1);
      await server.exec(`DROP SCHEMA ${parsePgUrl(schemaUrl).schema} CASCADE`);
      const done = { outcome: "completed", exitCode: 0, signal: null, error: null } as const;
      const ends = [{
        jobId: job.id,
        next: transition(job, { type: "succeed" }, t0),
        result: done,
      }];
      // Its one-call path: the server function went with the schema.
      await assert.rejects(
        () => store.finishAndClaim("w1", ends, 1, t0 + 1),
        (e) => e instanceof StoreError && e.kind === "replaced" && !e.transient,
      );
      await assert.rejects(
        () => store.finishAttempt(job.id, "w1", ends[0].next, done, t0 + 1),
        (e) => e instanceof StoreError && e.kind === "replaced",
      );
    } finally {
      await store.close();
    }
  });

  Deno.test({
    name: "store(postgres): drop the test database",
    async fn() {
      await server.dispose();
    },
  });
}

Deno.test("store(postgres): a password file is read as libpq reads it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "queuectl-pgpass-" });
  const file = `${dir}/pgpass`;
  await Deno.writeTextFile(
    file,
    [
      "# comment",
      "other.host:5432:*:alice:not-this-one",
      "db.example:6543:jobs:alice:pa\\:ss\\\\word",
      "*:*:*:*:fallback",
    ].join("\n") + "\n",
  );
  const saved = ["PGPASSFILE", "PGPASSWORD"].map((k) => [k, Deno.env.get(k)] as const);
  try {
    Deno.env.set("PGPASSFILE", file);
    Deno.env.delete("PGPASSWORD");
    assert.equal(passwordFor(parsePgUrl("postgres://alice@db.example:6543/jobs")), "pa:ss\\word");
    assert.equal(passwordFor(parsePgUrl("postgres://bob@elsewhere/x")), "fallback");
    assert.equal(
      passwordFor(parsePgUrl("postgres://alice:given@db.example:6543/jobs")),
      undefined,
      "the URL's own password wins",
    );
    Deno.env.set("PGPASSWORD", "from-env");
    assert.equal(passwordFor(parsePgUrl("postgres://alice@db.example:6543/jobs")), undefined);
  } finally {
    for (const [k, v] of saved) v === undefined ? Deno.env.delete(k) : Deno.env.set(k, v);
    await Deno.remove(dir, { recursive: true });
  }
});
