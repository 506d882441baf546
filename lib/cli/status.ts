/** `queuectl status`: job counts per state, scheduled jobs, active workers and schedules. */
import { buildCommand } from "@stricli/core";
import { JOB_STATES } from "../job.ts";
import { loadSetting } from "../settings.ts";
import { isWorkerLive } from "../../workers/liveness.ts";
import { type Context, dbFlag, type DbFlags, jsonFlag, withStore } from "./context.ts";
import { colorState, out, outJson, table } from "./format.ts";
import { queueJson, queueTable } from "./queue.ts";

async function status(this: Context, flags: DbFlags & { json: boolean }) {
  await withStore(flags, async (store) => {
    const now = await store.now();
    // Only the lease decides which workers are active: another bad setting must not hide the
    // counts, which is what a user checks when something is wrong.
    const leaseTimeoutMs = await loadSetting(store, "lease-timeout");
    const counts = await store.counts(now);
    const queues = await store.listQueues();
    const workers = (await store.listWorkers()).filter((w) => isWorkerLive(w, leaseTimeoutMs, now));
    const total = JOB_STATES.reduce((n, s) => n + counts[s], 0);
    const schedules = await store.listSchedules();
    const pausedSchedules = schedules.filter((s) => s.paused).length;
    if (flags.json) {
      return outJson({
        ...counts,
        total,
        active_workers: workers.length,
        busy_workers: workers.filter((w) => w.currentJob).length,
        queues: queues.map(queueJson),
        schedules: schedules.length,
        paused_schedules: pausedSchedules,
        db: store.location,
      });
    }
    out(table(
      ["STATE", "JOBS"],
      [
        ...JOB_STATES.map((s) => [colorState(s), String(counts[s])]),
        ["scheduled", String(counts.scheduled)],
        ["waiting", String(counts.waiting)],
        ["total", String(total)],
      ],
    ));
    // One queue with no rule (most users): the table above says it all.
    if (queues.length > 1 || queues[0].paused || queues[0].concurrency > 0) {
      out("");
      out(queueTable(queues));
    }
    const busy = workers.filter((w) => w.currentJob).length;
    out(`\nactive workers: ${workers.length} (${busy} busy)`);
    if (schedules.length > 0) {
      out(
        `schedules: ${schedules.length}` +
          (pausedSchedules > 0 ? ` (${pausedSchedules} paused)` : "") +
          " (queuectl schedule list)",
      );
    }
    out(`database: ${store.location}`);
  }, { create: false });
}

export const statusCommand = buildCommand({
  func: status,
  parameters: { flags: { ...dbFlag, ...jsonFlag } },
  docs: {
    brief: "Show job counts per state and active workers",
    fullDescription: "`scheduled` counts pending and failed jobs waiting for their run time, " +
      "`waiting` pending jobs waiting for jobs they depend on (enqueue --after).\n" +
      "With more than one queue (or a paused or limited one), a table per queue follows.\n" +
      "Once there are recurring jobs, one line counts the schedules (and paused ones).\n\n" +
      "Example:\n  queuectl status --json",
  },
});
