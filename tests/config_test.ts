/**
 * Configuration keys (`lib/config.ts`): spellings, bounds and their messages, and precedence
 * flag > environment > stored > default. Pure: the environment is a function passed in.
 */
import assert from "node:assert/strict";
import { assertUsage } from "./helpers.ts";
import {
  backoffPolicy,
  type Config,
  CONFIG_KEYS,
  describeAll,
  envName,
  findKey,
  formatSize,
  heartbeatIntervalMs,
  type InvalidValue,
  parseInteger,
  resolveAll,
  type ResolvedValue,
  resolveKey,
  toConfig,
} from "../lib/config.ts";

const noEnv = () => undefined;
const envOf = (vars: Record<string, string>) => (name: string) => vars[name];
const byKey = (values: ResolvedValue[], key: string) => values.find((v) => v.key === key)!;

Deno.test("config: findKey accepts every spelling of a key", () => {
  const cases: Array<[string, string]> = [
    ["max-retries", "max-retries"],
    ["max_retries", "max-retries"],
    ["MAX_RETRIES", "max-retries"],
    ["Max-Retries", "max-retries"],
    ["  max-retries ", "max-retries"],
    ["retries", "max-retries"],
    ["backoff-base", "backoff-base"],
    ["backoff_base", "backoff-base"],
    ["retry_base", "backoff-base"],
    ["retry-base", "backoff-base"],
    ["RETRY_BASE", "backoff-base"],
    ["jitter", "backoff-jitter"],
    ["timeout", "job-timeout"],
    ["lease", "lease-timeout"],
    ["kill_grace", "kill-grace"],
    ["LOG_MAX_BYTES", "log-max-bytes"],
    ["log-max", "log-max-bytes"],
    ["log_max", "log-max-bytes"],
  ];
  for (const [spelling, name] of cases) assert.equal(findKey(spelling).name, name, spelling);
});

Deno.test("config: every key is found by its canonical and its env-style name", () => {
  for (const def of CONFIG_KEYS) {
    assert.equal(findKey(def.name), def);
    assert.equal(findKey(def.name.toUpperCase().replaceAll("-", "_")), def);
    for (const alias of def.aliases) assert.equal(findKey(alias), def, alias);
  }
});

Deno.test("config: an unknown key is refused, listing the known ones", () => {
  assertUsage(
    () => findKey("max-retry"),
    'unknown config key "max-retry"; known keys: max-retries, backoff-base, backoff-max, ' +
      "backoff-jitter, job-timeout, lease-timeout, kill-grace, log-max-bytes, " +
      "retention-completed, retention-dead",
  );
  assertUsage(() => findKey(""), /^unknown config key ""/);
  assertUsage(() => findKey("constructor"), /^unknown config key "constructor"/);
});

Deno.test("config: no two keys share a spelling", () => {
  const seen = new Map<string, string>();
  for (const def of CONFIG_KEYS) {
    for (const s of [def.name, ...def.aliases]) {
      const n = s.replaceAll("_", "-");
      const other = seen.get(n);
      assert.ok(other === undefined || other === def.name, `${s} names ${other} and ${def.name}`);
      seen.set(n, def.name);
    }
  }
});

Deno.test("config: max-retries must be an integer between 0 and 100", () => {
  const def = findKey("max-retries");
  assert.equal(def.parse("0"), 0);
  assert.equal(def.parse("100"), 100);
  assert.equal(def.parse("07"), 7);
  // One integer syntax everywhere (flags too): digits with an optional minus, nothing around.
  const refused = ["-1", "101", "1.5", "abc", "", "  ", "0x10", "1e1", "1e3", "Infinity", "3 4"];
  refused.push(" 100 ", " 5", "5 ", "+7", "+5", "0b1", "0o7", "5_0");
  for (const bad of refused) {
    assertUsage(
      () => def.parse(bad),
      `max-retries must be an integer between 0 and 100, got "${bad}"`,
    );
  }
});

Deno.test("config: backoff-base must be a number between 0 and 100", () => {
  const def = findKey("backoff-base");
  assert.equal(def.parse("2"), 2);
  assert.equal(def.parse("0.2"), 0.2);
  assert.equal(def.parse(".5"), 0.5);
  assert.equal(def.parse("1e-7"), 1e-7);
  assert.equal(def.parse("0"), 0);
  assert.equal(def.parse("100"), 100);
  for (const bad of ["-0.1", "100.5", "two", "", "NaN", "Infinity", "0x10"]) {
    assertUsage(
      () => def.parse(bad),
      `backoff-base must be a number between 0 and 100, got "${bad}"`,
    );
  }
});

