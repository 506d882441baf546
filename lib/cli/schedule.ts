/**
 * `queuectl schedule add|list|show|remove|pause|resume`: recurring jobs. A schedule is a cron
 * expression in a time zone plus the job each tick enqueues; the supervisor of `worker start`
 * fires them (workers/schedules.ts). Parse → store → print; cron reading is in `lib/cron.ts`.
 */
import { buildCommand, buildRouteMap } from "@stricli/core";
import {
  CATCH_UPS,
  type CatchUp,
  checkScheduleName,
  ON_TIME_MS,
  parseCron,
  resolveTimeZone,
} from "../cron.ts";
import { formatDuration } from "../duration.ts";
import { NotFoundError, UsageError } from "../errors.ts";
import { loadConfig } from "../settings.ts";
import type { Schedule, Store } from "../store/store.ts";
import { type Context, dbFlag, type DbFlags, jsonFlag, withStore } from "./context.ts";
import { commandOf, countAfterDashes, jobFromFlags, specFromFlags } from "./enqueue_run.ts";
import { JOB_FLAGS, type JobFlagValues } from "./job_flags.ts";
import { colorState, iso, oneLine, out, outJson, relativeTime, table } from "./format.ts";

const ADD_EXAMPLE = "queuectl schedule add nightly '0 2 * * *' -- ./backup.sh";

interface AddFlags extends DbFlags, JobFlagValues {
  tz?: string;
  catchUp?: CatchUp;
  json: boolean;
}

function parseCatchUp(text: string): CatchUp {
  const t = text.trim().toLowerCase();
  if (!(CATCH_UPS as readonly string[]).includes(t)) {
    throw new UsageError(`--catch-up must be last or none, got "${text}"`);
  }
  return t as CatchUp;
}

/** Splits `NAME CRON -- COMMAND…` (the parser dropped the `--`), refusing any other shape. */
function readAddArguments(args: string[]): { name: string; expression: string; command: string } {
  const after = countAfterDashes(Deno.args);
  const before = args.slice(0, args.length - after);
  const words = args.slice(args.length - after);
  if (before.length > 2) {
    throw new UsageError(
      after === 0
        ? `put the command after --, like ${ADD_EXAMPLE}`
        : `give NAME and one cron expression before -- (got ${before.length} words); quote the ` +
          `expression so the shell keeps it one word: '0 2 * * *'`,
    );
  }
  if (before.length < 2) {
    throw new UsageError(`give a name, a quoted cron expression and a command: ${ADD_EXAMPLE}`);
  }
  if (words.length === 0) throw new UsageError(`missing command after --: ${ADD_EXAMPLE}`);
  return { name: before[0], expression: before[1], command: commandOf(words) };
}

function checkDirectory(cwd: string) {
  let isDir = false;
  try {
    isDir = Deno.statSync(cwd).isDirectory;
  } catch {
    // Missing or unreadable: said below.
  }
  if (!isDir) {
    throw new UsageError(
      `the directory ${cwd} does not exist or is not a directory; create it, or give --cwd another`,
    );
  }
}

async function add(this: Context, flags: AddFlags, ...args: string[]) {
  const { name, expression, command } = readAddArguments(args);
  checkScheduleName(name);
  const tz = resolveTimeZone(flags.tz);
  const cron = parseCron(expression, tz);
  await withStore(flags, async (store) => {
    const now = await store.now();
    const ctx = { config: await loadConfig(store), cwd: Deno.cwd(), now };
    const spec = specFromFlags({ ...flags, json: false }, command);
    const { id: _id, runAt: _runAt, ...job } = jobFromFlags(spec, ctx);
    checkDirectory(job.cwd);
    const nextRunAt = cron.nextAfter(now);
    const catchUp = flags.catchUp ?? "last";
    const added = await store.addSchedule(
      { name, cron: cron.expression, tz, catchUp, job, nextRunAt },
      now,
    );
    if (!added) {
      throw new UsageError(
        `schedule "${name}" exists already; choose another name, or remove it first ` +
          `(queuectl schedule remove ${name})`,
      );
    }
    if (flags.json) return outJson(scheduleJson((await store.getSchedule(name))!));
    out(
      `added schedule ${name}: ${cron.expression} (${tz}), next run ${iso(nextRunAt)} ` +
        `(${relativeTime(nextRunAt, now)})`,
    );
    if (!await supervisorRuns(store)) {
      out("no worker is running: start one to fire it (queuectl worker start)");
    }
  });
}

