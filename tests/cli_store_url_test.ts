/** Store URLs on the command line: refused in one line that never shows a password. */
import assert from "node:assert/strict";
import { assertOneLineError, runCli, tempDb } from "./helpers.ts";

Deno.test("[cli] store URLs the commands do not run on are refused without their password", async () => {
  await using t = await tempDb();
  const cases: Array<[string, RegExp]> = [
    ["postgres://alice:s3cret@db.example:5432/q", /do not run on PostgreSQL yet/],
    ["postgresql://alice:s3cret@db.example/q", /do not run on PostgreSQL yet/],
    ["mysql://alice:s3cret@db.example/q", /unsupported store URL "mysql:\/\/alice@db\.example\/q"/],
  ];
  for (const [url, pattern] of cases) {
    for (const args of [["--db", url, "status"], ["status", "--db", url]]) {
      const r = await runCli(t.db, args);
      assertOneLineError(r, 2, pattern);
      assert.doesNotMatch(r.stderr, /s3cret/, "the password was printed");
    }
    const env = await runCli(t.db, ["status"], { env: { QUEUECTL_DB: url } });
    assertOneLineError(env, 2, pattern);
    assert.doesNotMatch(env.stderr, /s3cret/);
  }
});
