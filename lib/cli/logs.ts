/**
 * `queuectl logs ID [--attempt N] [--follow] [--json]`: the job's captured stdout and stderr, run
 * by run, read from the store (so from any host). Each run's output is keyed by the run, so a run
 * that is stopped late or a rescued one never mixes into another's.
 */
import { buildCommand } from "@stricli/core";
import { UsageError, UserError } from "../errors.ts";
import { ACTIVE_STATES, isIn } from "../job.ts";
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

/** Says that the cap dropped output before the bytes that follow. */
const DROPPED = new TextEncoder().encode(
  "[queuectl: earlier output dropped; output is capped per attempt, keeping the tail]\n",
);

/** One run's stored output as one buffer, after a note when the cap dropped its beginning. */
async function readRun(store: Store, key: string): Promise<Uint8Array> {
  const pieces = await store.readOutput(key, 0);
  const parts: Uint8Array[] = pieces.length > 0 && pieces[0].offset > 0 ? [DROPPED] : [];
  parts.push(...pieces.map((p) => p.data));
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

async function logs(this: Context, flags: LogsFlags, id: string) {
  if (flags.json && flags.follow) {
    throw new UsageError("--json and --follow do not combine; use one of them");
  }
  await withStore(flags, async (store) => {
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
        const bytes = await readRun(store, run.key);
        attempts.push({
          attempt: run.attempt,
          started_at: iso(run.startedAt),
          outcome: run.outcome,
          output: decoder.decode(bytes),
        });
      }
      return outJson({ id: job.id, state: job.state, attempts });
    }

    if (!flags.follow) {
      let printed = false;
      for (const run of runs) {
        const bytes = await readRun(store, run.key);
        if (bytes.length === 0) continue;
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
    await follow(store, job, runs);
  }, { create: false });
}

/**
 * Prints each run's output as the worker stores it (every second), moving on to the next run when
 * the job is retried, until the job stops running. Fails (exit 1) when it ends anywhere but
 * `completed`.
 */
async function follow(store: Store, job: Job, runs: Run[]) {
  let printed = false;
  const print = (bytes: Uint8Array) => {
    if (bytes.length === 0) return;
    writeOut(bytes);
    printed = true;
  };
  const seen = new Set<string>();
  // Earlier runs are printed whole; the latest one is followed from its start.
  for (const run of runs.slice(0, -1)) {
    const bytes = await readRun(store, run.key);
    if (bytes.length > 0 && printed) writeOut(header(run));
    print(bytes);
    seen.add(run.key);
  }
  let current: { run: Run; offset: number; started: boolean } | null = runs.length > 0
    ? { run: runs[runs.length - 1], offset: 0, started: false }
    : null;
  /** Prints what the current run stored since the last look. */
  const drain = async () => {
    if (!current) return;
    for (const piece of await store.readOutput(current.run.key, current.offset)) {
      let data = piece.data;
      if (piece.offset > current.offset) {
        // The cap dropped bytes we had not printed yet.
        if (!current.started && printed) writeOut(header(current.run));
        print(current.offset === 0 ? DROPPED : MISSED);
      } else if (piece.offset < current.offset) {
        data = data.subarray(current.offset - piece.offset);
      }
      if (data.length > 0 && !current.started && printed) writeOut(header(current.run));
      if (data.length > 0) current.started = true;
      print(data);
      current.offset = piece.offset + piece.data.length;
    }
  };
  let latest: Job | null = job;
  for (;;) {
    latest = await store.getJob(job.id);
    await drain();
    if (latest?.outputKey && latest.outputKey !== current?.run.key && !seen.has(latest.outputKey)) {
      // A new run started: finish the previous one, then follow the new one.
      await drain();
      if (current) seen.add(current.run.key);
      current = {
        run: {
          attempt: latest.attempts,
          key: latest.outputKey,
          startedAt: latest.startedAt,
          outcome: null,
        },
        offset: 0,
        started: false,
      };
      continue;
    }
    if (!latest || !isIn(latest.state, ACTIVE_STATES)) break;
    await new Promise((r) => setTimeout(r, FOLLOW_POLL_MS));
  }
  await drain();
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

const MISSED = new TextEncoder().encode(
  "[queuectl: output dropped while following: the job printed faster than the cap keeps]\n",
);

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