Deno.test("config: duration keys take seconds or units and name their bounds", () => {
  const cases: Array<[string, string, number]> = [
    ["backoff-max", "1h", 3_600_000],
    ["backoff-max", "0", 0],
    ["backoff-max", "30d", 30 * 86_400_000],
    ["job-timeout", "90", 90_000],
    ["job-timeout", "0", 0],
    ["lease-timeout", "2s", 2_000],
    ["lease-timeout", "1d", 86_400_000],
    ["kill-grace", "250ms", 250],
    ["kill-grace", "10m", 600_000],
  ];
  for (const [key, text, ms] of cases) assert.equal(findKey(key).parse(text), ms, `${key} ${text}`);

  const bad: Array<[string, string, string]> = [
    ["backoff-max", "31d", "0 and 30d"],
    ["job-timeout", "-1", "0 and 30d"],
    ["job-timeout", "forever", "0 and 30d"],
    ["lease-timeout", "1s", "2s and 1d"],
    ["lease-timeout", "25h", "2s and 1d"],
    ["kill-grace", "11m", "0 and 10m"],
  ];
  for (const [key, text, bounds] of bad) {
    assertUsage(
      () => findKey(key).parse(text),
      `${key} must be a duration between ${bounds} (seconds, or like 90s, 5m, 2h), got "${text}"`,
    );
  }
});

Deno.test("config: log-max-bytes takes bytes or KiB/MiB/GiB between 1KiB and 1GiB", () => {
  const def = findKey("log-max-bytes");
  assert.equal(def.parse("1024"), 1024);
  assert.equal(def.parse("512KiB"), 512 * 1024);
  assert.equal(def.parse("4 MiB"), 4 * 1024 * 1024);
  assert.equal(def.parse("4m"), 4 * 1024 * 1024);
  assert.equal(def.parse("1GiB"), 1024 ** 3);
  for (const bad of ["1023", "2GiB", "1.5MiB", "lots", "", "-5"]) {
    assertUsage(
      () => def.parse(bad),
      `log-max-bytes must be a size between 1KiB and 1GiB (bytes, or like 512KiB, 4MiB), got "${bad}"`,
    );
  }
});

Deno.test("config: backoff-jitter takes true/false and their usual spellings", () => {
  const def = findKey("backoff-jitter");
  for (const t of ["true", "1", "yes", "ON", " True "]) assert.equal(def.parse(t), true, t);
  for (const f of ["false", "0", "no", "off"]) assert.equal(def.parse(f), false, f);
  assertUsage(() => def.parse("maybe"), 'backoff-jitter must be true or false, got "maybe"');
});

Deno.test("config: every default is within the key's own bounds", () => {
  // Shown in its own units, each default reads back as itself.
  for (const def of CONFIG_KEYS) {
    assert.equal(def.parse(def.show(def.default)), def.default, def.name);
  }
});

Deno.test("config: envName turns a key into its QUEUECTL_ variable", () => {
  assert.equal(envName("max-retries"), "QUEUECTL_MAX_RETRIES");
  assert.equal(envName("backoff-base"), "QUEUECTL_BACKOFF_BASE");
  assert.equal(envName("log-max-bytes"), "QUEUECTL_LOG_MAX_BYTES");
});

Deno.test("config: with nothing set, every key resolves to its default", () => {
  const values = resolveAll({}, noEnv);
  assert.deepEqual(values.map((v) => v.key), CONFIG_KEYS.map((k) => k.name));
  for (const v of values) assert.equal(v.source, "default", v.key);
  assert.deepEqual(toConfig(values), {
    maxRetries: 3,
    backoffBaseSeconds: 2,
    backoffMaxMs: 3_600_000,
    backoffJitter: false,
    jobTimeoutMs: 0,
    leaseTimeoutMs: 30_000,
    killGraceMs: 5_000,
    logMaxBytes: 1024 * 1024,
    retentionCompletedMs: 0,
    retentionDeadMs: 0,
  });
  assert.equal(byKey(values, "lease-timeout").shown, "30s");
  assert.equal(byKey(values, "max-retries").doc, findKey("max-retries").doc);
});

