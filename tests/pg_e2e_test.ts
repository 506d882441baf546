/**
 * The CLI and real workers on a real PostgreSQL server: the same commands, the same guarantees,
 * and a URL's password that never shows in `ps`, an error or a log. The server comes from
 * `QUEUECTL_TEST_PG` (tests/pg_helpers.ts); each test uses a fresh schema. Where no server
 * answers, this file says so and is ignored.
 */
import assert from "node:assert/strict";
import { pgTestServer } from "./pg_helpers.ts";
import { assertOneLineError, cliOk, MAIN, runCli, startWorkers, waitFor } from "./helpers.ts";

const server = await pgTestServer();

/** The URL of a fresh schema with a password in it (trust auth ignores it; nothing may print it). */
function urlWithPassword(url: string): string {
  const u = new URL(url);
  u.password = "s3cret-pw";
  return u.toString();
}

interface JobJson {
  id: string;
  state: string;
  attempts: number;
}

if (!server) {
  Deno.test({
    name: "pg e2e: skipped, no PostgreSQL server answers at QUEUECTL_TEST_PG",
    fn() {},
  });
} else {
  Deno.test("pg e2e: enqueue → workers on PostgreSQL → every job completed once, output from the store", async () => {
    const db = urlWithPassword(server.freshSchemaUrl());
    const specs = Array.from({ length: 30 }, (_, i) => ({
      id: `j${i}`,
      command: `echo out-${i}; echo err-${i} >&2`,
    }));
    // A job inherits the worker's environment: its QUEUECTL_DB names the queue, with no password.
    specs[29].command = 'echo "$QUEUECTL_DB"';
    await cliOk(db, ["enqueue", "--file", "-"], {
      stdin: specs.map((s) => JSON.stringify(s)).join("\n"),
    });
    const w = startWorkers(db, 3);
    let argvs = "";
    try {
      await waitFor(async () => {
        const jobs: JobJson[] = JSON.parse(await cliOk(db, ["list", "--all", "--json"]));
        return jobs.length === 30 && jobs.every((j) => j.state === "completed");
      }, { timeoutMs: 60_000, what: "30 jobs completed" });
      const ps = await new Deno.Command("ps", { args: ["-eo", "args"], stdout: "piped" }).output();
      argvs = new TextDecoder().decode(ps.stdout).split("\n").filter((l) => l.includes(MAIN))
        .join("\n");
    } finally {
      w.signal("SIGTERM");
    }
    assert.equal((await w.done()).code, 0, w.log());
    const jobs: JobJson[] = JSON.parse(await cliOk(db, ["list", "--all", "--json"]));
    assert.deepEqual(jobs.map((j) => j.attempts), jobs.map(() => 1), "each ran once");
    assert.equal(await cliOk(db, ["logs", "j7"]), "out-7\nerr-7\n");
    assert.equal(await cliOk(db, ["logs", "j29"]), `${db.replace(":s3cret-pw@", "@")}\n`);
    const status = JSON.parse(await cliOk(db, ["status", "--json"]));
    assert.equal(status.completed, 30);
    assert.match(argvs, /__worker/, "the workers were seen in ps");
    assert.doesNotMatch(argvs, /s3cret-pw/, "a password in the argv of a process");
    assert.doesNotMatch(w.log(), /s3cret-pw/, "a password in the workers' log");
  });

  Deno.test("pg e2e: without --allow-net the CLI runs itself again with that server alone", async () => {
    const db = server.freshSchemaUrl();
    const perms = ["--allow-read", "--allow-write", "--allow-env", "--allow-run", "--allow-sys"];
    const run = async (args: string[]) => {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "--quiet", ...perms, MAIN, ...args],
        env: { QUEUECTL_DB: db, NO_COLOR: "1" },
        stdout: "piped",
        stderr: "piped",
      }).output();
      return {
        code: out.code,
        stdout: new TextDecoder().decode(out.stdout),
        stderr: new TextDecoder().decode(out.stderr),
      };
    };
    const enq = await run(["enqueue", "--id", "a", "--", "true"]);
    assert.equal(enq.code, 0, enq.stderr);
    assert.equal(enq.stdout, "enqueued a\n");
    const list = await run(["list", "--json"]);
    assert.equal(list.code, 0, list.stderr);
    assert.deepEqual(JSON.parse(list.stdout).map((j: JobJson) => j.id), ["a"]);
  });

  Deno.test("pg e2e: a server that refuses, a database that is missing: one line each, no password", async () => {
    const base = new URL(server.url);
    const refused = `postgres://someone:s3cret-pw@127.0.0.1:1/${base.pathname.slice(1)}`;
    const r1 = await runCli(refused, ["status"]);
    assertOneLineError(r1, 1, /cannot reach PostgreSQL at 127\.0\.0\.1:1/);
    assert.doesNotMatch(r1.stderr, /s3cret-pw/);
    const missing = new URL(server.url);
    missing.pathname = "/queuectl_missing_db";
    missing.password = "s3cret-pw";
    const r2 = await runCli(missing.toString(), ["status"]);
    assertOneLineError(r2, 1, /database does not exist/);
    assert.doesNotMatch(r2.stderr, /s3cret-pw/);
  });

  Deno.test("pg e2e: settings in the URL the server refuses, and a statement it cancels: one line each", async () => {
    const db = urlWithPassword(server.freshSchemaUrl());
    await cliOk(db, ["init"]);
    const cases: Array<[string, number, RegExp]> = [
      [
        "no_such_setting=1",
        2,
        /refused a setting of the URL \(unrecognized configuration parameter "no_such_setting"\); remove it/,
      ],
      [
        "statement_timeout=soon",
        2,
        /refused a setting of the URL \(invalid value for parameter "statement_timeout": "soon"\); fix its value/,
      ],
      // Every statement is cancelled, the client's own look-up of types on connect too.
      [
        "statement_timeout=1",
        1,
        /cancelled a statement of queuectl \(canceling statement due to statement timeout\); if a timeout did it, raise statement_timeout/,
      ],
    ];
    for (const [setting, code, pattern] of cases) {
      for (const command of [["status"], ["list"]]) {
        const r = await runCli(`${db}&${setting}`, command);
        assertOneLineError(r, code, pattern);
        assert.doesNotMatch(r.stderr, /s3cret-pw|Uncaught|\n +at /, `${setting}: ${r.stderr}`);
      }
    }
  });

  Deno.test({
    name: "pg e2e: drop the test database",
    async fn() {
      await server.dispose();
    },
  });
}