/** Whether any worker (hence its supervisor, which fires schedules) is registered as running. */
async function supervisorRuns(store: Store): Promise<boolean> {
  return (await store.listWorkers()).length > 0;
}

/** What became of a schedule's last tick: its job's state, or why there is none. */
function lastOutcome(s: Schedule): string | null {
  if (s.lastJobId === null) return null;
  return s.lastJobState ?? "removed";
}

/** A schedule as `--json` shows it: stable snake_case fields, ISO times; env names only. */
function scheduleJson(s: Schedule) {
  return {
    name: s.name,
    cron: s.cron,
    tz: s.tz,
    catch_up: s.catchUp,
    paused: s.paused,
    next_run_at: s.paused ? null : iso(s.nextRunAt),
    last_run_at: iso(s.lastRunAt),
    last_job_id: s.lastJobId,
    last_outcome: lastOutcome(s),
    command: s.job.command,
    max_retries: s.job.maxRetries,
    priority: s.job.priority,
    timeout_seconds: s.job.timeoutMs / 1000,
    cwd: s.job.cwd,
    env_keys: s.job.env ? Object.keys(s.job.env) : [],
    queue: s.job.queue ?? "default",
    unique_key: s.job.uniqueKey ?? null,
    created_at: iso(s.createdAt),
  };
}

function outcomeCell(s: Schedule): string {
  const o = lastOutcome(s);
  return o === null ? "-" : o === "removed" ? o : colorState(s.lastJobState!);
}

async function list(this: Context, flags: DbFlags & { json: boolean }) {
  await withStore(flags, async (store) => {
    const schedules = await store.listSchedules();
    if (flags.json) return outJson(schedules.map(scheduleJson));
    if (schedules.length === 0) {
      return out(`no schedules; add one with ${ADD_EXAMPLE}`);
    }
    const now = await store.now();
    out(table(
      ["NAME", "CRON", "TZ", "QUEUE", "NEXT RUN", "LAST RUN", "LAST JOB", "OUTCOME", "COMMAND"],
      schedules.map((s) => [
        s.name,
        s.cron,
        s.tz,
        s.job.queue ?? "default",
        s.paused ? "paused" : relativeTime(s.nextRunAt, now),
        relativeTime(s.lastRunAt, now),
        s.lastJobId ?? "-",
        outcomeCell(s),
        oneLine(s.job.command),
      ]),
      { fit: [8] },
    ));
  }, { create: false });
}

function notFound(name: string) {
  return new NotFoundError(`schedule "${name}" not found; see queuectl schedule list`);
}

