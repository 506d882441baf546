/** Store URLs on the command line: refused in one line that never shows a password. */
import assert from "node:assert/strict";
import { assertOneLineError, runCli, tempDb } from "./helpers.ts";

Deno.test("[cli] store URLs that cannot be used are refused without their password", async () => {
  await using t = await tempDb();
  // A malformed URL is a usage mistake (exit 2); a server that cannot be reached is not (exit 1).
  const cases: Array<[string, number, RegExp]> = [
    [
      "mysql://alice:s3cret@db.example/q",
      2,
      /unsupported store URL "mysql:\/\/alice@db\.example\/q": use a file path, sqlite:PATH or postgres:\/\//,
    ],
    ["postgres://alice:s3cret@127.0.0.1:notaport/q", 2, /is not a valid PostgreSQL URL/],
    ["postgres://alice:s3cret@127.0.0.1:1/q", 1, /cannot reach PostgreSQL at 127\.0\.0\.1:1/],
  ];
  for (const [url, code, pattern] of cases) {
    for (const args of [["--db", url, "status"], ["status", "--db", url]]) {
      const r = await runCli(t.db, args);
      assertOneLineError(r, code, pattern);
      assert.doesNotMatch(r.stderr, /s3cret/, "the password was printed");
    }
    const env = await runCli(t.db, ["status"], { env: { QUEUECTL_DB: url } });
    assertOneLineError(env, code, pattern);
    assert.doesNotMatch(env.stderr, /s3cret/);
  }
});

Deno.test("[cli] a PostgreSQL host that never answers is given up on after connect_timeout, in one line", async () => {
  await using t = await tempDb();
  // An address nothing answers for (where a route says "unreachable" at once, that line is fine
  // too): the command must end, not wait for ever.
  const url = "postgres://alice:s3cret@10.255.255.1:5432/q?connect_timeout=1";
  const started = Date.now();
  const r = await runCli(t.db, ["status"], { env: { QUEUECTL_DB: url } });
  assertOneLineError(r, 1, /PostgreSQL at 10\.255\.255\.1:5432/);
  assert.doesNotMatch(r.stderr, /s3cret/);
  assert.ok(Date.now() - started < 60_000, "it gave up");
  for (const bad of ["0", "soon"]) {
    const b = await runCli(t.db, ["status"], {
      env: { QUEUECTL_DB: `postgres://alice@127.0.0.1:5432/q?connect_timeout=${bad}` },
    });
    assertOneLineError(b, 2, /connect_timeout in the URL is whole seconds/);
  }
});
