/**
 * Through PgBouncer in transaction mode (Debian's pgbouncer, started here on a port of its own in
 * front of the test server): with `?pooler=transaction` every command and the workers work as
 * they do directly; without it the pooler's refusal is one line that names the fix; and a pool
 * whose server side does not set the schema is refused in one line. Skipped with a line where
 * there is no pgbouncer, no root (it runs as the user postgres) or no PostgreSQL server.
 */
import assert from "node:assert/strict";
import { pgTestServer } from "./pg_helpers.ts";
import { assertOneLineError, cliOk, runCli, startCli, waitFor } from "./helpers.ts";

const PGBOUNCER = "/usr/sbin/pgbouncer";
const hasPgbouncer = await Deno.stat(PGBOUNCER).then(() => true, () => false);
const isRoot = new TextDecoder().decode(
  new Deno.Command("id", { args: ["-u"] }).outputSync().stdout,
).trim() === "0";
const server = hasPgbouncer && isRoot ? await pgTestServer() : null;

/** A PgBouncer in transaction mode on a free port: pool `q` sets the schema, pool `bare` not. */
async function pgbouncer(target: URL, schema: string) {
  const dir = await Deno.makeTempDir({ prefix: "queuectl-pgbouncer-" });
  const port = 20000 + (crypto.getRandomValues(new Uint16Array(1))[0] % 20000);
  const db = target.pathname.slice(1);
  const to = `host=${target.hostname} port=${target.port || 5432} dbname=${db} user=postgres`;
  await Deno.writeTextFile(
    `${dir}/pgbouncer.ini`,
    [
      "[databases]",
      `q = ${to} connect_query='SET search_path TO ${schema}'`,
      `bare = ${to}`,
      "[pgbouncer]",
      "listen_addr = 127.0.0.1",
      `listen_port = ${port}`,
      "unix_socket_dir =",
      "auth_type = any",
      "pool_mode = transaction",
      "max_client_conn = 100",
      "default_pool_size = 4",
      `logfile = ${dir}/pgbouncer.log`,
      `pidfile = ${dir}/pgbouncer.pid`,
      "",
    ].join("\n"),
  );
  const chown = await new Deno.Command("chown", { args: ["-R", "postgres", dir] }).output();
  assert.ok(chown.success, "chown of the pgbouncer directory");
  // Started as root, it becomes the user postgres itself (-u), so the signal below reaches it.
  const child = new Deno.Command(PGBOUNCER, {
    args: ["-u", "postgres", `${dir}/pgbouncer.ini`],
    stdout: "null",
    stderr: "null",
  }).spawn();
  // Its log says when it listens (this process may not connect to other ports to find out).
  await waitFor(
    () =>
      Deno.readTextFile(`${dir}/pgbouncer.log`).then(
        (log) => log.includes(`listening on 127.0.0.1:${port}`),
        () => false,
      ),
    { what: "pgbouncer listening" },
  );
  return {
    url: (pool: string) =>
      `postgres://postgres@127.0.0.1:${port}/${pool}?schema=${schema}&pooler=transaction`,
    port,
    async [Symbol.asyncDispose]() {
      child.kill("SIGTERM");
      await child.status;
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

Deno.test({
  name: `pg pooler: through PgBouncer in transaction mode, with ?pooler=transaction${
    server ? "" : " (skipped: needs root, /usr/sbin/pgbouncer and a PostgreSQL server)"
  }`,
  ignore: server === null,
  async fn() {
    const schema = new URL(server!.freshSchemaUrl()).searchParams.get("schema")!;
    try {
      await using bouncer = await pgbouncer(new URL(server!.url), schema);
      const db = bouncer.url("q");
      assert.match(await cliOk(db, ["init"]), /^database ready: .*pooler=transaction/);
      await cliOk(db, ["enqueue", "--file", "-"], {
        stdin: Array.from(
          { length: 60 },
          (_, i) => JSON.stringify({ id: `j${i}`, command: `echo ${i}` }),
        )
          .join("\n"),
      });
      await cliOk(db, ["enqueue", "--id", "bad", "--retries", "0", "--", "echo no; exit 3"]);
      // Several workers and slots on one pool: their heartbeats, claims and results interleave.
      const w = startCli(db, ["worker", "start", "--count", "3", "--concurrency", "2"]);
      try {
        await waitFor(async () => {
          const s = JSON.parse(await cliOk(db, ["status", "--json"]));
          return s.completed === 60 && s.dead === 1;
        }, { timeoutMs: 60_000, what: "60 completed and 1 dead through the pooler" });
        const workers = JSON.parse(await cliOk(db, ["worker", "list", "--json"]));
        assert.equal(workers.length, 3);
      } finally {
        w.signal("SIGTERM");
      }
      assert.equal((await w.done()).code, 0, w.log());
      assert.equal(await cliOk(db, ["logs", "j7"]), "7\n");
      assert.equal(await cliOk(db, ["logs", "bad"]), "no\n");
      assert.match(await cliOk(db, ["dlq", "list"]), /^bad +dead/m);
      const queues = JSON.parse(await cliOk(db, ["queue", "list", "--json"]));
      assert.equal(queues[0].completed, 60);

      // Without ?pooler=transaction: the pooler refuses the settings queuectl sends at connect.
      const direct = await runCli(db.replace("&pooler=transaction", ""), ["status"]);
      assertOneLineError(
        direct,
        2,
        /refused a setting of the connection \(unsupported startup parameter: search_path\): through PgBouncer in transaction mode, add \?pooler=transaction to the URL$/,
      );
      // A pool whose server side does not set the schema: said, with both ways to set it.
      const bare = await runCli(bouncer.url("bare"), ["status"]);
      assertOneLineError(
        bare,
        1,
        new RegExp(
          `the schema comes from the server, whose search_path is ".*": set it to ${schema} ` +
            `for this user \\(ALTER ROLE … SET search_path = ${schema}\\) or in the pooler`,
        ),
      );
    } finally {
      await server!.exec(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await server!.dispose();
    }
  },
});
