/**
 * Cron expressions of recurring jobs (`queuectl schedule`), read by `npm:croner`, and what a
 * schedule fires when it is due. Pure: no store and no clock; every time is passed in, in ms since
 * the epoch. Loaded only by the `schedule` command and the supervisor (croner costs start-up that
 * `enqueue` must not pay).
 */
import { Cron } from "croner";
import { UsageError } from "./errors.ts";

/** What a supervisor does with a tick it finds after a downtime: run the last one, or none. */
export type CatchUp = "last" | "none";
export const CATCH_UPS: readonly CatchUp[] = ["last", "none"];

/**
 * How late a tick may be fired under `--catch-up none`: a tick found later than this counts as
 * missed (the supervisors were down) and is skipped. Under `last` the latest tick always runs.
 */
export const ON_TIME_MS = 60_000;

const SHORTCUTS = "@yearly, @monthly, @weekly, @daily, @hourly";
const FORMS = `5 fields (minute hour day-of-month month day-of-week, e.g. '0 2 * * *'), ` +
  `6 with seconds first, or ${SHORTCUTS}`;

/** A parsed cron expression in a time zone. */
export interface CronSchedule {
  expression: string;
  tz: string;
  /** The first tick strictly after `t`, or `null` when the expression has none. */
  nextAfter(t: number): number | null;
  /** The last tick at or before `t`, or `null` when there is none. */
  latestAtOrBefore(t: number): number | null;
}

/**
 * The IANA name of a time zone as the runtime spells it (`utc` → `UTC`), or a `UsageError`.
 * Without `tz`, this machine's zone: stored with the schedule, so every host fires the same ticks.
 */
export function resolveTimeZone(tz?: string): string {
  if (tz === undefined) return Intl.DateTimeFormat().resolvedOptions().timeZone;
  try {
    return new Intl.DateTimeFormat("en", { timeZone: tz }).resolvedOptions().timeZone;
  } catch {
    throw new UsageError(
      `unknown time zone "${tz}"; give an IANA name such as UTC, Europe/Paris or America/New_York`,
    );
  }
}

/** Parses `expression` in `tz` (an IANA name, see `resolveTimeZone`), or throws `UsageError`. */
export function parseCron(expression: string, tz: string): CronSchedule {
  const text = expression.trim().replace(/\s+/g, " ");
  if (text === "@reboot") {
    throw new UsageError(`@reboot is not supported (there is no boot to run at); write ${FORMS}`);
  }
  let cron: Cron;
  try {
    // 5-or-6-parts: standard cron, or seconds first; day-of-month and day-of-week are ORed when
    // both are given, as in Vixie cron.
    cron = new Cron(text, { timezone: tz, mode: "5-or-6-parts" });
  } catch (e) {
    const why = (e as Error).message.replace(/^CronPattern: /, "").replace(/\.$/, "");
    throw new UsageError(`"${expression}" is not a cron expression (${why}); write ${FORMS}`);
  }
  const schedule: CronSchedule = {
    expression: text,
    tz,
    nextAfter(t) {
      // croner drops milliseconds and returns the first tick strictly after the second it keeps.
      return cron.nextRun(new Date(t))?.getTime() ?? null;
    },
    latestAtOrBefore(t) {
      // Ticks are whole seconds: a tick at or before t is one strictly before t's next second.
      const [p] = cron.previousRuns(1, new Date(Math.floor(t / 1000) * 1000 + 1000));
      return p?.getTime() ?? null;
    },
  };
  if (schedule.nextAfter(Date.UTC(2000, 0, 1)) === null) {
    throw new UsageError(`"${expression}" never matches a date; check its day and month`);
  }
  return schedule;
}

/** What a due schedule does now: fire `tick` (or skip it), and wait next for `nextRunAt`. */
export interface FirePlan {
  /** The latest tick that passed. */
  tick: number;
  /** Whether to enqueue its job; `false` when it was missed and is skipped (`catch-up none`). */
  fire: boolean;
  /** The first tick after `now`: the schedule's next run. */
  nextRunAt: number | null;
}

/**
 * For a schedule whose next run (`dueAt`) is at or before `now`: the latest tick that passed is
 * the one to fire, once, whatever number of ticks were missed (never a burst). Under `none` it
 * fires only when on time (within `ON_TIME_MS`); a tick found later was missed and is skipped.
 */
export function planFire(
  cron: CronSchedule,
  dueAt: number,
  now: number,
  catchUp: CatchUp,
): FirePlan {
  const tick = Math.max(dueAt, cron.latestAtOrBefore(now) ?? dueAt);
  return {
    tick,
    fire: catchUp === "last" || now - tick <= ON_TIME_MS,
    nextRunAt: cron.nextAfter(now),
  };
}

/**
 * The id of the job a schedule enqueues for one tick: the same on every host, so the store's
 * unique id turns a second enqueue of one tick into nothing.
 */
export function tickJobId(name: string, tick: number): string {
  return `${name}@${new Date(tick).toISOString().replace(".000Z", "Z")}`;
}

/** Schedule names: what job ids and shells take without quoting. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** Refuses a schedule name that would not make a plain job id. */
export function checkScheduleName(name: string): string {
  if (!NAME.test(name)) {
    throw new UsageError(
      `schedule name "${name.slice(0, 70)}" must be 1 to 64 letters, digits, _ . or - ` +
        `(starting with a letter or digit)`,
    );
  }
  return name;
}
