/**
 * `queuectl logs ID [--attempt N] [--follow] [--json]`: the job's captured stdout and stderr, run
 * by run. Each run has its own output (lib/output.ts), so a run that is stopped late, a rescued
 * one or one of an earlier database at the same path never mixes into another's.
 */
import { buildCommand } from "@stricli/core";
import { UsageError, UserError } from "../errors.ts";
import { ACTIVE_STATES, isIn } from "../job.ts";
import { OutputFollower, outputPath, readOutput } from "../output.ts";
import type { Job, Store } from "../store/store.ts";
import { type Context, dbFlag, type DbFlags, intParser, withStore } from "./context.ts";
import { iso, outJson } from "./format.ts";
import { notFound } from "./show.ts";
import { writeAll } from "../write_all.ts";

const FOLLOW_POLL_MS = 200;

interface LogsFlags extends DbFlags {
  follow: boolean;
  json: boolean;
  attempt?: number;
}

interface Run {
  attempt: number;
  key: string;
  startedAt: number | null;
  outcome: string | null;
}

function writeOut(bytes: Uint8Array) {
  writeAll(Deno.stdout, bytes);
}

function note(text: string) {
  writeAll(Deno.stderr, text + "\n");
}

/** The runs of a job that have (or may have) output, oldest first. */
async function runsOf(store: Store, job: Job): Promise<Run[]> {
  const attempts = await store.listAttempts(job.id);
  return (await store.outputKeys(job.id)).map(({ attempt, key }) => {
    const a = attempts.find((x) => x.outputKey === key);
    return {
      attempt,
      key,
      startedAt: a?.startedAt ?? job.startedAt,
      outcome: a?.outcome ?? null,
    };
  });
}

const header = (run: Run) =>
  new TextEncoder().encode(
    `--- attempt ${run.attempt}${run.startedAt ? ` at ${iso(run.startedAt)}` : ""} ---\n`,
  );

function unreadable(path: string, e: unknown) {
  return new UserError(`cannot read the output ${path}: ${(e as Error).message}`);
}

async function read(path: string): Promise<Uint8Array | null> {
  try {
    return await readOutput(path);
  } catch (e) {
    throw unreadable(path, e);
  }
}

async function logs(this: Context, flags: LogsFlags, id: string) {
  if (flags.json && flags.follow) {
    throw new UsageError("--json and --follow do not combine; use one of them");
  }
  await withStore(flags, async (store, dbPath) => {
    const job = await store.getJob(id);
    if (!job) throw notFound(id);
    let runs = await runsOf(store, job);
    if (flags.attempt !== undefined) {
      runs = runs.filter((r) => r.attempt === flags.attempt);
      if (runs.length === 0) {
        throw new UserError(
          `${id} has no attempt ${flags.attempt} with output; it has run ${job.attempts} ` +
            `time${job.attempts === 1 ? "" : "s"} (see queuectl show ${id})`,
        );
      }
    }

    if (flags.json) {
      const decoder = new TextDecoder();
      const attempts = [];
      for (const run of runs) {
        const bytes = await read(outputPath(dbPath, run.key));
        attempts.push({
          attempt: run.attempt,
          started_at: iso(run.startedAt),
          outcome: run.outcome,
          output: bytes ? decoder.decode(bytes) : "",
        });
      }
      return outJson({ id: job.id, state: job.state, attempts });
    }

    if (!flags.follow) {
      let printed = false;
      for (const run of runs) {
        const bytes = await read(outputPath(dbPath, run.key));
        if (!bytes || bytes.length === 0) continue;
        if (printed) writeOut(header(run));
        writeOut(bytes);
        printed = true;
      }
      // A note, not output: stdout stays exactly what the job printed.
      if (!printed) {
        note(
          job.attempts === 0 && job.state !== "processing"
            ? `(${id} has not run yet, so it has no output)`
            : isIn(job.state, ACTIVE_STATES)
            ? `(no output yet from ${id})`
            : `(${id} printed no output)`,
        );
      }
      return;
    }
    await follow(store, dbPath, job, runs);
  }, { create: false });
}

