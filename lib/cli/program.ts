/**
 * Assembles the command tree from the command modules. No logic here.
 *
 * Each command group's module is loaded only when the tree needs it: an input that names one
 * command (`queuectl enqueue …`) loads that command's module alone, so one call does not pay for
 * the start-up of the others (the worker, the store drivers they use, the table formatting).
 * Anything else (no command, an unknown one, root help) loads them all.
 */
import {
  buildApplication,
  buildRouteMap,
  type Command,
  type CommandContext,
  type RouteMap,
} from "@stricli/core";
import type { ApplicationText } from "@stricli/core";
// The version has one home, deno.json; a JSON import is bundled by `deno compile` too.
import denoJson from "../../deno.json" with { type: "json" };

export const VERSION: string = denoJson.version;

type Target = Command<CommandContext> | RouteMap<CommandContext>;

/** The root's routes, in the order help lists them, each with the loader of its module. */
const ROUTES: Record<string, () => Promise<Target>> = {
  enqueue: async () => (await import("./enqueue.ts")).enqueueCommand,
  worker: async () => (await import("./worker.ts")).workerRoutes,
  schedule: async () => (await import("./schedule.ts")).scheduleRoutes,
  queue: async () => (await import("./queue.ts")).queueRoutes,
  status: async () => (await import("./status.ts")).statusCommand,
  list: async () => (await import("./list.ts")).listCommand,
  show: async () => (await import("./show.ts")).showCommand,
  logs: async () => (await import("./logs.ts")).logsCommand,
  dlq: async () => (await import("./dlq.ts")).dlqRoutes,
  retry: async () => (await import("./retry.ts")).retryCommand,
  cancel: async () => (await import("./retry.ts")).cancelCommand,
  remove: async () => (await import("./retry.ts")).removeCommand,
  purge: async () => (await import("./purge.ts")).purgeCommand,
  migrate: async () => (await import("./migrate.ts")).migrateCommand,
  metrics: async () => (await import("./metrics.ts")).metricsCommand,
  dashboard: async () => (await import("./dashboard.ts")).dashboardCommand,
  config: async () => (await import("./config.ts")).configRoutes,
  init: async () => (await import("./config.ts")).initCommand,
  completions: async () => (await import("./completions.ts")).completionsCommand,
};

/**
 * The one route `args` (the process's arguments) name, or `null` when they name none for sure.
 * Reads them as main.ts's `globalInput` does: `--no-color` before `--` removed, `--db PATH`
 * before the command skipped, `help COMMAND` read as COMMAND.
 */
export function namedRoute(args: readonly string[]): string | null {
  const dashes = args.indexOf("--");
  const rest = args.filter((a, i) => a !== "--no-color" || (dashes !== -1 && i > dashes));
  let i = 0;
  for (;;) {
    if (rest[i] === "--db" && i + 1 < rest.length) i += 2;
    else if (rest[i]?.startsWith("--db=")) i++;
    else break;
  }
  if (rest[i] === "help") i++;
  const word = rest[i];
  return word !== undefined && Object.hasOwn(ROUTES, word) ? word : null;
}

/**
 * The application for `args`: with the named command's module only when the input names one (the
 * tree then routes that input exactly as the whole tree would), else with every command.
 * `exitCodeOf` maps an error a command threw to the exit code (main.ts owns the codes).
 */
export async function buildProgram(
  text: ApplicationText,
  args: readonly string[],
  exitCodeOf: (e: unknown) => number,
) {
  const only = namedRoute(args);
  const names = only === null ? Object.keys(ROUTES) : [only];
  const targets = await Promise.all(names.map((n) => ROUTES[n]()));
  const root = buildRouteMap({
    routes: Object.fromEntries(names.map((n, i) => [n, targets[i]])),
    docs: {
      brief: "queuectl: a durable background job queue for shell commands",
      fullDescription: [
        "Enqueue shell commands; workers run them with retries, exponential backoff and",
        "a dead letter queue. Data lives in one SQLite file (--db, $QUEUECTL_DB, or",
        "~/.local/share/queuectl/queue.db), or in one PostgreSQL database that workers",
        "on many hosts share (--db postgres://USER@HOST:5432/DB).",
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
    determineExitCode: exitCodeOf,
  });
}
