/**
 * Every configuration key: its name, type, default, bounds and one-line doc, and how a value is
 * resolved. Precedence, highest first: command flag, `QUEUECTL_<KEY>` environment variable, stored
 * config (`config set`), default. No storage here: callers pass the stored values in, as text that
 * `parse` reads (the CLI stores durations as e.g. `600000ms`, so they read back unchanged).
 */
import { parseDurationMs } from "./duration.ts";
import { UsageError } from "./errors.ts";
import type { BackoffPolicy } from "./job.ts";

interface KeyDef {
  /** Canonical kebab-case name. */
  name: string;
  /** Other spellings users type (`max_retries`, `retry_base`). */
  aliases: string[];
  doc: string;
  /** Default in the key's own unit (ms for durations, bytes for sizes). */
  default: number | boolean;
  /** Turns user text into the stored value or throws `UsageError` naming the bound. */
  parse(text: string): number | boolean;
  /** Formats a stored value for people. */
  show(value: number | boolean): string;
}

function integer(name: string, min: number, max: number) {
  return (text: string): number => {
    // Plain decimal digits only: Number() would also read "0x10" as 16 and "1e1" as 10.
    const n = /^[+-]?\d+$/.test(text.trim()) ? Number(text.trim()) : NaN;
    if (!Number.isInteger(n) || n < min || n > max) {
      throw new UsageError(`${name} must be an integer between ${min} and ${max}, got "${text}"`);
    }
    return n;
  };
}

function decimal(name: string, min: number, max: number) {
  return (text: string): number => {
    const t = text.trim();
    // Decimal notation only: Number() would also read "0x10" as 16.
    const n = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(t) ? Number(t) : NaN;
    if (!Number.isFinite(n) || n < min || n > max) {
      throw new UsageError(`${name} must be a number between ${min} and ${max}, got "${text}"`);
    }
    return n;
  };
}

/** Durations resolve to milliseconds; in text, a bare number means seconds. */
function duration(name: string, minMs: number, maxMs: number, bounds: string) {
  return (text: string): number => {
    const ms = parseDurationMs(text);
    if (ms === null || ms < minMs || ms > maxMs) {
      throw new UsageError(
        `${name} must be a duration between ${bounds} (seconds, or like 90s, 5m, 2h), got "${text}"`,
      );
    }
    return Math.round(ms);
  };
}

