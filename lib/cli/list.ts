/** `queuectl list`: jobs in enqueue order, optionally of one state. */
import { buildCommand } from "@stricli/core";
import type { JobState } from "../job.ts";
import type { Store } from "../store/store.ts";
import {
  type Context,
  dbFlag,
  type DbFlags,
  intParser,
  jsonFlag,
  parseState,
  withStore,
} from "./context.ts";
import { jobJson, jobTable, out, outJson } from "./format.ts";

interface ListFlags extends DbFlags {
  state?: JobState;
  limit: number;
  offset: number;
  json: boolean;
}

/** Prints a page of jobs as a table or JSON; shared with `dlq list`. */
export async function printJobs(store: Store, flags: ListFlags, empty: string) {
  const jobs = await store.listJobs({
    state: flags.state,
    limit: flags.limit,
    offset: flags.offset,
  });
  if (flags.json) return outJson(jobs.map(jobJson));
  const total = await store.countJobs(flags.state);
  if (jobs.length === 0 && total > 0) {
    const what = `${flags.state ? flags.state + " " : ""}job${total === 1 ? "" : "s"}`;
    return out(`nothing after --offset ${flags.offset}: there are ${total} ${what} in all`);
  }
  if (jobs.length === 0) return out(empty);
  out(jobTable(jobs, Date.now()));
  const shown = flags.offset + jobs.length;
  if (total > shown) {
    // On stderr: a pipe reading the table gets only rows.
    console.error(`… ${total - shown} more; use --limit or --offset ${shown}`);
  }
}

export const pageFlags = {
  limit: {
    kind: "parsed",
    parse: intParser("limit", 1, 1_000_000),
    brief: "Show at most this many jobs",
    default: "100",
    placeholder: "n",
  },
  offset: {
    kind: "parsed",
    parse: intParser("offset", 0, Number.MAX_SAFE_INTEGER),
    brief: "Skip this many jobs first",
    default: "0",
    placeholder: "n",
  },
} as const;

async function list(this: Context, flags: ListFlags) {
  await withStore(
    flags,
    (store) => printJobs(store, flags, flags.state ? `no ${flags.state} jobs` : "no jobs"),
  );
}

export const listCommand = buildCommand({
  func: list,
  parameters: {
    flags: {
      ...dbFlag,
      state: {
        kind: "parsed",
        parse: parseState,
        brief: "pending, processing, completed, failed, dead or cancelled",
        optional: true,
        placeholder: "state",
      },
      ...pageFlags,
      ...jsonFlag,
    },
    aliases: { s: "state", n: "limit" },
  },
  docs: {
    brief: "List jobs, oldest first",
    fullDescription:
      "Examples:\n  queuectl list --state pending\n  queuectl list --state dead --json",
  },
});
