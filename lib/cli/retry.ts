/**
 * `queuectl retry ID…`, `queuectl cancel ID…` and `queuectl remove ID…`, and the per-id
 * reporting they share with `dlq retry`: "retried a, b; not found: c", exit 1 if any id failed.
 */
import { buildCommand } from "@stricli/core";
import { ConflictError, NotFoundError, UsageError } from "../errors.ts";
import {
  ACTIVE_STATES,
  FINISHED_STATES,
  IllegalTransition,
  isIn,
  type JobEvent,
  type JobState,
  transition,
} from "../job.ts";
import type { Job, Store } from "../store/store.ts";
import { type Context, dbFlag, type DbFlags, withStore } from "./context.ts";
import { out } from "./format.ts";
import { orList } from "./list.ts";
import { notFound } from "./show.ts";

/** What a cancelled run's attempt says, in `show` and `--json`. */
export const CANCELLED_RUN_ERROR = "cancelled while running (queuectl cancel)";

export interface ApplyOptions {
  event: Extract<JobEvent, { type: "retry" } | { type: "cancel" }>;
  /** States this command accepts (a subset of what the state machine allows). */
  allowed: JobState[];
  verb: string;
  /** Tells what to do when a job is in a state this command does not accept. */
  hint: (state: JobState) => string;
}

export interface Outcome {
  done: string[];
  /** Ids among `done` that were running: their worker still has to stop the command. */
  running?: string[];
  /** Ids with no job. */
  missing: string[];
  /** One message per id that exists but could not be changed. */
  problems: string[];
}

/** Applies `opts.event` to each id, one guarded write each; never throws for a bad id. */
export async function applyToIds(
  store: Store,
  ids: string[],
  opts: ApplyOptions,
): Promise<Outcome> {
  const done: string[] = [];
  const running: string[] = [];
  const missing: string[] = [];
  const problems: string[] = [];
  const changed = (id: string) =>
    `job "${id}" changed while this ran (a worker picked it up?); try again`;
  for (const id of ids) {
    const job = await store.getJob(id);
    if (!job) {
      missing.push(id);
      continue;
    }
    if (!opts.allowed.includes(job.state)) {
      if (opts.event.type === "retry" && await cameBackWith(store, job, done)) done.push(id);
      else problems.push(`job "${id}" is ${job.state}; ${opts.hint(job.state)}`);
      continue;
    }
    const now = await store.now();
    try {
      const next = transition(job, opts.event, now);
      if (job.state === "processing") {
        // A running job is cancelled in the store; its worker sees that the job is no longer its
        // own and stops the command.
        const saved = await store.cancelRunning(
          id,
          job.workerId!,
          job.attempts,
          next,
          CANCELLED_RUN_ERROR,
          now,
        );
        if (saved) {
          done.push(id);
          running.push(id);
        } else problems.push(changed(id));
        continue;
      }
      const saved = await store.applyTransition(id, job, next, now);
      if (saved) done.push(id);
      else if (opts.event.type === "retry") {
        problems.push(await deadDependency(store, job) ?? changed(id));
      } else problems.push(changed(id));
    } catch (e) {
      // Its unique key is held by another job now: refused, nothing changed.
      if (e instanceof ConflictError) problems.push(e.message);
      else if (!(e instanceof IllegalTransition)) throw e;
      else problems.push(`job "${id}" is ${job.state}; ${opts.hint(job.state)}`);
    }
  }
  return { done, running, missing, problems };
}

/**
 * Whether `job`, asked to be retried, came back because a job it waits for was retried earlier
 * in the same command (`retry a b`, `dlq retry --all` of a chain): that is done already. It may
 * be waiting, or already running or ended when a worker took the chain meanwhile.
 */
async function cameBackWith(store: Store, job: Job, done: string[]): Promise<boolean> {
  // Brought back with a job retried just before it: it may have run (and ended) since.
  if (job.state === "cancelled" || done.length === 0) return false;
  return (await store.dependencies(job.id)).after.some((d) => done.includes(d.id));
}

