/** `queuectl logs ID [--follow]`: the job's captured stdout and stderr. */
import { buildCommand } from "@stricli/core";
import { UserError } from "../errors.ts";
import { logPath } from "../store/open.ts";
import { type Context, dbFlag, type DbFlags, withStore } from "./context.ts";
import { notFound } from "./show.ts";
import { writeAll } from "../write_all.ts";

const FOLLOW_POLL_MS = 200;

/** Copies the log at `path` from `offset` to stdout; returns the new offset. */
async function copyFrom(path: string, offset: number): Promise<number> {
  const unreadable = (e: unknown) =>
    new UserError(`cannot read the log ${path}: ${(e as Error).message}`);
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true });
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return offset;
    throw unreadable(e);
  }
  try {
    const buf = new Uint8Array(64 * 1024);
    const read = async () => {
      try {
        return await file.read(buf);
      } catch (e) {
        throw unreadable(e);
      }
    };
    const size = (await file.stat()).size;
    if (size < offset) offset = 0; // rotated or rewritten: start again
    await file.seek(offset, Deno.SeekMode.Start);
    for (;;) {
      const n = await read();
      if (n === null) break;
      writeAll(Deno.stdout, buf.subarray(0, n));
      offset += n;
    }
    return offset;
  } finally {
    file.close();
  }
}

async function logs(this: Context, flags: DbFlags & { follow: boolean }, id: string) {
  await withStore(flags, async (store, dbPath) => {
    const job = await store.getJob(id);
    if (!job) throw notFound(id);
    const path = logPath(dbPath, job.seq);
    let offset = await copyFrom(path, 0);
    if (!flags.follow) {
      if (offset === 0) {
        // A note, not output: stdout stays exactly what the job printed.
        const note = job.attempts === 0 && job.state !== "processing"
          ? `(${id} has not run yet, so it has no output)`
          : ["pending", "processing", "failed"].includes(job.state)
          ? `(no output yet from ${id})`
          : `(${id} printed no output)`;
        Deno.stderr.writeSync(new TextEncoder().encode(note + "\n"));
      }
      return;
    }
    // Follow until the job reaches a state where it no longer runs, then print what is left.
    for (;;) {
      const current = await store.getJob(id);
      offset = await copyFrom(path, offset);
      if (!current || !["pending", "processing", "failed"].includes(current.state)) break;
      await new Promise((r) => setTimeout(r, FOLLOW_POLL_MS));
    }
    await copyFrom(path, offset);
  });
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
    },
    aliases: { f: "follow" },
    positional: {
      kind: "tuple",
      parameters: [{ brief: "Job id", parse: String, placeholder: "id" }],
    },
  },
  docs: {
    brief: "Print a job's output (stdout and stderr)",
    fullDescription: "Output is capped per job (config log-max-bytes); the tail is kept.\n\n" +
      "Examples:\n  queuectl logs job1\n  queuectl logs job1 --follow",
  },
});
