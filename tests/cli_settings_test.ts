/**
 * Settings are checked where they are used: a bad `QUEUECTL_*` value fails the commands that use
 * it (one line, exit 2) and not the read commands; integers are read one way in flags and config
 * values.
 */
import assert from "node:assert/strict";
import { allDone, assertOneLineError, cliOk, runCli, tempDb } from "./helpers.ts";

const BAD_RETRIES = { QUEUECTL_MAX_RETRIES: "abc" };
const RETRIES_ERROR =
  /^queuectl: QUEUECTL_MAX_RETRIES: max-retries must be an integer between 0 and 100, got "abc"$/;

Deno.test("[settings] a bad QUEUECTL_MAX_RETRIES should fail enqueue, not the read commands", async () => {
  await using t = await tempDb();
  await cliOk(t.db, ["enqueue", "--id", "a", "--", "true"]);
  const env = BAD_RETRIES;
  const [enqueue, status, list, show, configList, configGet, json] = await allDone([
    runCli(t.db, ["enqueue", "--id", "b", "--", "true"], { env }),
    runCli(t.db, ["status"], { env }),
    runCli(t.db, ["list", "--json"], { env }),
    runCli(t.db, ["show", "a"], { env }),
    runCli(t.db, ["config", "list"], { env }),
    runCli(t.db, ["config", "get", "lease-timeout"], { env }),
    runCli(t.db, ["config", "list", "--json"], { env }),
  ]);
  assertOneLineError(enqueue, 2, RETRIES_ERROR);
  for (const r of [status, list, show, configList, configGet, json]) {
    assert.equal(r.code, 0, r.stderr);
  }
  assert.match(status.stdout, /^pending\s+1$/m);
  assert.deepEqual(JSON.parse(list.stdout).map((j: { id: string }) => j.id), ["a"]);
  assert.equal(configGet.stdout, "30s\n");
  // config list shows the bad value, marked, and says on stderr what it breaks.
  assert.match(configList.stdout, /^max-retries\s+abc \(invalid\)\s+env QUEUECTL_MAX_RETRIES\s/m);
  assert.match(
    configList.stderr,
    /^note: QUEUECTL_MAX_RETRIES: max-retries must be an integer between 0 and 100, got "abc"; /,
  );
  assert.deepEqual(JSON.parse(json.stdout).max_retries, {
    value: null,
    text: "abc",
    source: "env",
    error: 'QUEUECTL_MAX_RETRIES: max-retries must be an integer between 0 and 100, got "abc"',
  });
  // And nothing was stored by the refused enqueue.
  assert.equal(JSON.parse(await cliOk(t.db, ["list", "--json"])).length, 1);
});

Deno.test("[settings] a bad QUEUECTL_* value for a key status uses should fail status", async () => {
  await using t = await tempDb();
  await cliOk(t.db, ["init"]);
  const r = await runCli(t.db, ["status"], { env: { QUEUECTL_LEASE_TIMEOUT: "1s" } });
  assertOneLineError(r, 2, /^queuectl: QUEUECTL_LEASE_TIMEOUT: lease-timeout must be a duration/);
});

Deno.test("[settings] integer flags are read as config values are", async (t) => {
  await using tmp = await tempDb();
  await cliOk(tmp.db, ["init"]);
  const bad = ["0x10", "1e3", "+5", " 5", "5 ", "1.0", ""];
  const runs = await allDone(bad.map((v) => runCli(tmp.db, ["list", "--limit", v])));
  for (const [i, v] of bad.entries()) {
    await t.step(`list --limit ${JSON.stringify(v)} → exit 2`, () =>
      assertOneLineError(
        runs[i],
        2,
        new RegExp(`--limit must be an integer between 1 and 1000000, got "${RegExp.escape(v)}"`),
      ));
  }
  assert.equal(await cliOk(tmp.db, ["list", "--limit", "010"]), "no jobs\n");
});

Deno.test("[settings] config list shows a bad value's control characters escaped", async () => {
  await using t = await tempDb();
  await cliOk(t.db, ["init"]);
  const r = await runCli(t.db, ["config", "list"], {
    env: { QUEUECTL_MAX_RETRIES: "\x1b[31mred" },
  });
  assert.equal(r.code, 0, r.stderr);
  assert.ok(!r.stdout.includes("\x1b") && !r.stderr.includes("\x1b"), r.stdout + r.stderr);
  assert.match(r.stdout, /^max-retries\s+\\u001b\[31mred \(invalid\)/m);
  assert.match(r.stderr, /got "\\u001b\[31mred"; commands that use max-retries refuse to run\n$/);
});
