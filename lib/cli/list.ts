/**
 * `queuectl list`: jobs newest first, filtered by state(s) and by text, a page at a time. The
 * filtering happens in the store; this module only parses flags and prints a page.
 */
import { buildCommand } from "@stricli/core";
import { UsageError } from "../errors.ts";
import { JOB_STATES, type JobState } from "../job.ts";
import type { ListOptions, Store } from "../store/store.ts";
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
import { checkQueueName } from "../spec.ts";

export interface PageFlags {
  limit?: number;
  offset: number;
  all: boolean;
  json: boolean;
}

interface ListFlags extends DbFlags, PageFlags {
  state?: JobState[];
  search?: string;
  queue?: string;
}

export const DEFAULT_LIMIT = 100;

/** What to list: the states (none means all) and the text to look for. */
export interface Filter {
  states?: readonly JobState[];
  search?: string;
  queue?: string;
}

/**
 * Prints one page of jobs, newest first, as a table or JSON; shared with `dlq list`. When more
 * jobs match than are shown, says on stderr how many and how to see them, so that a pipe reading
 * stdout gets only rows.
 */
export async function printJobs(store: Store, filter: Filter, flags: PageFlags, empty: string) {
  checkPageFlags(flags);
  const limit = flags.all ? Number.MAX_SAFE_INTEGER : flags.limit ?? DEFAULT_LIMIT;
  const search = filter.search === "" ? undefined : filter.search;
  const options: ListOptions = {
    states: filter.states,
    queue: filter.queue,
    search,
    newestFirst: true,
    // One row more than asked tells whether more match, without counting a search.
    limit: flags.all ? limit : limit + 1,
    offset: flags.offset,
  };
  const rows = await store.listJobs(options);
  const jobs = rows.slice(0, limit);
  const shown = flags.offset + jobs.length;
  // Counts of states are kept by the store; a search can only say "more".
  const total = search !== undefined
    ? null
    : filter.queue === undefined
    ? await store.countJobs(filter.states)
    : await store.countPage({ states: filter.states, queue: filter.queue });
  const more = total !== null ? total - shown : rows.length > limit ? -1 : 0;

  if (flags.json) outJson(jobs.map(jobJson));
  else if (jobs.length === 0 && flags.offset > 0 && (total ?? 0) > 0) {
    out(
      `nothing after --offset ${flags.offset}: there are ${total} ${what(filter, total!)} in all`,
    );
  } else if (jobs.length === 0) out(empty);
  else out(jobTable(jobs, Date.now()));
  if (more !== 0 && jobs.length > 0) {
    const count = more > 0 ? `${more} more` : "more";
    const match = search !== undefined ? " match" : "";
    console.error(`… ${count}${match} (older); see them with --offset ${shown}, or --all`);
  }
}

/** Refuses page flags that contradict each other; call it before opening the store. */
export function checkPageFlags(flags: PageFlags) {
  if (flags.all && flags.limit !== undefined) {
    throw new UsageError("give --limit or --all, not both");
  }
}

/** "dead or failed jobs", "jobs". */
function what(filter: Filter, n: number): string {
  const states = filter.states && filter.states.length < JOB_STATES.length
    ? orList(filter.states) + " "
    : "";
  const queue = filter.queue === undefined ? "" : ` in queue ${filter.queue}`;
  return `${states}job${n === 1 ? "" : "s"}${queue}`;
}

/** "a", "a or b", "a, b or c". */
export const orList = (xs: readonly string[]) =>
  xs.length <= 1 ? xs.join("") : `${xs.slice(0, -1).join(", ")} or ${xs.at(-1)}`;

/** Parses `--state dead,failed` (one state, or several separated by commas). */
export function parseStates(text: string): JobState[] {
  const states = text.split(",").map((s) => s.trim()).filter((s) => s !== "");
  if (states.length === 0) {
    throw new UsageError(
      `--state needs a state, e.g. --state dead,failed; states are ${JOB_STATES.join(", ")}`,
    );
  }
  return [...new Set(states.map(parseState))];
}

export const pageFlags = {
  limit: {
    kind: "parsed",
    parse: intParser("limit", 1, 1_000_000),
    brief: `Show at most this many jobs [default ${DEFAULT_LIMIT}]`,
    optional: true,
    placeholder: "n",
  },
  offset: {
    kind: "parsed",
    parse: intParser("offset", 0, Number.MAX_SAFE_INTEGER),
    brief: "Skip this many (newer) jobs first",
    default: "0",
    placeholder: "n",
  },
  all: { kind: "boolean", brief: "Show every matching job (no --limit)", default: false },
} as const;

async function list(this: Context, flags: ListFlags) {
  const filter: Filter = { states: flags.state, search: flags.search, queue: flags.queue };
  const empty = flags.search
    ? `no ${what(filter, 2)} match "${flags.search}"`
    : `no ${what(filter, 2)}`;
  checkPageFlags(flags);
  await withStore(flags, (store) => printJobs(store, filter, flags, empty), { create: false });
}

export const listCommand = buildCommand({
  func: list,
  parameters: {
    flags: {
      ...dbFlag,
      state: {
        kind: "parsed",
        parse: parseStates,
        brief: "Only these states, comma-separated: pending, processing, completed, failed, " +
          "dead, cancelled",
        optional: true,
        placeholder: "states",
      },
      search: {
        kind: "parsed",
        parse: String,
        brief: "Only jobs whose id, command or error contains this text (any case)",
        optional: true,
        placeholder: "text",
      },
      queue: {
        kind: "parsed",
        parse: (text: string) => checkQueueName(text, "--queue"),
        brief: "Only jobs of this queue",
        optional: true,
        placeholder: "name",
      },
      ...pageFlags,
      ...jsonFlag,
    },
    aliases: { s: "state", n: "limit" },
  },
  docs: {
    brief: "List jobs, newest first",
    fullDescription: "Shows the newest 100 by default; stderr says how many more there are.\n\n" +
      "Examples:\n  queuectl list --state pending\n  queuectl list --state dead,failed --json\n" +
      "  queuectl list --search backup --all\n  queuectl list --queue emails --state pending",
  },
});