/** Why a retry was refused when a job it waits for is dead or cancelled, or `null`. */
async function deadDependency(store: Store, job: Job): Promise<string | null> {
  if (job.waitingOn === 0) return null;
  const dep = (await store.dependencies(job.id)).after.find((d) =>
    d.state === "dead" || d.state === "cancelled"
  );
  if (!dep) return null;
  return `job "${job.id}" waits for "${dep.id}", which is ${dep.state}; retry "${dep.id}" ` +
    `instead (the jobs waiting for it come back with it)`;
}

/**
 * Prints what was done ("cancelled a, b", or a count with `summarize`) and throws when any id
 * failed, naming each ("1 of 3 failed: job "c" is completed; …; not found: x, y"), so the exit
 * code is 1.
 */
export function report(
  { done, running = [], missing, problems }: Outcome,
  verb: string,
  summarize = false,
) {
  if (done.length > 0) {
    const note = running.length === 0
      ? ""
      : running.length === done.length
      ? ` (${
        running.length === 1
          ? "its worker stops the running command"
          : "their workers stop the running commands"
      } within a second)`
      : ` (${running.join(", ")} ${running.length === 1 ? "was" : "were"} running; ` +
        `the worker stops ${running.length === 1 ? "it" : "them"} within a second)`;
    out(
      (summarize
        ? `${verb} ${done.length} job${done.length === 1 ? "" : "s"}`
        : `${verb} ${done.join(", ")}`) + note,
    );
  }
  const failed = problems.length + missing.length;
  if (failed === 0) return;
  if (failed === 1 && done.length === 0) {
    throw problems.length === 1 ? new ConflictError(problems[0]) : notFound(missing[0]);
  }
  const parts = [...problems];
  if (missing.length > 0) {
    parts.push(`not found: ${missing.map((id) => `"${id}"`).join(", ")} (see queuectl list)`);
  }
  const Err = problems.length > 0 ? ConflictError : NotFoundError;
  throw new Err(`${failed} of ${done.length + failed} failed: ${parts.join("; ")}`);
}

const idsParameter = {
  kind: "array",
  parameter: { brief: "Job ids", parse: String, placeholder: "id" },
} as const;

function requireIds(ids: string[], example: string) {
  if (ids.length === 0) throw new UsageError(`give at least one job id, e.g. ${example}`);
}

async function retry(this: Context, flags: DbFlags, ...ids: string[]) {
  requireIds(ids, "queuectl retry job1");
  await withStore(
    flags,
    async (store) => report(await applyToIds(store, ids, retryOptions), retryOptions.verb),
  );
}

export const retryOptions: ApplyOptions = {
  event: { type: "retry" },
  allowed: ["failed", "dead", "cancelled"],
  verb: "queued again:",
  hint: (s) =>
    s === "processing"
      ? "it is running now; wait for it to finish"
      : s === "pending"
      ? "it is already waiting to run"
      : "enqueue it again under a new id to run it once more",
};

async function cancel(this: Context, flags: DbFlags, ...ids: string[]) {
  requireIds(ids, "queuectl cancel job1");
  await withStore(
    flags,
    async (store) => report(await applyToIds(store, ids, cancelOptions), cancelOptions.verb),
  );
}

export const cancelOptions: ApplyOptions = {
  event: { type: "cancel" },
  allowed: [...ACTIVE_STATES],
  verb: "cancelled",
  hint: (s) =>
    s === "cancelled"
      ? "nothing to do (queuectl retry runs it again)"
      : `only ${orList(ACTIVE_STATES)} jobs can be cancelled`,
};

/** What `removeIds` did: removed ids, unknown ids, ids still active (by state), other problems. */
export interface RemoveOutcome {
  done: string[];
  missing: string[];
  active: Map<JobState, string[]>;
  problems: string[];
}