async function show(this: Context, flags: DbFlags & { json: boolean }, name: string) {
  await withStore(flags, async (store) => {
    const s = await store.getSchedule(name);
    if (!s) throw notFound(name);
    const now = await store.now();
    const cron = parseCron(s.cron, s.tz);
    const upcoming: number[] = [];
    for (let t = s.paused ? null : s.nextRunAt; t !== null && upcoming.length < 5;) {
      upcoming.push(t);
      t = cron.nextAfter(t);
    }
    if (flags.json) return outJson({ ...scheduleJson(s), next_runs: upcoming.map(iso) });
    const rows: Array<[string, string]> = [
      ["name", s.name],
      ["cron", `${s.cron} (${s.tz})`],
      ["state", s.paused ? "paused (queuectl schedule resume to fire again)" : "active"],
      [
        "catch-up",
        s.catchUp === "last"
          ? "last (after a downtime, the last missed tick runs once)"
          : `none (a tick more than ${formatDuration(ON_TIME_MS)} late is skipped)`,
      ],
      ["command", s.job.command],
      ["retries", String(s.job.maxRetries)],
      ["priority", String(s.job.priority)],
      ["timeout", s.job.timeoutMs > 0 ? formatDuration(s.job.timeoutMs) : "none"],
      ["cwd", s.job.cwd],
      ["env", s.job.env ? Object.keys(s.job.env).join(", ") : "-"],
      ["queue", s.job.queue ?? "default"],
      [
        "unique",
        s.job.uniqueKey
          ? `${s.job.uniqueKey} (a tick is skipped while an earlier job with it waits or runs)`
          : "-",
      ],
      [
        "last run",
        s.lastRunAt === null
          ? "never"
          : `${iso(s.lastRunAt)} (${relativeTime(s.lastRunAt, now)}): job ${s.lastJobId}, ` +
            outcomeCell(s),
      ],
      ["next runs", upcoming.length ? upcoming.map((t) => iso(t)).join("\n           ") : "-"],
    ];
    out(rows.map(([k, v]) => `${(k + ":").padEnd(11)}${v}`).join("\n"));
  }, { create: false });
}

async function remove(this: Context, flags: DbFlags, name: string) {
  await withStore(flags, async (store) => {
    if (!await store.removeSchedule(name)) throw notFound(name);
    out(`removed schedule ${name} (jobs it enqueued stay)`);
  }, { create: false });
}

async function setPaused(flags: DbFlags, name: string, paused: boolean) {
  await withStore(flags, async (store) => {
    const s = await store.getSchedule(name);
    if (!s) throw notFound(name);
    const now = await store.now();
    // Ticks that passed while paused never run: the next run is the first tick from now on.
    const next = paused ? null : parseCron(s.cron, s.tz).nextAfter(now);
    const after = await store.setSchedulePaused(name, paused, next, now);
    if (!after) throw notFound(name);
    if (paused) {
      out(s.paused ? `schedule ${name} was paused already` : `paused schedule ${name}`);
    } else {
      const nextLine = `next run ${iso(after.nextRunAt)} (${relativeTime(after.nextRunAt, now)})`;
      out(
        s.paused
          ? `resumed schedule ${name}, ${nextLine}`
          : `schedule ${name} is active already; ${nextLine}`,
      );
    }
  }, { create: false });
}

const nameParameter = {
  kind: "tuple",
  parameters: [{ brief: "Schedule name", parse: String, placeholder: "name" }],
} as const;

