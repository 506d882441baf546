/**
 * Every configuration key: its name, type, default, bounds and one-line doc, and how a value is
 * resolved. Precedence, highest first: command flag, `QUEUECTL_<KEY>` environment variable, stored
 * config (`config set`), default. No storage here: callers pass the stored values in, as the text
 * the user typed (`10m`, `4MiB`), which `parse` reads back and `config list` shows as typed.
 * `Config`, `ConfigKey` and `ConfigValue` are derived from the key table: add a key there only.
 */
import { formatDurationExact, parseDurationMs } from "./duration.ts";
import { UsageError } from "./errors.ts";
import type { BackoffPolicy } from "./job.ts";

/** What a key's value is; decides how it is parsed, shown and written in `--json`. */
export type KeyKind = "integer" | "number" | "duration" | "size" | "boolean";

/** One key, with its value type `T` (ms for durations, bytes for sizes). */
interface KeyDef<N extends string, F extends string, T extends number | boolean> {
  /** Canonical kebab-case name. */
  name: N;
  /** Its field in the typed `Config`. */
  field: F;
  /** Other spellings users type (`max_retries`, `retry_base`). */
  aliases: readonly string[];
  doc: string;
  kind: KeyKind;
  default: T;
  /** Turns user text into the value or throws `UsageError` naming the bound. */
  parse(text: string): T;
  /** The value in the units people read: `1h`, `1MiB`, `0.5`, `true`. */
  show(value: T): string;
  /** The value in `--json`: durations in seconds, sizes in bytes. */
  json(value: T): number | boolean;
}

/** A key seen without its value type, as commands that handle any key use it. */
export interface KeyInfo {
  name: ConfigKey;
  field: keyof Config;
  aliases: readonly string[];
  doc: string;
  kind: KeyKind;
  default: number | boolean;
  parse(text: string): number | boolean;
  show(value: number | boolean): string;
  json(value: number | boolean): number | boolean;
}

/**
 * An integer as every part of queuectl reads one: optional `-`, then decimal digits, nothing
 * around them. `Number()` would also read `0x10`, `1e3`, `+5` and ` 5`; those are refused, the
 * same for config values and for flags like `--limit`. Returns `null` when it is not one.
 */
export function parseInteger(text: string): number | null {
  if (!/^-?\d+$/.test(text)) return null;
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : null;
}

function integer(name: string, min: number, max: number) {
  return {
    kind: "integer" as const,
    parse: (text: string): number => {
      const n = parseInteger(text);
      if (n === null || n < min || n > max) {
        throw new UsageError(`${name} must be an integer between ${min} and ${max}, got "${text}"`);
      }
      return n;
    },
    show: (v: number) => String(v),
    json: (v: number) => v,
  };
}

function decimal(name: string, min: number, max: number) {
  return {
    kind: "number" as const,
    parse: (text: string): number => {
      // Decimal notation only: Number() would also read "0x10" as 16, and " 5" as 5.
      const n = /^-?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(text) ? Number(text) : NaN;
      if (!Number.isFinite(n) || n < min || n > max) {
        throw new UsageError(`${name} must be a number between ${min} and ${max}, got "${text}"`);
      }
      return n;
    },
    show: (v: number) => String(v),
    json: (v: number) => v,
  };
}

/** Durations resolve to milliseconds; in text, a bare number means seconds. */
function duration(name: string, minMs: number, maxMs: number, bounds: string) {
  return {
    kind: "duration" as const,
    parse: (text: string): number => {
      const ms = parseDurationMs(text);
      if (ms === null || ms < minMs || ms > maxMs) {
        throw new UsageError(
          `${name} must be a duration between ${bounds} (seconds, or like 90s, 5m, 2h), got "${text}"`,
        );
      }
      return Math.round(ms);
    },
    show: formatDurationExact,
    json: (v: number) => v / 1000,
  };
}

const SIZE_UNITS: Array<[string, number]> = [["GiB", 1024 ** 3], ["MiB", 1024 ** 2], ["KiB", 1024]];

