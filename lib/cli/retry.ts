/**
 * `queuectl retry ID…` and `queuectl cancel ID…`, and the per-id reporting they share with
 * `dlq retry`: "retried a, b; not found: c", exit 1 if any id failed.
 */
import { buildCommand } from "@stricli/core";
import { ConflictError, NotFoundError, UsageError } from "../errors.ts";
import { IllegalTransition, type JobEvent, type JobState, transition } from "../job.ts";
import type { Store } from "../store/store.ts";
import { type Context, dbFlag, type DbFlags, withStore } from "./context.ts";
import { out } from "./format.ts";
import { notFound } from "./show.ts";

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
  const missing: string[] = [];
  const problems: string[] = [];
  for (const id of ids) {
    const job = await store.getJob(id);
    if (!job) {
      missing.push(id);
      continue;
    }
    if (!opts.allowed.includes(job.state)) {
      problems.push(`job "${id}" is ${job.state}; ${opts.hint(job.state)}`);
      continue;
    }
    const now = Date.now();
    try {
      const next = transition(job, opts.event, now);
      const saved = await store.applyTransition(id, job, next, now);
      if (saved) done.push(id);
      else problems.push(`job "${id}" changed while this ran (a worker picked it up?); try again`);
    } catch (e) {
      if (!(e instanceof IllegalTransition)) throw e;
      problems.push(`job "${id}" is ${job.state}; ${opts.hint(job.state)}`);
    }
  }
  return { done, missing, problems };
}

/**
 * Prints what was done ("cancelled a, b", or a count with `summarize`) and throws when any id
 * failed, naming each ("1 of 3 failed: job "c" is completed; …; not found: x, y"), so the exit
 * code is 1.
 */
export function report({ done, missing, problems }: Outcome, verb: string, summarize = false) {
  if (done.length > 0) {
    out(
      summarize
        ? `${verb} ${done.length} job${done.length === 1 ? "" : "s"}`
        : `${verb} ${done.join(", ")}`,
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

const retryOptions: ApplyOptions = {
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

const cancelOptions: ApplyOptions = {
  event: { type: "cancel" },
  allowed: ["pending", "failed"],
  verb: "cancelled",
  hint: (s) =>
    s === "processing"
      ? "it is running now; wait for it, or stop its worker"
      : s === "cancelled"
      ? "nothing to do (queuectl retry runs it again)"
      : "only pending or failed jobs can be cancelled",
};

export const retryCommand = buildCommand({
  func: retry,
  parameters: { flags: { ...dbFlag }, positional: idsParameter },
  docs: {
    brief: "Run failed, dead or cancelled jobs again now",
    fullDescription: "A dead or cancelled job starts over with its full retry budget; a failed\n" +
      "job keeps its attempt count and just runs sooner.\n\nExample:\n  queuectl retry job1 job2",
  },
});

export const cancelCommand = buildCommand({
  func: cancel,
  parameters: { flags: { ...dbFlag }, positional: idsParameter },
  docs: {
    brief: "Cancel pending or failed jobs",
    fullDescription: "Cancelled jobs stay listed and can be run again with retry.\n\n" +
      "Example:\n  queuectl cancel job1",
  },
});
