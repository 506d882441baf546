/**
 * A wrong PostgreSQL password, given each way a PostgreSQL user gives one (in the URL, in
 * PGPASSWORD, in a password file found through HOME or PGPASSFILE): one line naming the problem
 * and what to do, exit 1, and the password's text nowhere in the output. The right password works
 * the same ways. The shared test server trusts every local user, so this test starts a private one
 * (Debian's `initdb`/`pg_ctl`, run as the postgres user) with scram-sha-256 on a free localhost
 * port other than 5432, which the CLI must reach by granting itself that port alone. Needs root
 * and PostgreSQL's server binaries; elsewhere it says so and is ignored.
 */
import assert from "node:assert/strict";
import { allDone, assertOneLineError, cliOk, type CliResult, runCli } from "./helpers.ts";
import { canStartPrivateServer, PG_BASE, pgTestServer, privateServer } from "./pg_helpers.ts";

/** The right password, and wrong ones that are easy to find in any output. */
const RIGHT = "right-Pw-7c1e";
const WRONG = "wrong-Pw-4b9d";

/**
 * Exit 1, one line that names the refused credentials, the server's reason, and the place the
 * password came from (`fix`), and no password anywhere.
 */
function assertRefused(r: CliResult, what: string, fix: RegExp) {
  assertOneLineError(
    r,
    1,
    /refused the credentials of postgres:\/\/postgres@127\.0\.0\.1:\d+\/postgres\?schema=q: password authentication failed for user "postgres"; /,
  );
  assert.match(r.stderr.trimEnd(), fix, `${what}: ${r.stderr}`);
  for (const pw of [WRONG, RIGHT]) {
    assert.ok(!(r.stdout + r.stderr).includes(pw), `${what}: the password was printed`);
  }
}

Deno.test({
  name: `pg auth: a wrong password in the URL, PGPASSWORD or a password file → one line, exit 1${
    canStartPrivateServer ? "" : " (skipped: needs root and PostgreSQL's server binaries)"
  }`,
  ignore: !canStartPrivateServer,
  async fn() {
    await using server = await privateServer({ password: RIGHT });
    const base = `postgres://postgres@127.0.0.1:${server.port}/postgres?schema=q`;
    const withPw = (pw: string) => base.replace("postgres@", `postgres:${pw}@`);
    // A password file of its own for each case, found through HOME or PGPASSFILE; HOME points
    // at an empty directory elsewhere, so no real ~/.pgpass is read.
    const home = `${server.dir}/home`;
    await Deno.mkdir(home);
    const passFile = async (name: string, pw: string) => {
      const path = `${server.dir}/${name}`;
      await Deno.writeTextFile(path, `127.0.0.1:${server.port}:*:postgres:${pw}\n`, {
        mode: 0o600,
      });
      return path;
    };
    const homeWrong = `${server.dir}/home-wrong`;
    await Deno.mkdir(homeWrong);
    await Deno.rename(await passFile("hw", WRONG), `${homeWrong}/.pgpass`);
    const homeRight = `${server.dir}/home-right`;
    await Deno.mkdir(homeRight);
    await Deno.rename(await passFile("hr", RIGHT), `${homeRight}/.pgpass`);

    const ways = (pw: string, homeWith: string, file: string) => ({
      "in the URL": { db: withPw(pw), env: { HOME: home } },
      "in PGPASSWORD": { db: base, env: { HOME: home, PGPASSWORD: pw } },
      "in ~/.pgpass": { db: base, env: { HOME: homeWith } },
      "in PGPASSFILE": { db: base, env: { HOME: home, PGPASSFILE: file } },
    });
    const wrongFile = await passFile("wrong.pgpass", WRONG);
    const wrong = Object.entries(ways(WRONG, homeWrong, wrongFile));
    const fixes: Record<string, RegExp> = {
      "in the URL": /; check the password in the URL$/,
      "in PGPASSWORD": /; check PGPASSWORD$/,
      "in ~/.pgpass": new RegExp(`; check the password for this server in ${homeWrong}/\\.pgpass$`),
      "in PGPASSFILE": new RegExp(`; check the password for this server in ${wrongFile}$`),
    };
    const refused = await allDone([
      ...wrong.map(([, { db, env }]) => runCli(db, ["status"], { env })),
      // Given with --db instead of QUEUECTL_DB: the same.
      ...wrong.map(([, { db, env }]) => runCli(db, ["status", "--db", db], { env })),
      // No password at all: the same line (the server asks for one).
      runCli(base, ["status"], { env: { HOME: home } }),
    ]);
    const expected: Array<[string, RegExp]> = [
      ...wrong.map(([how]): [string, RegExp] => [`wrong password ${how}`, fixes[how]]),
      ...wrong.map(([how]): [string, RegExp] => [`wrong password ${how}, --db`, fixes[how]]),
      ["no password", /; no password was given: set PGPASSWORD or add it to ~\/\.pgpass$/],
    ];
    for (const [i, r] of refused.entries()) assertRefused(r, ...expected[i]);

    const right = ways(RIGHT, homeRight, await passFile("right.pgpass", RIGHT));
    await cliOk(right["in the URL"].db, ["enqueue", "--id", "j1", "--", "true"], {
      env: right["in the URL"].env,
    });
    const rightWays = Object.entries(right);
    const worked = await allDone(
      rightWays.map(([, { db, env }]) => runCli(db, ["status", "--json"], { env })),
    );
    for (const [i, [how]] of rightWays.entries()) {
      const r = worked[i];
      assert.equal(r.code, 0, `right password ${how}: ${r.stderr}`);
      assert.equal(JSON.parse(r.stdout).pending, 1, how);
      assert.ok(!(r.stdout + r.stderr).includes(RIGHT), `right password ${how}: printed`);
    }
  },
});

Deno.test("pg auth: a user the server does not know → one line naming the user, exit 1", async () => {
  const server = await pgTestServer();
  if (!server) {
    console.log(`skipped: no PostgreSQL server answers at ${PG_BASE}`);
    return;
  }
  try {
    const u = new URL(server.freshSchemaUrl());
    u.username = "queuectl_no_such_role";
    u.password = WRONG;
    const r = await runCli(u.toString(), ["status"]);
    assertOneLineError(
      r,
      1,
      /refused the credentials of postgres:\/\/queuectl_no_such_role@127\.0\.0\.1:5432\/.*: role "queuectl_no_such_role" does not exist; check the user, and the server's pg_hba\.conf$/,
    );
    assert.ok(!(r.stdout + r.stderr).includes(WRONG), "the password was printed");
  } finally {
    await server.dispose();
  }
});
