/**
 * `queuectl worker start|stop|list`. `start` runs the supervisor in the foreground, or detached
 * with `--detach`; `stop` runs the stop protocol of `workers/stop.ts` (signal, then poll, bounded).
 * The supervisor and logging code are imported only when `start` runs.
 */
import { buildCommand, buildRouteMap } from "@stricli/core";
import { QueuectlError, UsageError, UserError } from "../errors.ts";
import { hostName } from "../host.ts";
import { loadConfig, loadSetting } from "../settings.ts";
import { resolveDbPath } from "../store/open.ts";
import { checkQueueName } from "../spec.ts";
import { isWorkerLive, workerStatus } from "../../workers/liveness.ts";
import {
  type Context,
  dbFlag,
  type DbFlags,
  durationParser,
  intParser,
  jsonFlag,
  withStore,
} from "./context.ts";
import { iso, out, outJson, relativeTime, table, workerJson } from "./format.ts";

/** A forced stop (second Ctrl+C, `worker stop --now`): running jobs were interrupted. */
class ForcedStopError extends QueuectlError {
  override get exitCode(): number {
    return 130;
  }
}

interface StartFlags extends DbFlags {
  count: number;
  concurrency: number;
  queue?: string[];
  quiet: boolean;
  verbose: boolean;
  logLevel?: string;
  detach: boolean;
  foreground: boolean;
  drain: boolean;
}

async function start(this: Context, flags: StartFlags) {
  const { resolveLogLevel, setupLogging } = await import("../log.ts");
  const { FORCED_EXIT_CODE, runSupervisor, startDetached } = await import(
    "../../workers/supervisor.ts"
  );
  const envLevel = Deno.env.get("QUEUECTL_LOG");
  let level = resolveLogLevel(flags.logLevel, envLevel);
  if (flags.quiet && flags.verbose) throw new UsageError("give either --quiet or --verbose");
  if (flags.quiet) level = "warning";
  if (flags.verbose) level = "debug";
  if (flags.detach && flags.foreground) {
    throw new UsageError("give either --detach or --foreground");
  }
  if (flags.drain && flags.detach) {
    throw new UsageError("--drain runs in this terminal until the queue is drained; drop --detach");
  }
  // On a terminal the drain's progress line stands for the per-job lines, unless asked for.
  const tty = Deno.stderr.isTerminal();
  if (flags.drain && tty && flags.logLevel === undefined && !envLevel && !flags.verbose) {
    level = "warning";
  }
  const db = resolveDbPath(flags.db);
  if (flags.detach) {
    // Refuse here, in the user's terminal, what the background supervisor would refuse.
    await withStore(flags, async (store) => {
      await store.assertWritable();
      await loadConfig(store);
    });
    const d = await startDetached({
      db,
      count: flags.count,
      concurrency: flags.concurrency,
      queues: flags.queue,
      logLevel: level,
    });
    const plural = flags.count === 1 ? "" : "s";
    const each = flags.concurrency > 1 ? `, ${flags.concurrency} jobs at once each` : "";
    const from = flags.queue
      ? `, for queue${flags.queue.length > 1 ? "s" : ""} ${flags.queue}`
      : "";
    out(
      `started ${flags.count} worker${plural}${each}${from} in the background; ` +
        `supervisor pid ${d.pid}`,
    );
    out(`log: ${d.logFile}`);
    out("stop with: queuectl worker stop (--now interrupts running jobs)");
    return;
  }
  const log = await setupLogging(level);
  const watch = flags.drain
    ? new (await import("../../workers/drain.ts")).DrainWatch(tty, flags.queue)
    : undefined;
  const code = await runSupervisor({
    db,
    count: flags.count,
    concurrency: flags.concurrency,
    queues: flags.queue,
    logLevel: level,
    log,
    drain: watch,
  });
  const drainError = watch ? await drainOutcome(watch) : undefined;
  if (code === FORCED_EXIT_CODE) {
    throw new ForcedStopError(
      "stopped at once: running jobs were interrupted and went back to the queue",
    );
  }
  if (code !== 0) throw new UserError("supervisor stopped with errors");
  if (drainError) throw drainError;
}

/**
 * Prints the drain's summary (stdout); returns the error to exit 1 with when a job died during it
 * or a job is left failed, waiting for a retry, so that a pipeline step fails with it.
 */
async function drainOutcome(
  watch: import("../../workers/drain.ts").DrainWatch,
): Promise<UserError | undefined> {
  const { summaryLine } = await import("../../workers/drain.ts");
  const s = watch.summary();
  out(summaryLine(s));
  if (s.dead > 0 || s.failed > 0) {
    const what = [
      s.dead > 0 ? `${s.dead} job${s.dead === 1 ? "" : "s"} died (see queuectl dlq list)` : "",
      s.failed > 0
        ? `${s.failed} job${s.failed === 1 ? " is" : "s are"} failed, waiting for a retry ` +
          `(see queuectl list --state failed)`
        : "",
    ].filter((x) => x !== "");
    return new UserError(`drain finished, but ${what.join(" and ")}`);
  }
}