export const scheduleRoutes = buildRouteMap({
  routes: {
    add: buildCommand({
      func: add,
      parameters: {
        flags: {
          ...dbFlag,
          tz: {
            kind: "parsed",
            parse: String,
            brief: "IANA time zone of the expression (default: this machine's)",
            optional: true,
            placeholder: "zone",
          },
          catchUp: {
            kind: "parsed",
            parse: parseCatchUp,
            brief: "After a downtime: run the last missed tick (last, default) or none",
            optional: true,
            placeholder: "last|none",
          },
          retries: {
            ...JOB_FLAGS.retries,
            brief: "Retries after each job's first attempt [config max-retries]",
          },
          priority: JOB_FLAGS.priority,
          timeout: {
            ...JOB_FLAGS.timeout,
            brief: "Kill a job after this long; 0 = none [config job-timeout]",
          },
          cwd: JOB_FLAGS.cwd,
          env: JOB_FLAGS.env,
          queue: {
            ...JOB_FLAGS.queue,
            brief: "Queue its jobs wait in (default: default)",
          },
          unique: {
            ...JOB_FLAGS.unique,
            brief: "Each job carries this key: skip a tick while the last job waits or runs",
          },
          json: { ...jsonFlag.json, brief: "Print the new schedule as JSON" },
        },
        positional: {
          kind: "array",
          parameter: {
            brief: "NAME, then the quoted cron expression, then -- and the command",
            parse: String,
            placeholder: "arg",
          },
        },
      },
      docs: {
        brief: "Add a recurring job",
        fullDescription: [
          "Adds a schedule: every tick of the cron expression enqueues one job running",
          "the command, with the given retries, priority, timeout, cwd and env. The",
          "supervisor of `worker start` fires it (at least one must run); each tick",
          "enqueues exactly one job, id NAME@TIME, however many supervisors and hosts run.",
          "",
          "Cron: 5 fields (minute hour day-of-month month day-of-week), or 6 with seconds",
          "first, or @yearly, @monthly, @weekly, @daily, @hourly. Quote it.",
          "",
          "After a downtime the last missed tick runs once (--catch-up last), or none is",
          "run (--catch-up none: a tick found more than a minute late is skipped).",
          "",
          "--queue puts its jobs in a named queue. With --unique KEY each job carries the",
          "unique key: a tick is skipped (no job) while an earlier tick's job with the key",
          "is still pending, failed or processing, so runs never overlap.",
          "",
          "Examples:",
          `  ${ADD_EXAMPLE}`,
          "  queuectl schedule add report '30 8 * * MON-FRI' --tz Europe/Paris -- make all",
          "  queuectl schedule add ping '*/5 * * * *' --catch-up none --timeout 30s \\",
          "    -- curl -fsS https://example.com/health",
          "  queuectl schedule add sweep @hourly --retries 0 --env DIR=/tmp -- ./sweep.sh",
          "  queuectl schedule add sync @hourly --queue io --unique sync -- ./sync.sh",
          "  queuectl schedule list",
        ].join("\n"),
      },
    }),
    list: buildCommand({
      func: list,
      parameters: { flags: { ...dbFlag, ...jsonFlag } },
      docs: {
        brief: "List schedules: next run, last run and its job's outcome",
        fullDescription: "Examples:\n  queuectl schedule list\n  queuectl schedule list --json",
      },
    }),
    show: buildCommand({
      func: show,
      parameters: { flags: { ...dbFlag, ...jsonFlag }, positional: nameParameter },
      docs: {
        brief: "Show a schedule and its next five runs",
        fullDescription: "Example:\n  queuectl schedule show nightly",
      },
    }),
    remove: buildCommand({
      func: remove,
      parameters: { flags: { ...dbFlag }, positional: nameParameter },
      docs: {
        brief: "Remove a schedule (the jobs it enqueued stay)",
        fullDescription: "Example:\n  queuectl schedule remove nightly",
      },
    }),
    pause: buildCommand({
      func(this: Context, flags: DbFlags, name: string) {
        return setPaused(flags, name, true);
      },
      parameters: { flags: { ...dbFlag }, positional: nameParameter },
      docs: {
        brief: "Stop firing a schedule until it is resumed",
        fullDescription: "Example:\n  queuectl schedule pause nightly",
      },
    }),
    resume: buildCommand({
      func(this: Context, flags: DbFlags, name: string) {
        return setPaused(flags, name, false);
      },
      parameters: { flags: { ...dbFlag }, positional: nameParameter },
      docs: {
        brief: "Fire a paused schedule again, from its next tick on",
        fullDescription: [
          "Ticks that passed while it was paused are not run.",
          "",
          "Example:",
          "  queuectl schedule resume nightly",
        ].join("\n"),
      },
    }),
  },
  docs: {
    brief: "Recurring jobs: enqueue a command on a cron schedule",
    fullDescription: [
      "Each tick of a schedule enqueues one job; the supervisor of `worker start` fires",
      "them, so at least one must run.",
      "",
      "Examples:",
      `  ${ADD_EXAMPLE}`,
      "  queuectl schedule list",
      "  queuectl schedule pause nightly",
    ].join("\n"),
  },
});
