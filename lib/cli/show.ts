/** `queuectl show ID`: one job with every attempt it has made. */
import { buildCommand } from "@stricli/core";
import { formatDuration } from "../duration.ts";
import { NotFoundError } from "../errors.ts";
import { outputPath } from "../output.ts";
import { type Context, dbFlag, type DbFlags, jsonFlag, withStore } from "./context.ts";
import {
  attemptJson,
  colorState,
  iso,
  jobJson,
  out,
  outJson,
  relativeTime,
  table,
} from "./format.ts";

export function notFound(id: string) {
  return new NotFoundError(`job "${id}" not found; see queuectl list`);
}

async function show(this: Context, flags: DbFlags & { json: boolean }, id: string) {
  await withStore(flags, async (store, path) => {
    const job = await store.getJob(id);
    if (!job) throw notFound(id);
    const attempts = await store.listAttempts(id);
    if (flags.json) {
      // `attempts` stays the count, as in `list --json`; the runs themselves are a separate field.
      return outJson({ ...jobJson(job), attempt_history: attempts.map(attemptJson) });
    }
    const now = Date.now();
    const rows: Array<[string, string]> = [
      ["id", job.id],
      ["state", colorState(job.state)],
      ["command", job.command],
      ["attempts", `${job.attempts} of at most ${job.maxRetries + 1}`],
      ["priority", String(job.priority)],
      ["run at", `${iso(job.runAt)} (${relativeTime(job.runAt, now)})`],
      ["timeout", job.timeoutMs > 0 ? formatDuration(job.timeoutMs) : "none"],
      ["cwd", job.cwd],
      ["env", job.env ? Object.keys(job.env).join(", ") : "-"],
      ["created", `${iso(job.createdAt)} (${relativeTime(job.createdAt, now)})`],
      ["updated", `${iso(job.updatedAt)} (${relativeTime(job.updatedAt, now)})`],
      ["worker", job.workerId ?? "-"],
      ["exit code", job.exitCode === null ? "-" : String(job.exitCode)],
      ["output", job.outputKey ? outputPath(path, job.outputKey) : "-"],
    ];
    out(rows.map(([k, v]) => `${(k + ":").padEnd(11)}${v}`).join("\n"));
    if (job.error) out(`error:\n  ${job.error.split("\n").join("\n  ")}`);
    if (attempts.length > 0) {
      out(
        "\n" + table(
          ["#", "OUTCOME", "EXIT", "DURATION", "FINISHED", "WORKER", "ERROR"],
          attempts.map((a) => [
            String(a.attempt),
            a.outcome,
            a.exitCode === null ? (a.signal ?? "-") : String(a.exitCode),
            formatDuration(a.finishedAt - a.startedAt),
            relativeTime(a.finishedAt, now),
            a.workerId,
            (a.error ?? "").split("\n")[0].slice(0, 60),
          ]),
        ),
      );
    }
  });
}

export const showCommand = buildCommand({
  func: show,
  parameters: {
    flags: { ...dbFlag, ...jsonFlag },
    positional: {
      kind: "tuple",
      parameters: [{ brief: "Job id", parse: String, placeholder: "id" }],
    },
  },
  docs: {
    brief: "Show a job and its attempts",
    fullDescription: "Example:\n  queuectl show job1",
  },
});