/** Parses `--queue a,b` into distinct, valid queue names. */
function parseQueueList(text: string): string[] {
  const names = text.split(",").map((s) => s.trim()).filter((s) => s !== "");
  if (names.length === 0) {
    throw new UsageError("--queue needs a queue name, or several separated by commas: a,b");
  }
  return [...new Set(names.map((n) => checkQueueName(n, "--queue")))];
}

interface StopFlags extends DbFlags {
  timeout: number;
  now: boolean;
  host?: string;
  allHosts: boolean;
}

/**
 * `worker stop --host H | --all-hosts`: asks through the store, which every supervisor reads
 * every second, whatever host it runs on; then waits (bounded) until the workers asked have
 * stopped or lost their lease.
 */
async function stopThroughStore(flags: StopFlags) {
  if (flags.host !== undefined && flags.allHosts) {
    throw new UsageError("give either --host or --all-hosts");
  }
  if (flags.host !== undefined && flags.host.trim() === "") {
    throw new UsageError("--host needs a host name, as worker list shows it");
  }
  const { requestStopThroughStore, waitWorkersGone } = await import("../../workers/stop.ts");
  await withStore(flags, async (store) => {
    const lease = await loadSetting(store, "lease-timeout");
    const target = flags.allHosts ? {} : { host: flags.host };
    const where = flags.allHosts ? "on any host" : `on ${flags.host}`;
    const asked = await requestStopThroughStore(store, target, flags.now, lease);
    if (asked.length === 0) {
      out(`no workers are running ${where}`);
      return;
    }
    const n = asked.length;
    const secs = `${flags.timeout / 1000}s`;
    out(
      `asked ${n} worker${n === 1 ? "" : "s"} ${where} to stop` +
        (flags.now
          ? " now (running jobs are interrupted and go back to the queue)"
          : " (running jobs finish first)") +
        `; their supervisors look within a second; waiting up to ${secs}…`,
    );
    const left = await waitWorkersGone(store, asked, lease, Date.now() + flags.timeout);
    if (left.length > 0) {
      throw new UserError(
        `${n - left.length} of ${n} workers stopped; ${left.length} still running after ${secs}` +
          (flags.now ? "; see queuectl worker list" : "; they stop when their jobs are done. " +
            "Wait, or add --now to interrupt the jobs (they go back to the queue)"),
      );
    }
    out(`stopped ${n} worker${n === 1 ? "" : "s"} ${where}`);
  });
}

/**
 * Signals the supervisors of this database on this host (graceful, or forced with `--now`), and
 * the workers left without one, then waits until they have all stopped or `--timeout` passes.
 * Asking again never forces a graceful stop: only `--now` does.
 */
async function stop(this: Context, flags: StopFlags) {
  if (flags.host !== undefined || flags.allHosts) return await stopThroughStore(flags);
  const { signalStop, waitStopped } = await import("../../workers/stop.ts");
  await withStore(flags, async (store, db) => {
    const req = {
      store,
      db,
      host: hostName(),
      // Only the lease is used: another bad setting must not keep workers from being stopped.
      leaseTimeoutMs: await loadSetting(store, "lease-timeout"),
      force: flags.now,
    };
    const t = await signalStop(req);
    if (t.stalePidFiles.length > 0) {
      const n = t.stalePidFiles.length;
      out(`removed ${n} stale pid file${n === 1 ? "" : "s"} of a supervisor that is gone`);
    }
    if (t.workers.length === 0 && t.supervisors.length === 0) {
      out("no workers are running on this host");
      return;
    }
    const n = t.workers.length;
    const plural = n === 1 ? "" : "s";
    const secs = `${flags.timeout / 1000}s`;
    const what = n > 0 ? `${n} worker${plural}` : `supervisor ${t.supervisors.join(", ")}`;
    out(
      flags.now
        ? `asked ${what} to stop now (running jobs are interrupted and go back to the queue); ` +
          `waiting up to ${secs}…`
        : `asked ${what} to stop (running jobs finish first); waiting up to ${secs}…`,
    );
    if (t.orphans.length > 0) {
      const k = t.orphans.length;
      out(
        k === 1
          ? "1 of them had lost its supervisor and was signalled directly"
          : `${k} of them had lost their supervisor and were signalled directly`,
      );
    }
    const left = await waitStopped(req, t, Date.now() + flags.timeout);
    const k = left.workers.length;
    if (k > 0 && flags.now) {
      throw new UserError(
        `${k} of ${n} workers still running ${secs} after a forced stop; ` +
          `see queuectl worker list`,
      );
    }
    if (k > 0) {
      const busy = left.workers.reduce((n, w) => n + w.runningJobs, 0);
      throw new UserError(
        `${n - k} of ${n} workers stopped; ${k} still running after ${secs}` +
          (busy > 0 ? `, finishing ${busy} job${busy === 1 ? "" : "s"}` : "") +
          `; they stop when done. Wait, or run queuectl worker stop --now to interrupt ` +
          `the jobs (they go back to the queue)`,
      );
    }
    if (left.supervisors.length > 0) {
      throw new UserError(
        `supervisor ${left.supervisors.join(", ")} still running after ${secs}; ` +
          `run queuectl worker stop --now`,
      );
    }
    out(n > 0 ? `stopped ${n} worker${plural}` : `stopped ${what}`);
  });
}

