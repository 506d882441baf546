/**
 * The dashboard's bulk actions: retry, cancel or delete every job a filter of the jobs page
 * matches (state and search text). Which states each action takes, and how each job changes, are
 * the CLI's own rules (`retryOptions`, `cancelOptions` and `removeIds` in lib/cli/retry.ts), applied
 * to one page of matching jobs at a time; nothing here decides about a single job.
 */
import { FINISHED_STATES, type JobState } from "../job.ts";
import type { Store } from "../store/store.ts";
import { applyToIds, cancelOptions, removeIds, retryOptions } from "../cli/retry.ts";

export type BulkAction = "retry" | "cancel" | "delete";

/** The states each action takes, as its CLI command does (`retry`, `cancel`, `remove`). */
const ACCEPTS: Record<BulkAction, readonly JobState[]> = {
  retry: retryOptions.allowed,
  cancel: cancelOptions.allowed,
  delete: FINISHED_STATES,
};

export const isBulkAction = (s: string): s is BulkAction => Object.hasOwn(ACCEPTS, s);

/** What a bulk action touches: jobs matching the page's filter, in a state the action takes. */
export interface BulkFilter {
  state?: JobState;
  search?: string;
  /** Only jobs of this queue. */
  queue?: string;
}

/** The states an action would touch under `filter` (none when the filter's state is not taken). */
export function bulkStates(action: BulkAction, filter: BulkFilter): JobState[] {
  return ACCEPTS[action].filter((s) => !filter.state || s === filter.state);
}

const PAGE = 500;

/**
 * Applies `action` to every job that matches `filter` and was enqueued before `belowSeq` (the
 * newest `seq` when the count was shown, plus one: jobs enqueued since are left alone), newest
 * first, one page at a time; each job through the CLI's guarded per-job code. A job that changed
 * meanwhile (claimed, retried) is counted in `skipped` with its reason, never forced.
 */
export async function applyBulk(
  store: Store,
  action: BulkAction,
  filter: BulkFilter,
  belowSeq: number,
): Promise<{ done: number; skipped: string[] }> {
  const states = bulkStates(action, filter);
  let done = 0;
  const skipped: string[] = [];
  if (states.length === 0) return { done, skipped };
  for (let cursor = belowSeq;;) {
    const page = await store.pageJobs({
      states,
      search: filter.search,
      queue: filter.queue,
      beforeSeq: cursor,
      limit: PAGE,
    });
    if (page.length === 0) break;
    cursor = page[page.length - 1].seq;
    const ids = page.map((j) => j.id);
    if (action === "delete") {
      const r = await removeIds(store, ids);
      done += r.done.length;
      skipped.push(...r.problems);
      for (const [state, xs] of r.active) {
        skipped.push(...xs.map((id) => `job "${id}" is ${state} now`));
      }
    } else {
      const r = await applyToIds(store, ids, action === "retry" ? retryOptions : cancelOptions);
      done += r.done.length;
      skipped.push(...r.problems);
    }
  }
  return { done, skipped };
}
