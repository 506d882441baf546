/** `queuectl purge --state completed|dead|cancelled [--older-than 7d]`: delete finished jobs. */
import { buildCommand } from "@stricli/core";
import { UsageError, UserError } from "../errors.ts";
import type { JobState } from "../job.ts";
import { removeOutput } from "../output.ts";
import {
  type Context,
  dbFlag,
  type DbFlags,
  durationParser,
  parseState,
  withStore,
} from "./context.ts";
import { out } from "./format.ts";

const PURGEABLE: JobState[] = ["completed", "dead", "cancelled"];

async function purge(this: Context, flags: DbFlags & { state: JobState; olderThan: number }) {
  if (!PURGEABLE.includes(flags.state)) {
    throw new UsageError(
      `--state ${flags.state} cannot be purged; choose completed, dead or cancelled ` +
        `(cancel pending or failed jobs first)`,
    );
  }
  await withStore(flags, async (store, path) => {
    const deleted = await store.purge(flags.state, Date.now() - flags.olderThan);
    const failures = await removeOutput(path, deleted.flatMap((j) => j.outputKeys));
    out(`purged ${deleted.length} ${flags.state} job${deleted.length === 1 ? "" : "s"}`);
    if (failures.length > 0) {
      throw new UserError(
        `could not delete ${failures.length} output file${failures.length === 1 ? "" : "s"} ` +
          `(first: ${failures[0]}); delete them by hand`,
      );
    }
  });
}

export const purgeCommand = buildCommand({
  func: purge,
  parameters: {
    flags: {
      ...dbFlag,
      state: {
        kind: "parsed",
        parse: parseState,
        brief: "completed, dead or cancelled",
        placeholder: "state",
      },
      olderThan: {
        kind: "parsed",
        parse: durationParser("older-than"),
        brief: "Only jobs that finished longer ago than this, e.g. 7d; 0 means all",
        default: "0",
        placeholder: "age",
      },
    },
  },
  docs: {
    brief: "Delete finished jobs, their attempts and logs",
    fullDescription: "Examples:\n  queuectl purge --state completed --older-than 7d\n" +
      "  queuectl purge --state dead",
  },
});