/** `1048576` → `1MiB`; a size that is no whole number of KiB stays in bytes (`1500B`). */
export function formatSize(bytes: number): string {
  for (const [unit, n] of SIZE_UNITS) {
    if (bytes > 0 && bytes % n === 0) return `${bytes / n}${unit}`;
  }
  return `${bytes}B`;
}

function bytes(name: string, min: number, max: number) {
  const units: Record<string, number> = { "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };
  return {
    kind: "size" as const,
    parse: (text: string): number => {
      const m = /^(\d+)\s*([kmg]?)(i?b)?$/i.exec(text.trim());
      const n = m ? Number(m[1]) * units[m[2].toLowerCase()] : NaN;
      if (!m || n < min || n > max) {
        throw new UsageError(
          `${name} must be a size between ${formatSize(min)} and ${
            formatSize(max)
          } (bytes, or like 512KiB, 4MiB), got "${text}"`,
        );
      }
      return n;
    },
    show: formatSize,
    json: (v: number) => v,
  };
}

function boolean(name: string) {
  return {
    kind: "boolean" as const,
    parse: (text: string): boolean => {
      const t = text.trim().toLowerCase();
      if (["true", "1", "yes", "on"].includes(t)) return true;
      if (["false", "0", "no", "off"].includes(t)) return false;
      throw new UsageError(`${name} must be true or false, got "${text}"`);
    },
    show: (v: boolean) => String(v),
    json: (v: boolean) => v,
  };
}

/** Keeps each key's literal name and field, so the types below derive from the table. */
const key = <const N extends string, const F extends string, T extends number | boolean>(
  def: KeyDef<N, F, T>,
) => def;

/** The longest run-time limit, of the config default and of any one job (job field timeout). */
export const MAX_JOB_TIMEOUT_MS = 30 * 86_400_000;

const KEY_TABLE = [
  key({
    name: "max-retries",
    field: "maxRetries",
    aliases: ["max_retries", "retries"],
    doc: "retries after the first attempt before a job goes to the DLQ (job field max_retries)",
    default: 3,
    ...integer("max-retries", 0, 100),
  }),
  key({
    name: "backoff-base",
    field: "backoffBaseSeconds",
    aliases: ["backoff_base", "retry_base", "retry-base"],
    doc: "retry delay after failed attempt a is backoff-base ^ a seconds",
    default: 2,
    ...decimal("backoff-base", 0, 100),
  }),
  key({
    name: "backoff-max",
    field: "backoffMaxMs",
    aliases: ["backoff_max"],
    doc: "upper bound of any one retry delay",
    default: 3_600_000,
    ...duration("backoff-max", 0, 30 * 86_400_000, "0 and 30d"),
  }),
  key({
    name: "backoff-jitter",
    field: "backoffJitter",
    aliases: ["backoff_jitter", "jitter"],
    doc: "scale each retry delay by a random factor between 0.5 and 1.5",
    default: false,
    ...boolean("backoff-jitter"),
  }),
  key({
    name: "job-timeout",
    field: "jobTimeoutMs",
    aliases: ["job_timeout", "timeout"],
    doc: "default run-time limit of a job; 0 means none (job field timeout)",
    default: 0,
    ...duration("job-timeout", 0, MAX_JOB_TIMEOUT_MS, "0 and 30d"),
  }),
  key({
    name: "lease-timeout",
    field: "leaseTimeoutMs",
    aliases: ["lease_timeout", "lease"],
    doc: "a job whose worker sent no heartbeat for this long goes back to the queue",
    default: 30_000,
    ...duration("lease-timeout", 2_000, 86_400_000, "2s and 1d"),
  }),
  key({
    name: "kill-grace",
    field: "killGraceMs",
    aliases: ["kill_grace"],
    doc: "after SIGTERM to a timed-out or forcibly stopped job, wait this long before SIGKILL",
    default: 5_000,
    ...duration("kill-grace", 0, 600_000, "0 and 10m"),
  }),
  key({
    name: "log-max-bytes",
    field: "logMaxBytes",
    aliases: ["log_max_bytes", "log-max"],
    doc: "size cap of each job's output log; the tail is kept",
    default: 1024 * 1024,
    ...bytes("log-max-bytes", 1024, 1024 ** 3),
  }),
  key({
    name: "retention-completed",
    field: "retentionCompletedMs",
    aliases: ["retention_completed"],
    doc:
      "workers delete completed jobs (with their output) this long after they finished; 0 keeps them",
    default: 0,
    ...duration("retention-completed", 0, 3650 * 86_400_000, "0 and 3650d"),
  }),
  key({
    name: "retention-dead",
    field: "retentionDeadMs",
    aliases: ["retention_dead"],
    doc: "workers delete dead jobs (the DLQ) this long after they died; 0 keeps them",
    default: 0,
    ...duration("retention-dead", 0, 3650 * 86_400_000, "0 and 3650d"),
  }),
] as const;

type KeyOfTable = typeof KEY_TABLE[number];

/** A config key's canonical name: `max-retries`, …; derived from the table above. */
export type ConfigKey = KeyOfTable["name"];

/** Resolved configuration, one typed field per key (durations in ms, sizes in bytes). */
export type Config = { [D in KeyOfTable as D["field"]]: ReturnType<D["parse"]> };

/** The value type of one key: `ConfigValue<"max-retries">` is `number`. */
export type ConfigValue<K extends ConfigKey> = ReturnType<
  Extract<KeyOfTable, { name: K }>["parse"]
>;

/** All keys, in the order `config list` shows them. */
export const CONFIG_KEYS: readonly KeyInfo[] = KEY_TABLE;

export type ConfigSource = "flag" | "env" | "stored" | "default";

/** Finds a key by any spelling (`max-retries`, `max_retries`, `MAX_RETRIES`) or throws. */
export function findKey(name: string): KeyInfo {
  // `_` and `-` are the same in every spelling: `log_max` finds the alias `log-max`.
  const norm = (s: string) => s.trim().toLowerCase().replaceAll("_", "-");
  const n = norm(name);
  const def = CONFIG_KEYS.find((k) => norm(k.name) === n || k.aliases.some((a) => norm(a) === n));
  if (!def) {
    throw new UsageError(
      `unknown config key "${name}"; known keys: ${CONFIG_KEYS.map((k) => k.name).join(", ")}`,
    );
  }
  return def;
}

/** The environment variable that overrides a key: `max-retries` → `QUEUECTL_MAX_RETRIES`. */
export function envName(key: string): string {
  return "QUEUECTL_" + key.toUpperCase().replaceAll("-", "_");
}

/** The key's name in `--json`: `max-retries` → `max_retries`, as job JSON spells fields. */
export function jsonName(key: string): string {
  return key.replaceAll("-", "_");
}

/** A key's value and where it came from. */
export interface ResolvedValue {
  key: ConfigKey;
  value: number | boolean;
  /** The value as people read it, in the units they typed (`1h` stays `1h`). */
  shown: string;
  source: ConfigSource;
  doc: string;
}

/** A key whose flag, environment or stored text does not parse: what was given, and why not. */
export interface InvalidValue {
  key: ConfigKey;
  value: null;
  /** The text as given. */
  shown: string;
  source: Exclude<ConfigSource, "default">;
  doc: string;
  /** The one-line `UsageError` message that commands using this key fail with. */
  error: string;
}

export type ListedValue = ResolvedValue | InvalidValue;

/**
 * A value as people read it, in the units they typed: a duration typed `90m` stays `90m`. A bare
 * number, or the `600000ms` form that earlier versions stored, is shown in whole units (`10m`);
 * sizes in the largest whole binary unit (`4mb` → `4MiB`, `1536KiB` stays).
 */
export function showTyped(def: KeyInfo, text: string, value: number | boolean): string {
  const t = text.trim().toLowerCase();
  if (def.kind !== "duration" || /^[\d.]+$/.test(t)) return def.show(value);
  if (/^\d+ms$/.test(t) && Number(value) % 1000 === 0) return def.show(value);
  return t;
}

type Flags = Partial<Record<ConfigKey, string>>;
type Env = (name: string) => string | undefined;

/**
 * Resolves one key, never throwing: an invalid value comes back as an `InvalidValue` whose
 * `error` names the variable (environment) or says how to change it (stored).
 */
function resolveOne(def: KeyInfo, stored: Record<string, string>, env: Env, flags: Flags) {
  const flag = flags[def.name];
  const fromEnv = env(envName(def.name));
  const [source, text]: [ConfigSource, string | undefined] = flag !== undefined
    ? ["flag", flag]
    : fromEnv !== undefined && fromEnv !== ""
    ? ["env", fromEnv]
    : stored[def.name] !== undefined
    ? ["stored", stored[def.name]]
    : ["default", undefined];
  const base = { key: def.name, doc: def.doc };
  if (source === "default" || text === undefined) {
    return {
      ...base,
      value: def.default,
      shown: def.show(def.default),
      source: "default",
    } as ResolvedValue;
  }
  try {
    const value = def.parse(text);
    return { ...base, value, shown: showTyped(def, text, value), source } as ResolvedValue;
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    const why = e.message;
    const error = source === "env" ? `${envName(def.name)}: ${why}` : source === "stored"
      // Set before the bounds changed, or written by hand: say where the value comes from.
      ? `stored config ${def.name}: ${why}; change it with ` +
        `"queuectl config set ${def.name} VALUE" or "queuectl config unset ${def.name}"`
      : why;
    return { ...base, value: null, shown: text, source, error } as InvalidValue;
  }
}

/**
 * Every key, valid or not, for `config list`: an invalid value is shown, marked, instead of
 * failing the whole listing. `stored` maps canonical names to stored text; `env` reads the
 * environment; `flags` maps canonical names to flag text.
 */
export function describeAll(
  stored: Record<string, string>,
  env: Env,
  flags: Flags = {},
): ListedValue[] {
  return CONFIG_KEYS.map((def) => resolveOne(def, stored, env, flags));
}

/** Resolves one key, or throws its one-line `UsageError`; other keys are not read. */
export function resolveKey(
  name: ConfigKey,
  stored: Record<string, string>,
  env: Env,
  flags: Flags = {},
): ResolvedValue {
  const v = resolveOne(findKey(name), stored, env, flags);
  if (v.value === null) throw new UsageError((v as InvalidValue).error);
  return v;
}

/**
 * Resolves every key. An invalid environment value is a `UsageError` that names the variable;
 * an invalid stored value, one that says how to change it; the first invalid key is reported.
 */
export function resolveAll(
  stored: Record<string, string>,
  env: Env,
  flags: Flags = {},
): ResolvedValue[] {
  const values = describeAll(stored, env, flags);
  const bad = values.find((v): v is InvalidValue => v.value === null);
  if (bad) throw new UsageError(bad.error);
  return values as ResolvedValue[];
}

/** Folds resolved values into the typed `Config`. */
export function toConfig(values: ResolvedValue[]): Config {
  return Object.fromEntries(values.map((v) => [findKey(v.key).field, v.value])) as Config;
}

/** How often a worker renews its lease: a quarter of the lease, so three beats may be missed. */
export function heartbeatIntervalMs(config: Pick<Config, "leaseTimeoutMs">): number {
  return Math.max(500, Math.floor(config.leaseTimeoutMs / 4));
}

/** The retry timing that `lib/job.ts` applies, from the resolved config. */
export function backoffPolicy(config: Config): BackoffPolicy {
  return {
    backoffBaseSeconds: config.backoffBaseSeconds,
    backoffMaxSeconds: config.backoffMaxMs / 1000,
    jitter: config.backoffJitter,
  };
}