/**
 * Prints each run's output as it is written, moving on to the next run when the job is retried,
 * until the job stops running. Fails (exit 1) when it ends anywhere but `completed`.
 */
async function follow(store: Store, dbPath: string, job: Job, runs: Run[]) {
  let printed = false;
  const sink = (bytes: Uint8Array) => {
    writeOut(bytes);
    if (bytes.length > 0) printed = true;
  };
  const done = new Set<string>();
  let current: { run: Run; follower: OutputFollower } | null = null;
  const start = (run: Run) => {
    let first = true;
    current = {
      run,
      follower: new OutputFollower(outputPath(dbPath, run.key), (bytes) => {
        if (first && printed && bytes.length > 0) writeOut(header(run));
        first = false;
        sink(bytes);
      }),
    };
  };
  // Earlier runs are printed whole; the latest one is followed.
  for (const run of runs.slice(0, -1)) {
    const bytes = await read(outputPath(dbPath, run.key));
    if (bytes && bytes.length > 0) {
      if (printed) writeOut(header(run));
      sink(bytes);
    }
    done.add(run.key);
  }
  if (runs.length > 0) start(runs[runs.length - 1]);
  let latest: Job | null = job;
  try {
    for (;;) {
      latest = await store.getJob(job.id);
      const c = current as { run: Run; follower: OutputFollower } | null;
      if (c) {
        try {
          await c.follower.poll();
        } catch (e) {
          throw unreadable(c.follower.path, e);
        }
      }
      if (latest?.outputKey && latest.outputKey !== c?.run.key && !done.has(latest.outputKey)) {
        // A new run started: finish the previous one, then follow the new one.
        if (c) {
          await c.follower.poll();
          c.follower.close();
          done.add(c.run.key);
        }
        start({
          attempt: latest.attempts,
          key: latest.outputKey,
          startedAt: latest.startedAt,
          outcome: null,
        });
        continue;
      }
      if (!latest || !isIn(latest.state, ACTIVE_STATES)) break;
      await new Promise((r) => setTimeout(r, FOLLOW_POLL_MS));
    }
    const c = current as { run: Run; follower: OutputFollower } | null;
    await c?.follower.poll();
  } finally {
    (current as { follower: OutputFollower } | null)?.follower.close();
  }
  if (!latest) throw new UserError(`${job.id} was deleted while its output was followed`);
  if (latest.state !== "completed") {
    throw new UserError(
      `${job.id} ended ${latest.state}` +
        (latest.state === "dead"
          ? ` (see queuectl show ${job.id}; retry with queuectl dlq retry ${job.id})`
          : ""),
    );
  }
}

export const logsCommand = buildCommand({
  func: logs,
  parameters: {
    flags: {
      ...dbFlag,
      follow: {
        kind: "boolean",
        brief: "Keep printing output until the job stops running",
        default: false,
      },
      attempt: {
        kind: "parsed",
        parse: intParser("attempt", 1, 1_000_000),
        brief: "Only this attempt's output (1 is the first run)",
        optional: true,
        placeholder: "n",
      },
      json: {
        kind: "boolean",
        brief: "Print JSON: the output of each attempt",
        default: false,
      },
    },
    aliases: { f: "follow" },
    positional: {
      kind: "tuple",
      parameters: [{ brief: "Job id", parse: String, placeholder: "id" }],
    },
  },
  docs: {
    brief: "Print a job's output (stdout and stderr)",
    fullDescription: "Each attempt keeps its own output, capped per attempt (config " +
      "log-max-bytes); the tail is kept. --follow exits 1 when the job ends other than " +
      "completed.\n\n" +
      "Examples:\n  queuectl logs job1\n  queuectl logs job1 --follow\n" +
      "  queuectl logs job1 --attempt 2",
  },
});
