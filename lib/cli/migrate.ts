/**
 * `queuectl migrate --to URL|PATH`: copies this queue (jobs with their attempts, retry marks and
 * output, the stored settings, the schedules and the queues' rules) into an empty store of either
 * kind, SQLite ↔ PostgreSQL, then checks that the counts per state match. The source is left as
 * it was.
 */
import { buildCommand } from "@stricli/core";
import { JOB_STATES } from "../job.ts";
import { UsageError, UserError } from "../errors.ts";
import { openStore, resolveDbPath } from "../store/open.ts";
import type { QueueInfo } from "../store/store.ts";
import { type Context, dbFlag, type DbFlags, withStore } from "./context.ts";
import { out } from "./format.ts";

const BATCH = 500;

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;

/** Whether a queue is paused or limited (a queue without rules is made by its jobs alone). */
const hasRules = (q: QueueInfo) => q.paused || q.concurrency > 0;

async function migrate(this: Context, flags: DbFlags & { to: string }) {
  const target = resolveDbPath(flags.to);
  if (target === resolveDbPath(flags.db)) {
    throw new UsageError("--to names this queue itself; give another database");
  }
  await withStore(flags, async (source) => {
    const running = await source.countJobs("processing");
    if (running > 0) {
      throw new UserError(
        `${running} job${running === 1 ? " is" : "s are"} running; stop the workers first ` +
          `(queuectl worker stop), then migrate`,
      );
    }
    const dest = await openStore(target);
    try {
      const settings = Object.entries(await source.getConfig());
      const schedules = await source.listSchedules();
      const rules = (await source.listQueues()).filter(hasRules);
      if (
        (await dest.countJobs()) > 0 || Object.keys(await dest.getConfig()).length > 0 ||
        (await dest.listSchedules()).length > 0 || (await dest.listQueues()).some(hasRules)
      ) {
        throw new UserError(
          `${dest.location} already holds a queue; migrate only into an empty one ` +
            `(nothing was copied)`,
        );
      }
      for (const [key, value] of settings) await dest.setConfig(key, value);
      let after = 0;
      let jobs = 0;
      let attempts = 0;
      for (;;) {
        const batch = await source.exportJobs(after, BATCH);
        if (batch.length === 0) break;
        await dest.importJobs(batch);
        jobs += batch.length;
        attempts += batch.reduce((n, r) => n + r.attempts.length, 0);
        after = batch[batch.length - 1].job.seq;
      }
      await dest.importSchedules(schedules);
      for (const q of rules) {
        await dest.setQueue(q.name, { paused: q.paused, concurrency: q.concurrency });
      }
      const now = await source.now();
      const [a, b] = [await source.counts(now), await dest.counts(now)];
      const off = JOB_STATES.filter((s) => a[s] !== b[s]);
      if (off.length > 0) {
        throw new UserError(
          `copied ${jobs} jobs, but the counts differ (${
            off.map((s) => `${s}: ${a[s]} here, ${b[s]} there`).join("; ")
          }); check ${dest.location} before using it`,
        );
      }
      const copied = [
        `${plural(jobs, "job")} (${plural(attempts, "attempt")})`,
        plural(settings.length, "setting"),
        ...(schedules.length > 0 ? [plural(schedules.length, "schedule")] : []),
        ...(rules.length > 0 ? [`the rules of ${plural(rules.length, "queue")}`] : []),
      ];
      out(
        `migrated ${copied.slice(0, -1).join(", ")} and ${copied.at(-1)} to ${dest.location}; ` +
          `the counts per state match`,
      );
    } finally {
      await dest.close();
    }
  }, { create: false });
}

export const migrateCommand = buildCommand({
  func: migrate,
  parameters: {
    flags: {
      ...dbFlag,
      to: {
        kind: "parsed",
        parse: String,
        brief: "The empty database to copy into: a file path or postgres://…",
        placeholder: "db",
      },
    },
  },
  docs: {
    brief: "Copy this queue into another database (SQLite or PostgreSQL)",
    fullDescription: [
      "Copies every job with its attempts, retry marks and output, the stored settings, the",
      "schedules and the queues' rules (pause, concurrency) into an empty database, then checks",
      "the counts per state. Stop the workers first; this queue is left as it was.",
      "",
      "Examples:",
      "  queuectl migrate --to postgres://queuectl@db:5432/jobs",
      "  queuectl --db postgres://queuectl@db:5432/jobs migrate --to ./queue.db",
    ].join("\n"),
  },
});