/**
 * Deletes each finished job of `ids` with its attempts and output (`remove`, the dashboard's bulk
 * delete), one guarded delete each; never throws for a bad id.
 */
export async function removeIds(store: Store, ids: string[]): Promise<RemoveOutcome> {
  const done: string[] = [];
  const missing: string[] = [];
  const active = new Map<JobState, string[]>();
  const problems: string[] = [];
  for (const id of ids) {
    const job = await store.getJob(id);
    if (!job) {
      missing.push(id);
      continue;
    }
    if (!isIn(job.state, FINISHED_STATES)) {
      active.set(job.state, [...(active.get(job.state) ?? []), id]);
      continue;
    }
    // Its attempts and output go with it, in one transaction.
    if (!await store.removeJob(id, FINISHED_STATES)) {
      problems.push(`job "${id}" changed while this ran (retried?); see queuectl show ${id}`);
      continue;
    }
    done.push(id);
  }
  return { done, missing, active, problems };
}

async function remove(this: Context, flags: DbFlags, ...ids: string[]) {
  requireIds(ids, "queuectl remove job1");
  await withStore(flags, async (store) => {
    const { done, missing, active, problems } = await removeIds(store, ids);
    if (done.length > 0) out(`removed ${done.join(", ")}`);
    const stillActive = [...active.values()].flat();
    const failed = missing.length + stillActive.length + problems.length;
    if (failed === 0) return;
    const finished = `only ${orList(FINISHED_STATES)} jobs can be removed`;
    if (ids.length === 1) {
      if (missing.length === 1) throw notFound(missing[0]);
      if (stillActive.length === 1) {
        const [[state]] = active;
        throw new ConflictError(
          `job "${ids[0]}" is still ${state}; ${finished}: cancel it first (queuectl cancel)`,
        );
      }
      throw new ConflictError(problems[0]);
    }
    const quoted = (xs: string[]) => xs.map((id) => `"${id}"`).join(", ");
    const parts = [...problems];
    if (missing.length > 0) parts.push(`not found: ${quoted(missing)} (see queuectl list)`);
    for (const [state, xs] of active) parts.push(`still ${state}: ${quoted(xs)}`);
    const hint = stillActive.length > 0 ? ` (${finished}; cancel the others first)` : "";
    const Err = problems.length + stillActive.length > 0 ? ConflictError : NotFoundError;
    throw new Err(`${failed} of ${ids.length} failed: ${parts.join("; ")}${hint}`);
  });
}

export const retryCommand = buildCommand({
  func: retry,
  parameters: { flags: { ...dbFlag }, positional: idsParameter },
  docs: {
    brief: "Run failed, dead or cancelled jobs again now",
    fullDescription: "A dead or cancelled job starts over with its full retry budget; a failed\n" +
      "job keeps its attempt count and just runs sooner. Jobs that died because they\n" +
      "wait for it (enqueue --after) come back with it, waiting again.\n\n" +
      "Example:\n  queuectl retry job1 job2",
  },
});

export const cancelCommand = buildCommand({
  func: cancel,
  parameters: { flags: { ...dbFlag }, positional: idsParameter },
  docs: {
    brief: "Cancel pending, failed or running jobs",
    fullDescription:
      "A running job's worker stops its command (SIGTERM to its process group, SIGKILL\n" +
      "after kill-grace); the run is recorded with outcome cancelled. Cancelled jobs stay\n" +
      "listed and can be run again with retry, or deleted with remove.\n\n" +
      "Example:\n  queuectl cancel job1",
  },
});

export const removeCommand = buildCommand({
  func: remove,
  parameters: { flags: { ...dbFlag }, positional: idsParameter },
  docs: {
    brief: "Delete finished jobs with their attempts and output",
    fullDescription: `Only ${orList(FINISHED_STATES)} jobs; cancel others first.\n\n` +
      "Example:\n  queuectl remove job1 job2",
  },
});