Deno.test("config: precedence is flag > env > stored > default", () => {
  const stored = { "max-retries": "5" };
  const env = envOf({ QUEUECTL_MAX_RETRIES: "7" });
  const flags = { "max-retries": "9" } as const;

  const pick = (v: ResolvedValue) => [v.value, v.source];
  assert.deepEqual(pick(byKey(resolveAll({}, noEnv), "max-retries")), [3, "default"]);
  assert.deepEqual(pick(byKey(resolveAll(stored, noEnv), "max-retries")), [5, "stored"]);
  assert.deepEqual(pick(byKey(resolveAll(stored, env), "max-retries")), [7, "env"]);
  assert.deepEqual(pick(byKey(resolveAll(stored, env, flags), "max-retries")), [9, "flag"]);
  assert.deepEqual(pick(byKey(resolveAll({}, noEnv, flags), "max-retries")), [9, "flag"]);
  assert.deepEqual(pick(byKey(resolveAll({}, env), "max-retries")), [7, "env"]);
});

Deno.test("config: each key resolves from its own source, independently of the others", () => {
  const values = resolveAll(
    { "backoff-base": "3", "lease-timeout": "1m" },
    envOf({ QUEUECTL_LEASE_TIMEOUT: "10s", QUEUECTL_BACKOFF_JITTER: "yes" }),
    { "kill-grace": "1s" },
  );
  const sources = Object.fromEntries(values.map((v) => [v.key, v.source]));
  assert.deepEqual(sources, {
    "max-retries": "default",
    "backoff-base": "stored",
    "backoff-max": "default",
    "backoff-jitter": "env",
    "job-timeout": "default",
    "lease-timeout": "env",
    "kill-grace": "flag",
    "log-max-bytes": "default",
    "retention-completed": "default",
    "retention-dead": "default",
  });
  const config = toConfig(values);
  assert.equal(config.backoffBaseSeconds, 3);
  assert.equal(config.leaseTimeoutMs, 10_000);
  assert.equal(config.killGraceMs, 1_000);
  assert.equal(config.backoffJitter, true);
  assert.equal(byKey(values, "lease-timeout").shown, "10s");
});

Deno.test("config: an empty environment variable is ignored", () => {
  const v = byKey(
    resolveAll({ "max-retries": "5" }, envOf({ QUEUECTL_MAX_RETRIES: "" })),
    "max-retries",
  );
  assert.deepEqual([v.value, v.source], [5, "stored"]);
});

Deno.test("config: only QUEUECTL_-prefixed canonical variables are read", () => {
  const asked: string[] = [];
  resolveAll({}, (name) => {
    asked.push(name);
    return undefined;
  });
  assert.deepEqual(asked, CONFIG_KEYS.map((k) => envName(k.name)));
});

Deno.test("config: an invalid environment value names the variable and the bound", () => {
  assertUsage(
    () => resolveAll({}, envOf({ QUEUECTL_MAX_RETRIES: "500" })),
    'QUEUECTL_MAX_RETRIES: max-retries must be an integer between 0 and 100, got "500"',
  );
});

Deno.test("config: an invalid flag value names the key and the bound", () => {
  assertUsage(
    () => resolveAll({}, noEnv, { "lease-timeout": "1s" }),
    'lease-timeout must be a duration between 2s and 1d (seconds, or like 90s, 5m, 2h), got "1s"',
  );
});

Deno.test("config: an invalid stored value says it is stored and how to change it", () => {
  assertUsage(
    () => resolveAll({ "max-retries": "500" }, noEnv),
    'stored config max-retries: max-retries must be an integer between 0 and 100, got "500"; ' +
      'change it with "queuectl config set max-retries VALUE" or ' +
      '"queuectl config unset max-retries"',
  );
  // A valid flag or environment value hides the bad stored one.
  assert.equal(
    byKey(resolveAll({ "max-retries": "500" }, noEnv, { "max-retries": "1" }), "max-retries").value,
    1,
  );
});

Deno.test("config: stored durations in ms read back as the same value", () => {
  const v = byKey(resolveAll({ "lease-timeout": "600000ms" }, noEnv), "lease-timeout");
  assert.equal(v.value, 600_000);
  assert.equal(v.shown, "10m");
});

