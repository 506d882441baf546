/**
 * The stderr logger of long-running processes (supervisor and workers), on `@logtape/logtape`.
 * One line per event: `HH:MM:SS.mmm level event key=value …`. The level comes from `--log-level`,
 * `-q`/`-v`, or `QUEUECTL_LOG`. Never log job environments or full command lines at info level:
 * they may hold secrets. Short-lived commands do not import this module (start-up cost).
 */
import { configure, getLogger, type Logger, type LogLevel, type LogRecord } from "@logtape/logtape";
import { UsageError } from "./errors.ts";
import { writeAll } from "./write_all.ts";

export type { Logger };
export const LOG_LEVELS = ["debug", "info", "warning", "error"] as const;

function formatValue(v: unknown): string {
  const s = typeof v === "string" ? v : JSON.stringify(v);
  return /[\s"=]/.test(s) || s === "" ? JSON.stringify(s) : s;
}

function formatRecord(r: LogRecord): string {
  const d = new Date(r.timestamp);
  const time = d.toISOString().slice(11, 23);
  const event = r.message.map((m) => String(m)).join("");
  const fields = Object.entries(r.properties).filter(([, v]) => v !== undefined && v !== null)
    .map(([k, v]) => `${k}=${formatValue(v)}`).join(" ");
  const level = r.level === "warning" ? "warn" : r.level;
  return `${time} ${level.padEnd(5)} ${event}${fields ? " " + fields : ""}\n`;
}

/** Accepts `debug`, `info`, `warn`/`warning`, `error`; anything else is `null`. */
export function parseLogLevel(text: string | undefined): LogLevel | null {
  if (text === undefined) return null;
  const t = text.trim().toLowerCase();
  if (t === "warn") return "warning";
  return (LOG_LEVELS as readonly string[]).includes(t) ? t as LogLevel : null;
}

/**
 * The level from `--log-level`, else `QUEUECTL_LOG`, else `info`. An invalid value in either is
 * a one-line `UsageError`, never ignored: a set but unusable level would hide what was asked for.
 * `QUEUECTL_LOG` is checked whenever it is set, even when a flag overrides it.
 */
export function resolveLogLevel(flag: string | undefined, env: string | undefined): LogLevel {
  const refuse = (what: string, text: string) =>
    new UsageError(`${what} must be debug, info, warn or error, got "${text}"`);
  const fromEnv = env === undefined || env === "" ? null : parseLogLevel(env);
  if (fromEnv === null && env !== undefined && env !== "") throw refuse("QUEUECTL_LOG", env);
  if (flag === undefined) return fromEnv ?? "info";
  const fromFlag = parseLogLevel(flag);
  if (fromFlag === null) throw refuse("--log-level", flag);
  return fromFlag;
}

/** Sets up the `queuectl` logger once per process, writing to stderr. */
export async function setupLogging(level: LogLevel): Promise<Logger> {
  await configure({
    reset: true,
    sinks: {
      stderr: (record: LogRecord) => {
        try {
          writeAll(Deno.stderr, formatRecord(record));
        } catch {
          // A closed terminal must not stop the worker.
        }
      },
    },
    loggers: [
      { category: ["queuectl"], lowestLevel: level, sinks: ["stderr"] },
      { category: ["logtape", "meta"], lowestLevel: "error", sinks: ["stderr"] },
    ],
  });
  return getLogger(["queuectl"]);
}
