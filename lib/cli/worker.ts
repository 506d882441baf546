/**
 * `queuectl worker start|stop|list`. `start` runs the supervisor in the foreground; `stop` asks
 * every supervisor on this host to stop gracefully and waits (bounded) for its workers to exit.
 * The supervisor and logging code are imported only when `start` runs.
 */
import { buildCommand, buildRouteMap } from "@stricli/core";
import { UsageError, UserError } from "../errors.ts";
import { loadConfig } from "../settings.ts";
import { resolveDbPath } from "../store/open.ts";
import {
  type Context,
  dbFlag,
  type DbFlags,
  durationParser,
  intParser,
  jsonFlag,
  withStore,
} from "./context.ts";
import { out, outJson, relativeTime, table, workerJson } from "./format.ts";

interface StartFlags extends DbFlags {
  count: number;
  quiet: boolean;
  verbose: boolean;
  logLevel?: string;
}

async function start(this: Context, flags: StartFlags) {
  const { resolveLogLevel, setupLogging } = await import("../log.ts");
  const { runSupervisor } = await import("../../workers/supervisor.ts");
  let level = resolveLogLevel(flags.logLevel, Deno.env.get("QUEUECTL_LOG"));
  if (flags.quiet && flags.verbose) throw new UsageError("give either --quiet or --verbose");
  if (flags.quiet) level = "warning";
  if (flags.verbose) level = "debug";
  const db = resolveDbPath(flags.db);
  const log = await setupLogging(level);
  const code = await runSupervisor({ db, count: flags.count, logLevel: level, log });
  if (code !== 0) throw new UserError("supervisor stopped with errors");
}

interface StopFlags extends DbFlags {
  timeout: number;
}

/**
 * Signals each supervisor on this host whose workers hold a live lease, then waits until every
 * one of those workers has unregistered or lost its lease. Liveness comes from the store (Deno
 * denies /proc), so a stale pid is never signalled: its workers' heartbeats are old.
 */
async function stop(this: Context, flags: StopFlags) {
  await withStore(flags, async (store) => {
    const config = await loadConfig(store);
    const host = Deno.hostname();
    const live = async () => {
      const now = Date.now();
      return (await store.listWorkers()).filter((w) =>
        w.host === host && now - w.heartbeatAt < config.leaseTimeoutMs
      );
    };
    const workers = await live();
    if (workers.length === 0) {
      out("no workers are running on this host");
      return;
    }
    for (const pid of new Set(workers.map((w) => w.supervisorPid))) {
      try {
        Deno.kill(pid, "SIGTERM");
      } catch {
        // Exited between the check and the signal: its workers unregister or go stale.
      }
    }
    const n = workers.length;
    const plural = n === 1 ? "" : "s";
    out(
      `asked ${n} worker${plural} to stop (running jobs finish first); ` +
        `waiting up to ${flags.timeout / 1000}s…`,
    );
    const ids = new Set(workers.map((w) => w.id));
    const deadline = Date.now() + flags.timeout;
    let still = workers;
    while (still.length > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      still = (await live()).filter((w) => ids.has(w.id));
    }
    if (still.length > 0) {
      throw new UserError(
        `${n - still.length} of ${n} workers stopped; ${still.length} still finishing their ` +
          `jobs after ${
            flags.timeout / 1000
          }s. Wait, or run worker stop again with a longer --timeout`,
      );
    }
    out(`stopped ${n} worker${plural}`);
  });
}

interface ListFlags extends DbFlags {
  all: boolean;
  json: boolean;
}

async function list(this: Context, flags: ListFlags) {
  await withStore(flags, async (store) => {
    const config = await loadConfig(store);
    const now = Date.now();
    const workers = await store.listWorkers({ all: flags.all });
    const live = (w: { heartbeatAt: number; stoppedAt: number | null }) =>
      w.stoppedAt === null && now - w.heartbeatAt < config.leaseTimeoutMs;
    if (flags.json) return outJson(workers.map((w) => workerJson(w, live(w))));
    if (workers.length === 0) return out("no workers");
    out(table(
      ["PID", "HOST", "SUPERVISOR", "STATUS", "STARTED", "HEARTBEAT", "JOB"],
      workers.map((w) => [
        String(w.pid),
        w.host,
        String(w.supervisorPid),
        live(w) ? "running" : w.stoppedAt ? "stopped" : "lost",
        relativeTime(w.startedAt, now),
        relativeTime(w.heartbeatAt, now),
        w.currentJob ?? "-",
      ]),
    ));
  }, { create: false });
}

export const workerRoutes = buildRouteMap({
  routes: {
    start: buildCommand({
      func: start,
      parameters: {
        flags: {
          ...dbFlag,
          count: {
            kind: "parsed",
            parse: intParser("count", 1, 256),
            brief: "Number of worker processes",
            default: "1",
            placeholder: "n",
          },
          quiet: { kind: "boolean", brief: "Log warnings and errors only", default: false },
          verbose: { kind: "boolean", brief: "Log debug detail too", default: false },
          logLevel: {
            kind: "parsed",
            parse: String,
            brief: "debug, info, warn or error [env QUEUECTL_LOG]",
            optional: true,
            placeholder: "level",
          },
        },
        aliases: { c: "count", q: "quiet", v: "verbose" },
      },
      docs: {
        brief: "Run workers in the foreground until stopped",
        fullDescription: [
          "Starts N worker processes that claim and run jobs, one job at a time each.",
          "Ctrl+C or SIGTERM (or `queuectl worker stop`) lets running jobs finish, then exits 0;",
          "a second Ctrl+C stops at once and puts the interrupted jobs back in the queue.",
          "",
          "Example:",
          "  queuectl worker start --count 4",
        ].join("\n"),
      },
    }),
    stop: buildCommand({
      func: stop,
      parameters: {
        flags: {
          ...dbFlag,
          timeout: {
            kind: "parsed",
            parse: durationParser("timeout"),
            brief: "How long to wait for running jobs to finish",
            default: "60s",
          },
        },
      },
      docs: {
        brief: "Stop the workers on this host gracefully",
        fullDescription: "Each worker finishes its current job, then exits.\n\n" +
          "Example:\n  queuectl worker stop --timeout 2m",
      },
    }),
    list: buildCommand({
      func: list,
      parameters: {
        flags: {
          ...dbFlag,
          all: { kind: "boolean", brief: "Include stopped workers", default: false },
          ...jsonFlag,
        },
      },
      docs: {
        brief: "List registered workers",
        fullDescription: "Example:\n  queuectl worker list",
      },
    }),
  },
  docs: { brief: "Start, stop and list workers" },
});
