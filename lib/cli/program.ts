/** Assembles the command tree from the command modules. No logic here. */
import { buildApplication, buildRouteMap, type CommandContext } from "@stricli/core";
import { configRoutes, initCommand } from "./config.ts";
import { dashboardCommand } from "./dashboard.ts";
import { dlqRoutes } from "./dlq.ts";
import { enqueueCommand } from "./enqueue.ts";
import { listCommand } from "./list.ts";
import { logsCommand } from "./logs.ts";
import { metricsCommand } from "./metrics.ts";
import { migrateCommand } from "./migrate.ts";
import { purgeCommand } from "./purge.ts";
import { cancelCommand, removeCommand, retryCommand } from "./retry.ts";
import { showCommand } from "./show.ts";
import { statusCommand } from "./status.ts";
import { workerRoutes } from "./worker.ts";
import type { ApplicationText } from "@stricli/core";
// The version has one home, deno.json; a JSON import is bundled by `deno compile` too.
import denoJson from "../../deno.json" with { type: "json" };

export const VERSION: string = denoJson.version;

export function buildProgram(text: ApplicationText) {
  const root = buildRouteMap({
    routes: {
      enqueue: enqueueCommand,
      worker: workerRoutes,
      status: statusCommand,
      list: listCommand,
      show: showCommand,
      logs: logsCommand,
      dlq: dlqRoutes,
      retry: retryCommand,
      cancel: cancelCommand,
      remove: removeCommand,
      purge: purgeCommand,
      migrate: migrateCommand,
      metrics: metricsCommand,
      dashboard: dashboardCommand,
      config: configRoutes,
      init: initCommand,
    },
    docs: {
      brief: "queuectl: a durable background job queue for shell commands",
      fullDescription: [
        "Enqueue shell commands; workers run them with retries, exponential backoff and",
        "a dead letter queue. Data lives in one SQLite file: --db, $QUEUECTL_DB, or",
        "~/.local/share/queuectl/queue.db.",
        "",
        "Quick start:",
        `  queuectl enqueue '{"id":"job1","command":"sleep 2"}'`,
        "  queuectl worker start --count 2     # Ctrl+C to stop",
        "  queuectl status",
        "",
        "Global flags, before or after the command: --db PATH, and --no-color (as do",
        "NO_COLOR=1 and TERM=dumb). `queuectl help COMMAND` is `queuectl COMMAND --help`.",
        "",
        "Exit codes: 0 done, 1 could not be done (unknown job, wrong state, store",
        "unusable), 2 usage mistake (unknown command or flag, bad value). Errors are one",
        "line on stderr.",
      ].join("\n"),
    },
  });
  return buildApplication<CommandContext>(root, {
    name: "queuectl",
    versionInfo: { currentVersion: VERSION },
    scanner: { caseStyle: "allow-kebab-for-camel", allowArgumentEscapeSequence: true },
    documentation: { caseStyle: "convert-camel-to-kebab" },
    localization: { loadText: () => text },
    // A reader that went away (`queuectl list | head`) got what it wanted: exit 0, quietly.
    determineExitCode: (e) =>
      e instanceof Deno.errors.BrokenPipe
        ? 0
        : e && typeof e === "object" && "exitCode" in e
        ? Number(e.exitCode)
        : 1,
  });
}
