/** `queuectl dlq list|retry`: the dead letter queue, i.e. jobs in state `dead`. */
import { buildCommand, buildRouteMap } from "@stricli/core";
import { UsageError } from "../errors.ts";
import { type Context, dbFlag, type DbFlags, jsonFlag, withStore } from "./context.ts";
import { out } from "./format.ts";
import { checkPageFlags, type PageFlags, pageFlags, printJobs } from "./list.ts";
import { applyToIds, type Outcome, report } from "./retry.ts";
import type { Store } from "../store/store.ts";

async function list(this: Context, flags: DbFlags & PageFlags) {
  checkPageFlags(flags);
  await withStore(
    flags,
    (store) => printJobs(store, { states: ["dead"] }, flags, "the dead letter queue is empty"),
    { create: false },
  );
}

async function retry(this: Context, flags: DbFlags & { all: boolean }, ...ids: string[]) {
  if (flags.all && ids.length > 0) throw new UsageError("give job ids or --all, not both");
  if (!flags.all && ids.length === 0) {
    throw new UsageError("give a job id (queuectl dlq retry job1) or --all");
  }
  await withStore(flags, async (store) => {
    if (!flags.all) return report(await applyToIds(store, ids, dlqRetry), dlqRetry.verb);
    const total = await retryAllDead(store);
    if (total.done.length + total.missing.length + total.problems.length === 0) {
      return out("the dead letter queue is empty");
    }
    report(total, dlqRetry.verb, true);
  });
}

/** Moves every dead job back to pending (`dlq retry --all`, the dashboard's "retry all"). */
export async function retryAllDead(store: Store): Promise<Outcome> {
  const total: Outcome = { done: [], missing: [], problems: [] };
  // Page by page: each page leaves the DLQ before the next is read. A job that could not be
  // moved would come back on the next page, so stop at the first page with a problem.
  for (let page; (page = await store.listJobs({ state: "dead", limit: 1000 })).length > 0;) {
    const r = await applyToIds(store, page.map((j) => j.id), dlqRetry);
    total.done.push(...r.done);
    total.missing.push(...r.missing);
    total.problems.push(...r.problems);
    if (r.problems.length + r.missing.length > 0) break;
  }
  return total;
}

export const dlqRetry = {
  event: { type: "retry" },
  allowed: ["dead"],
  verb: "moved to pending:",
  hint: () => "only dead jobs are in the DLQ (queuectl retry also takes failed or cancelled jobs)",
} as const satisfies Parameters<typeof applyToIds>[2];

export const dlqRoutes = buildRouteMap({
  routes: {
    list: buildCommand({
      func: list,
      parameters: { flags: { ...dbFlag, ...pageFlags, ...jsonFlag } },
      docs: {
        brief: "List dead jobs, newest first",
        fullDescription: "Example:\n  queuectl dlq list",
      },
    }),
    retry: buildCommand({
      func: retry,
      parameters: {
        flags: {
          ...dbFlag,
          all: { kind: "boolean", brief: "Retry every dead job", default: false },
        },
        positional: {
          kind: "array",
          parameter: { brief: "Job ids", parse: String, placeholder: "id" },
        },
      },
      docs: {
        brief: "Move dead jobs back to pending with a fresh retry budget",
        fullDescription: "Examples:\n  queuectl dlq retry job1\n  queuectl dlq retry --all",
      },
    }),
  },
  docs: { brief: "Inspect and retry the dead letter queue (jobs in state dead)" },
});