interface ListFlags extends DbFlags {
  all: boolean;
  json: boolean;
}

async function list(this: Context, flags: ListFlags) {
  await withStore(flags, async (store) => {
    const lease = await loadSetting(store, "lease-timeout");
    const now = await store.now();
    const workers = await store.listWorkers({ all: flags.all });
    if (flags.json) {
      return outJson(workers.map((w) => ({
        ...workerJson(w, isWorkerLive(w, lease, now)),
        status: workerStatus(w, lease, now),
        stopping_at: iso(w.stoppingAt),
      })));
    }
    if (workers.length === 0) return out("no workers");
    out(table(
      ["PID", "HOST", "SUPERVISOR", "STATUS", "STARTED", "HEARTBEAT", "JOB"],
      workers.map((w) => [
        String(w.pid),
        w.host,
        String(w.supervisorPid),
        workerStatus(w, lease, now),
        relativeTime(w.startedAt, now),
        relativeTime(w.heartbeatAt, now),
        w.currentJob ? w.currentJob + (w.runningJobs > 1 ? ` +${w.runningJobs - 1}` : "") : "-",
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
          concurrency: {
            kind: "parsed",
            parse: intParser("concurrency", 1, 256),
            brief: "Jobs each worker process runs at once",
            default: "1",
            placeholder: "n",
          },
          queue: {
            kind: "parsed",
            parse: parseQueueList,
            brief: "Claim only from these queues, comma-separated (default: every queue)",
            optional: true,
            placeholder: "names",
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
          detach: {
            kind: "boolean",
            brief: "Run in the background; print the supervisor's pid and log file",
            default: false,
          },
          foreground: {
            kind: "boolean",
            brief: "Run in this terminal until stopped (the default)",
            default: false,
          },
          drain: {
            kind: "boolean",
            brief: "Exit once no job is ready, due within a second or running (for CI)",
            default: false,
          },
        },
        aliases: { c: "count", q: "quiet", v: "verbose" },
      },
      docs: {
        brief: "Run workers until stopped",
        fullDescription: [
          "Starts N worker processes that claim and run jobs, one at a time each, or up to",
          "--concurrency jobs at once each (claimed and recorded together: fewer commits).",
          "Ctrl+C, SIGTERM or `queuectl worker stop` lets running jobs finish, then exits 0;",
          "asking again changes nothing. A second Ctrl+C (or `queuectl worker stop --now`)",
          "interrupts the running jobs, puts them back in the queue and exits 130.",
          "",
          "With --detach it returns once the workers are up; stop them with worker stop.",
          "",
          "With --drain the workers stop, as on Ctrl+C, once no job is ready, due within a",
          "second or running; a job due later stays in the queue. Progress goes to stderr (a",
          "line redrawn on a terminal, a line every 5s otherwise), a summary to stdout. Exits",
          "0, or 1 when a job died during the drain or one is left failed, waiting for a retry.",
          "",
          "Examples:",
          "  queuectl worker start --count 4",
          "  queuectl worker start --count 2 --concurrency 8",
          "  queuectl worker start --queue emails,reports",
          "  queuectl worker start --detach",
          "  queuectl enqueue --file jobs.ndjson && queuectl worker start --count 4 --drain",
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
            brief: "How long to wait for the workers to exit",
            default: "60s",
          },
          now: {
            kind: "boolean",
            brief: "Interrupt running jobs (back to the queue) instead of waiting",
            default: false,
          },
          host: {
            kind: "parsed",
            parse: String,
            brief: "Stop the workers of this host (as worker list shows it), through the store",
            optional: true,
            placeholder: "name",
          },
          allHosts: {
            kind: "boolean",
            brief: "Stop the workers of every host, through the store",
            default: false,
          },
        },
      },
      docs: {
        brief: "Stop this host's workers, or another's (--host, --all-hosts)",
        fullDescription: [
          "Each worker finishes its current job, then exits. Running it again stays graceful;",
          "--now interrupts the running jobs, which go back to the queue without using a retry.",
          "Workers whose supervisor was killed are signalled directly.",
          "--host NAME or --all-hosts reach supervisors on other hosts through the store",
          "(they look every second).",
          "",
          "Examples:",
          "  queuectl worker stop --timeout 2m",
          "  queuectl worker stop --all-hosts --now",
        ].join("\n"),
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