Deno.test("config: backoffPolicy turns the config into seconds for lib/job.ts", () => {
  const config = toConfig(resolveAll({ "backoff-max": "90s", "backoff-base": "3" }, noEnv));
  assert.deepEqual(backoffPolicy(config), {
    backoffBaseSeconds: 3,
    backoffMaxSeconds: 90,
    jitter: false,
  });
});

Deno.test("config: the heartbeat is a quarter of the lease, at least 500ms", () => {
  assert.equal(heartbeatIntervalMs({ leaseTimeoutMs: 30_000 }), 7_500);
  assert.equal(heartbeatIntervalMs({ leaseTimeoutMs: 2_001 }), 500);
  assert.equal(heartbeatIntervalMs({ leaseTimeoutMs: 10_001 }), 2_500);
});

Deno.test("config: parseInteger reads optional minus and digits only", () => {
  const good: Array<[string, number]> = [["0", 0], ["5", 5], ["-3", -3], ["0010", 10]];
  for (const [text, n] of good) assert.equal(parseInteger(text), n, text);
  const bad = ["", " 5", "5 ", "+5", "0x10", "1e3", "1.0", "1_000", "٣", "9007199254740993"];
  for (const text of bad) assert.equal(parseInteger(text), null, JSON.stringify(text));
});

Deno.test("config: values are shown in the units typed, defaults in whole units", () => {
  const values = resolveAll(
    { "backoff-max": "90m", "job-timeout": "600000ms", "kill-grace": "1500ms" },
    envOf({ QUEUECTL_LEASE_TIMEOUT: "120", QUEUECTL_LOG_MAX_BYTES: "4mb" }),
  );
  const shown = Object.fromEntries(values.map((v) => [v.key, v.shown]));
  assert.deepEqual(shown, {
    "max-retries": "3",
    "backoff-base": "2",
    "backoff-max": "90m", // as typed
    "backoff-jitter": "false",
    "job-timeout": "10m", // the ms form earlier versions stored
    "lease-timeout": "2m", // a bare number is seconds
    "kill-grace": "1500ms",
    "log-max-bytes": "4MiB",
    "retention-completed": "0s",
    "retention-dead": "0s",
  });
  // Defaults: never `3600s` or a byte count.
  const defaults = Object.fromEntries(resolveAll({}, noEnv).map((v) => [v.key, v.shown]));
  assert.equal(defaults["backoff-max"], "1h");
  assert.equal(defaults["log-max-bytes"], "1MiB");
  assert.equal(formatSize(1536 * 1024), "1536KiB");
  assert.equal(formatSize(1500), "1500B");
});

Deno.test("config: describeAll marks an invalid value instead of throwing", () => {
  const values = describeAll(
    { "backoff-base": "-1" },
    envOf({ QUEUECTL_MAX_RETRIES: "abc", QUEUECTL_KILL_GRACE: "1m" }),
  );
  const bad = values.filter((v) => v.value === null);
  assert.deepEqual(bad.map((v) => [v.key, v.shown, v.source]), [
    ["max-retries", "abc", "env"],
    ["backoff-base", "-1", "stored"],
  ]);
  assert.equal(
    (bad[0] as InvalidValue).error,
    'QUEUECTL_MAX_RETRIES: max-retries must be an integer between 0 and 100, got "abc"',
  );
  assert.match((bad[1] as InvalidValue).error, /^stored config backoff-base: .*config unset/);
  assert.equal(byKey(values as ResolvedValue[], "kill-grace").value, 60_000);
});

Deno.test("config: resolveKey fails for its own key only", () => {
  const env = envOf({ QUEUECTL_MAX_RETRIES: "abc" });
  assert.equal(resolveKey("lease-timeout", {}, env).value, 30_000);
  assertUsage(
    () => resolveKey("max-retries", {}, env),
    'QUEUECTL_MAX_RETRIES: max-retries must be an integer between 0 and 100, got "abc"',
  );
  // The whole config needs every key.
  assertUsage(() => resolveAll({}, env), /^QUEUECTL_MAX_RETRIES: /);
});

Deno.test("config: the typed Config has one field per key, named in the key table", () => {
  const config: Config = toConfig(resolveAll({}, noEnv));
  assert.deepEqual(Object.keys(config), CONFIG_KEYS.map((k) => k.field));
  // Each field has its key's value type (checked by deno check as well).
  for (const def of CONFIG_KEYS) assert.equal(typeof config[def.field], typeof def.default);
});
