/**
 * `queuectl purge --state completed|dead|cancelled [--older-than 7d] [--yes | --dry-run]`: delete
 * finished jobs with their attempts and output. It says how many first: on a terminal it asks,
 * elsewhere it needs `--yes`, so a script never deletes by accident.
 */
import { buildCommand } from "@stricli/core";
import { formatDuration } from "../duration.ts";
import { UsageError, UserError } from "../errors.ts";
import { FINISHED_STATES, isIn, type JobState } from "../job.ts";
import {
  type Context,
  dbFlag,
  type DbFlags,
  durationParser,
  parseState,
  withStore,
} from "./context.ts";
import { out } from "./format.ts";
import { orList } from "./list.ts";

interface PurgeFlags extends DbFlags {
  state: JobState;
  olderThan: number;
  yes: boolean;
  dryRun: boolean;
}

const jobs = (n: number, state: JobState) => `${n} ${state} job${n === 1 ? "" : "s"}`;

async function purge(this: Context, flags: PurgeFlags) {
  if (!isIn(flags.state, FINISHED_STATES)) {
    throw new UsageError(
      `--state ${flags.state} cannot be purged; choose ${orList(FINISHED_STATES)} ` +
        `(cancel pending or failed jobs first)`,
    );
  }
  if (flags.yes && flags.dryRun) throw new UsageError("give --yes or --dry-run, not both");
  const interactive = Deno.stdin.isTerminal();
  if (!flags.yes && !flags.dryRun && !interactive) {
    // Checked before counting, so a script without --yes fails every time, not only on the day
    // there is something to delete.
    throw new UsageError(
      "purge deletes jobs for good: pass --yes to confirm when not on a terminal, " +
        "or --dry-run to only count",
    );
  }
  await withStore(flags, async (store) => {
    // One cutoff for the count and the deletion: jobs that finish meanwhile are newer than it.
    const cutoff = await store.now() - flags.olderThan;
    const age = flags.olderThan > 0
      ? ` that finished more than ${formatDuration(flags.olderThan)} ago`
      : "";
    const n = await store.countPurgeable(flags.state, cutoff);
    if (flags.dryRun) return out(`would purge ${jobs(n, flags.state)}${age}`);
    // Nothing to ask about with none to delete; the purge still runs, as the write it is (so a
    // read-only store still says so).
    if (
      n > 0 && !flags.yes &&
      !(await confirm(`delete ${jobs(n, flags.state)}${age}, with their output?`))
    ) {
      throw new UserError("nothing purged (not confirmed)");
    }
    // Their attempts and output go in the same transaction.
    const deleted = await store.purge(flags.state, cutoff);
    out(`purged ${jobs(deleted.length, flags.state)}`);
  });
}

/** Asks on stderr and reads one line from the terminal; only "y" or "yes" confirms. */
async function confirm(question: string): Promise<boolean> {
  Deno.stderr.writeSync(new TextEncoder().encode(`${question} [y/N] `));
  const buf = new Uint8Array(256);
  let line = "";
  const dec = new TextDecoder();
  while (!line.includes("\n")) {
    const n = await Deno.stdin.read(buf);
    if (n === null) break;
    line += dec.decode(buf.subarray(0, n), { stream: true });
  }
  return /^\s*y(es)?\s*$/i.test(line.split("\n")[0]);
}

export const purgeCommand = buildCommand({
  func: purge,
  parameters: {
    flags: {
      ...dbFlag,
      state: {
        kind: "parsed",
        parse: parseState,
        brief: orList(FINISHED_STATES),
        placeholder: "state",
      },
      olderThan: {
        kind: "parsed",
        parse: durationParser("older-than"),
        brief: "Only jobs that finished longer ago than this, e.g. 7d; 0 means all",
        default: "0",
        placeholder: "age",
      },
      yes: {
        kind: "boolean",
        brief: "Do not ask; needed when stdin is not a terminal",
        default: false,
      },
      dryRun: { kind: "boolean", brief: "Only say how many jobs would go", default: false },
    },
    aliases: { y: "yes" },
  },
  docs: {
    brief: "Delete finished jobs, their attempts and logs",
    fullDescription: "Says how many jobs it will delete and asks first; --yes skips the\n" +
      "question (scripts must pass it), --dry-run only counts.\n\n" +
      "Examples:\n  queuectl purge --state completed --older-than 7d\n" +
      "  queuectl purge --state dead --dry-run\n  queuectl purge --state dead --yes",
  },
});
