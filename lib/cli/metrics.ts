/**
 * `queuectl metrics`: prints the store's metrics once in the Prometheus text format, for a
 * node_exporter textfile collector run from cron. The dashboard serves the same at `/metrics`.
 */
import { buildCommand } from "@stricli/core";
import { type Context, dbFlag, type DbFlags, withStore } from "./context.ts";
import { writeAll } from "../write_all.ts";

async function metrics(this: Context, flags: DbFlags) {
  const { renderMetrics } = await import("../dashboard/prometheus.ts");
  await withStore(flags, async (store) => writeAll(Deno.stdout, await renderMetrics(store)), {
    create: false,
  });
}

export const metricsCommand = buildCommand({
  func: metrics,
  parameters: { flags: { ...dbFlag } },
  docs: {
    brief: "Print the queue's metrics in the Prometheus text format",
    fullDescription:
      "Job counts per state, jobs enqueued, attempts per outcome, attempt duration and\n" +
      "queue wait histograms, live workers per host. Totals count purged jobs too.\n\n" +
      "Example (a textfile collector, written atomically):\n" +
      "  queuectl metrics > /var/lib/node_exporter/queuectl.prom.tmp &&\n" +
      "    mv /var/lib/node_exporter/queuectl.prom.tmp /var/lib/node_exporter/queuectl.prom",
  },
});
