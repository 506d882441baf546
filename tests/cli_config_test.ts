/**
 * `queuectl config get|set|unset|list|show` and `queuectl init` end to end: the real CLI against a
 * temporary database, with stored values read back from the store.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { allDone, assertOneLineError, cliOk, openDb, runCli, tempDb } from "./helpers.ts";

async function storedConfig(db: string): Promise<Record<string, string>> {
  const s = await openDb(db);
  try {
    return await s.getConfig();
  } finally {
    await s.close();
  }
}

type Listed = Record<
  string,
  { value: number | boolean | null; unit?: string; text: string; source: string; error?: string }
>;

Deno.test("[config] set should store a value that get, list and unset then report", async () => {
  await using t = await tempDb();
  assert.equal(await cliOk(t.db, ["config", "set", "max-retries", "5"]), "max-retries = 5\n");
  const [text, json, list] = await allDone([
    cliOk(t.db, ["config", "get", "max-retries"]),
    cliOk(t.db, ["config", "get", "max_retries", "--json"]),
    cliOk(t.db, ["config", "list", "--json"]),
  ]);
  assert.equal(text, "5\n");
  assert.deepEqual(JSON.parse(json), { key: "max_retries", value: 5, text: "5", source: "stored" });
  const listed: Listed = JSON.parse(list);
  assert.deepEqual(listed["max_retries"], { value: 5, text: "5", source: "stored" });
  assert.deepEqual(listed["backoff_base"], { value: 2, text: "2", source: "default" });

  assert.equal(
    await cliOk(t.db, ["config", "unset", "max-retries"]),
    "max-retries = 3 (default)\n",
  );
  assert.deepEqual(await storedConfig(t.db), {});
  assert.deepEqual(JSON.parse(await cliOk(t.db, ["config", "get", "max-retries", "--json"])), {
    key: "max_retries",
    value: 3,
    text: "3",
    source: "default",
  });
});

Deno.test("[config] durations, sizes and switches should read back as they were set", async () => {
  await using t = await tempDb();
  // Shown in the units typed (never 3600s or a byte count); --json in seconds and bytes.
  const sets: Array<[string, string, string]> = [
    ["job-timeout", "10m", "job-timeout = 10m"],
    ["kill-grace", "5s", "kill-grace = 5s"],
    ["lease-timeout", "120", "lease-timeout = 2m"],
    ["backoff-max", "1h", "backoff-max = 1h"],
    ["backoff-base", "0.5", "backoff-base = 0.5"],
    ["log-max-bytes", "4mb", "log-max-bytes = 4MiB"],
    ["backoff-jitter", "yes", "backoff-jitter = true"],
  ];
  // One at a time: each set is its own write.
  for (const [key, value, printed] of sets) {
    assert.equal(await cliOk(t.db, ["config", "set", key, value]), printed + "\n");
  }
  const listed: Listed = JSON.parse(await cliOk(t.db, ["config", "list", "--json"]));
  const seconds = { unit: "seconds", source: "stored" };
  assert.deepEqual(listed, {
    max_retries: { value: 3, text: "3", source: "default" },
    backoff_base: { value: 0.5, text: "0.5", source: "stored" },
    backoff_max: { value: 3600, text: "1h", ...seconds },
    backoff_jitter: { value: true, text: "true", source: "stored" },
    job_timeout: { value: 600, text: "10m", ...seconds },
    lease_timeout: { value: 120, text: "2m", ...seconds },
    kill_grace: { value: 5, text: "5s", ...seconds },
    log_max_bytes: { value: 4_194_304, unit: "bytes", text: "4MiB", source: "stored" },
    retention_completed: { value: 0, unit: "seconds", text: "0s", source: "default" },
    retention_dead: { value: 0, unit: "seconds", text: "0s", source: "default" },
  });
  assert.equal(await cliOk(t.db, ["config", "get", "job-timeout"]), "10m\n");
  assert.match(await cliOk(t.db, ["config", "list"]), /^backoff-max\s+1h\s+stored\s/m);
  // Commands that load the whole config still work with these values stored.
  await cliOk(t.db, ["status"]);
  await cliOk(t.db, ["enqueue", "--id", "j", "--", "true"]);
});

Deno.test("[config] a QUEUECTL_* variable should override the stored value and say so", async () => {
  await using t = await tempDb();
  await cliOk(t.db, ["config", "set", "max-retries", "4"]);
  const env = { QUEUECTL_MAX_RETRIES: "7" };
  const [get, json, text, set] = await allDone([
    cliOk(t.db, ["config", "get", "max-retries"], { env }),
    cliOk(t.db, ["config", "list", "--json"], { env }),
    cliOk(t.db, ["config", "list"], { env }),
    runCli(t.db, ["config", "set", "max-retries", "6"], { env }),
  ]);
  assert.equal(get, "7\n");
  assert.deepEqual((JSON.parse(json) as Listed)["max_retries"], {
    value: 7,
    text: "7",
    source: "env",
  });
  assert.match(text, /^max-retries\s+7\s+env QUEUECTL_MAX_RETRIES\s+\S/m);
  assert.match(text, /^backoff-base\s+2\s+default\s+\S/m);
  assert.equal(set.code, 0, set.stderr);
  assert.equal(set.stdout, "max-retries = 6\n");
  assert.equal(
    set.stderr,
    "note: QUEUECTL_MAX_RETRIES=7 is set and overrides the stored value; unset it to use this one\n",
  );
  assert.deepEqual(await storedConfig(t.db), { "max-retries": "6" });
});

Deno.test("[config] get without a key, list and show should print the same table", async () => {
  await using t = await tempDb();
  await cliOk(t.db, ["config", "set", "backoff-base", "3"]);
  const [get, list, show] = await allDone([
    cliOk(t.db, ["config", "get"]),
    cliOk(t.db, ["config", "list"]),
    cliOk(t.db, ["config", "show"]),
  ]);
  assert.equal(get, list);
  assert.equal(show, list);
  const rows = list.trimEnd().split("\n").map((l) => l.split(/\s{2,}/));
  assert.deepEqual(rows[0], ["KEY", "VALUE", "SOURCE", "DESCRIPTION"]);
  assert.deepEqual(rows.slice(1).map((r) => r[0]), [
    "max-retries",
    "backoff-base",
    "backoff-max",
    "backoff-jitter",
    "job-timeout",
    "lease-timeout",
    "kill-grace",
    "log-max-bytes",
    "retention-completed",
    "retention-dead",
  ]);
  assert.deepEqual(rows[2].slice(0, 3), ["backoff-base", "3", "stored"]);
  assert.deepEqual(rows[1].slice(0, 3), ["max-retries", "3", "default"]);
});

Deno.test("[init] should create the database and its directory, and say where", async () => {
  await using t = await tempDb();
  const db = join(t.dir, "new", "dir", "queue.db");
  assert.equal(await cliOk(t.db, ["init", "--db", db]), `database ready: ${db}\n`);
  assert.equal((await Deno.stat(db)).mode! & 0o777, 0o600);
  // Again: nothing to do, same answer.
  assert.equal(await cliOk(t.db, ["init", "--db", db]), `database ready: ${db}\n`);
  assert.equal(await cliOk(db, ["list"]), "no jobs\n");
});

Deno.test("[config] should refuse bad keys and values with exit 2 and change nothing", async (t) => {
  await using tmp = await tempDb();
  await cliOk(tmp.db, ["config", "set", "max-retries", "4"]);
  const before = await storedConfig(tmp.db);
  const cases: Array<[string[], RegExp, Record<string, string>?]> = [
    [
      ["set", "bogus", "1"],
      /^queuectl: unknown config key "bogus"; known keys: max-retries, backoff-base, /,
    ],
    [["get", "bogus"], /^queuectl: unknown config key "bogus"/],
    [["unset", "bogus"], /^queuectl: unknown config key "bogus"/],
    [
      ["set", "max-retries", "101"],
      /^queuectl: max-retries must be an integer between 0 and 100, got "101"$/,
    ],
    [["set", "max-retries", "-1"], /max-retries must be an integer between 0 and 100, got "-1"/],
    [["set", "max-retries", "1.5"], /max-retries must be an integer/],
    [["set", "backoff-base", "abc"], /^queuectl: backoff-base must be a number between 0 and /],
    [["set", "job-timeout", "31d"], /^queuectl: job-timeout must be a duration between 0 and 30d/],
    [["set", "lease-timeout", "1s"], /lease-timeout must be a duration between 2s and 1d/],
    [["set", "log-max-bytes", "1"], /log-max-bytes must be a size between 1KiB and 1GiB/],
    [["set", "backoff-jitter", "maybe"], /backoff-jitter must be true or false, got "maybe"/],
    [
      ["set", "max-retries"],
      /^queuectl: missing argument <value>; see queuectl config set --help$/,
    ],
    [["set"], /^queuectl: missing argument <key>; see queuectl config set --help$/],
    [["get", "a", "b"], /^queuectl: unexpected argument "b"/],
    [["bogus"], /^queuectl: unknown command "bogus"; .*see queuectl config --help$/],
    [
      ["get", "max-retries"],
      /^queuectl: QUEUECTL_MAX_RETRIES: max-retries must be an integer between 0 and 100, got "abc"$/,
      { QUEUECTL_MAX_RETRIES: "abc" },
    ],
    [["set", "max-retries", "0x10"], /max-retries must be an integer between 0 and 100/],
    [["set", "max-retries", "+5"], /max-retries must be an integer between 0 and 100/],
  ];
  const results = await allDone(
    cases.map(([args, , env]) => runCli(tmp.db, ["config", ...args], { env })),
  );
  for (const [i, [args, error]] of cases.entries()) {
    await t.step(
      `config ${args.join(" ")} → exit 2`,
      () => assertOneLineError(results[i], 2, error),
    );
  }
  assert.deepEqual(await storedConfig(tmp.db), before);
});