function bytes(name: string, min: number, max: number) {
  const units: Record<string, number> = { "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };
  return (text: string): number => {
    const m = /^(\d+)\s*([kmg]?)(i?b)?$/i.exec(text.trim());
    const n = m ? Number(m[1]) * units[m[2].toLowerCase()] : NaN;
    if (!m || n < min || n > max) {
      throw new UsageError(
        `${name} must be a size between 1KiB and 1GiB (bytes, or like 512KiB, 4MiB), got "${text}"`,
      );
    }
    return n;
  };
}

function boolean(name: string) {
  return (text: string): boolean => {
    const t = text.trim().toLowerCase();
    if (["true", "1", "yes", "on"].includes(t)) return true;
    if (["false", "0", "no", "off"].includes(t)) return false;
    throw new UsageError(`${name} must be true or false, got "${text}"`);
  };
}

const showMs = (v: number | boolean) => `${Number(v) / 1000}s`;
const showPlain = (v: number | boolean) => String(v);

/** The longest run-time limit, of the config default and of any one job (job field timeout). */
export const MAX_JOB_TIMEOUT_MS = 30 * 86_400_000;

/** All keys, in the order `config list` shows them. */
export const CONFIG_KEYS: readonly KeyDef[] = [
  {
    name: "max-retries",
    aliases: ["max_retries", "retries"],
    doc: "retries after the first attempt before a job goes to the DLQ (job field max_retries)",
    default: 3,
    parse: integer("max-retries", 0, 100),
    show: showPlain,
  },
  {
    name: "backoff-base",
    aliases: ["backoff_base", "retry_base", "retry-base"],
    doc: "retry delay after failed attempt a is backoff-base ^ a seconds",
    default: 2,
    parse: decimal("backoff-base", 0, 100),
    show: showPlain,
  },
  {
    name: "backoff-max",
    aliases: ["backoff_max"],
    doc: "upper bound of any one retry delay",
    default: 3_600_000,
    parse: duration("backoff-max", 0, 30 * 86_400_000, "0 and 30d"),
    show: showMs,
  },
  {
    name: "backoff-jitter",
    aliases: ["backoff_jitter", "jitter"],
    doc: "scale each retry delay by a random factor between 0.5 and 1.5",
    default: false,
    parse: boolean("backoff-jitter"),
    show: showPlain,
  },
  {
    name: "job-timeout",
    aliases: ["job_timeout", "timeout"],
    doc: "default run-time limit of a job; 0 means none (job field timeout)",
    default: 0,
    parse: duration("job-timeout", 0, MAX_JOB_TIMEOUT_MS, "0 and 30d"),
    show: showMs,
  },
  {
    name: "lease-timeout",
    aliases: ["lease_timeout", "lease"],
    doc: "a job whose worker sent no heartbeat for this long goes back to the queue",
    default: 30_000,
    parse: duration("lease-timeout", 2_000, 86_400_000, "2s and 1d"),
    show: showMs,
  },
  {
    name: "kill-grace",
    aliases: ["kill_grace"],
    doc: "after SIGTERM to a timed-out or forcibly stopped job, wait this long before SIGKILL",
    default: 5_000,
    parse: duration("kill-grace", 0, 600_000, "0 and 10m"),
    show: showMs,
  },
  {
    name: "log-max-bytes",
    aliases: ["log_max_bytes", "log-max"],
    doc: "size cap of each job's output log; the tail is kept",
    default: 1024 * 1024,
    parse: bytes("log-max-bytes", 1024, 1024 ** 3),
    show: showPlain,
  },
];

export type ConfigKey =
  | "max-retries"
  | "backoff-base"
  | "backoff-max"
  | "backoff-jitter"
  | "job-timeout"
  | "lease-timeout"
  | "kill-grace"
  | "log-max-bytes";

/** Resolved configuration, one typed field per key (durations in ms). */
export interface Config {
  maxRetries: number;
  backoffBaseSeconds: number;
  backoffMaxMs: number;
  backoffJitter: boolean;
  jobTimeoutMs: number;
  leaseTimeoutMs: number;
  killGraceMs: number;
  logMaxBytes: number;
}

export type ConfigSource = "flag" | "env" | "stored" | "default";

/** Finds a key by any spelling (`max-retries`, `max_retries`, `MAX_RETRIES`) or throws. */
export function findKey(name: string): KeyDef {
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

export interface ResolvedValue {
  key: string;
  value: number | boolean;
  shown: string;
  source: ConfigSource;
  doc: string;
}

/**
 * Resolves every key. `stored` maps canonical names to stored text; `env` reads the environment;
 * `flags` maps canonical names to flag text. An invalid environment value is a `UsageError` that
 * names the variable; an invalid stored value, one that says how to change it.
 */
export function resolveAll(
  stored: Record<string, string>,
  env: (name: string) => string | undefined,
  flags: Partial<Record<ConfigKey, string>> = {},
): ResolvedValue[] {
  return CONFIG_KEYS.map((def) => {
    const flag = flags[def.name as ConfigKey];
    const fromEnv = env(envName(def.name));
    let value: number | boolean = def.default;
    let source: ConfigSource = "default";
    if (flag !== undefined) {
      value = def.parse(flag);
      source = "flag";
    } else if (fromEnv !== undefined && fromEnv !== "") {
      try {
        value = def.parse(fromEnv);
      } catch (e) {
        throw new UsageError(`${envName(def.name)}: ${(e as Error).message}`);
      }
      source = "env";
    } else if (stored[def.name] !== undefined) {
      try {
        value = def.parse(stored[def.name]);
      } catch (e) {
        // Set before the bounds changed, or written by hand: say where the value comes from.
        throw new UsageError(
          `stored config ${def.name}: ${(e as Error).message}; change it with ` +
            `"queuectl config set ${def.name} VALUE" or "queuectl config unset ${def.name}"`,
        );
      }
      source = "stored";
    }
    return { key: def.name, value, shown: def.show(value), source, doc: def.doc };
  });
}

/** Folds resolved values into the typed `Config`. */
export function toConfig(values: ResolvedValue[]): Config {
  const v = Object.fromEntries(values.map((r) => [r.key, r.value]));
  return {
    maxRetries: v["max-retries"] as number,
    backoffBaseSeconds: v["backoff-base"] as number,
    backoffMaxMs: v["backoff-max"] as number,
    backoffJitter: v["backoff-jitter"] as boolean,
    jobTimeoutMs: v["job-timeout"] as number,
    leaseTimeoutMs: v["lease-timeout"] as number,
    killGraceMs: v["kill-grace"] as number,
    logMaxBytes: v["log-max-bytes"] as number,
  };
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
