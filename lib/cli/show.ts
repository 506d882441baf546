/**
 * `queuectl show ID`: one job with every attempt it has made, and a marker line where a person
 * gave it a fresh retry budget (attempt numbers continue across it).
 */
import { buildCommand } from "@stricli/core";
import { formatDuration } from "../duration.ts";
import { NotFoundError } from "../errors.ts";
import { attemptsUsed, type JobState } from "../job.ts";
import type { DependencyLink, Job, RetryMark } from "../store/store.ts";
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
  await withStore(flags, async (store) => {
    const job = await store.getJob(id);
    if (!job) throw notFound(id);
    const attempts = await store.listAttempts(id);
    const retries = await store.listRetries(id);
    const deps = await store.dependencies(id);
    if (flags.json) {
      // `attempts` stays the count, as in `list --json`; the runs themselves are a separate field.
      return outJson({
        ...jobJson(job),
        attempt_history: attempts.map(attemptJson),
        retry_history: retries.map((r) => ({
          after_attempt: r.afterAttempt,
          from_state: r.fromState,
          retried_at: iso(r.retriedAt),
        })),
        after: deps.after,
        dependants: deps.dependants,
      });
    }
    const now = Date.now();
    const rows: Array<[string, string]> = [
      ["id", job.id],
      ["state", colorState(job.state)],
      ["command", job.command],
      ["attempt", attemptLine(job)],
      ["queue", job.queue],
      ["priority", String(job.priority)],
      ["run at", `${iso(job.runAt)} (${relativeTime(job.runAt, now)})`],
      ...(deps.after.length > 0
        ? [["after", linkList(deps.after) + waitNote(job)] as [string, string]]
        : []),
      ...(deps.dependants.length > 0
        ? [["needed by", linkList(deps.dependants)] as [string, string]]
        : []),
      ["timeout", job.timeoutMs > 0 ? formatDuration(job.timeoutMs) : "none"],
      ["cwd", job.cwd],
      ["env", job.env ? Object.keys(job.env).join(", ") : "-"],
      ["unique", job.uniqueKey ?? "-"],
      ["created", `${iso(job.createdAt)} (${relativeTime(job.createdAt, now)})`],
      ["updated", `${iso(job.updatedAt)} (${relativeTime(job.updatedAt, now)})`],
      ["worker", job.workerId ?? "-"],
      ["exit code", job.exitCode === null ? "-" : String(job.exitCode)],
    ];
    out(rows.map(([k, v]) => `${(k + ":").padEnd(11)}${v}`).join("\n"));
    if (job.error) out(`error:\n  ${job.error.split("\n").join("\n  ")}`);
    if (attempts.length > 0) {
      const [header, ...rows] = table(
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
      ).split("\n");
      // Each retry mark goes before the first run after it (or last, when none ran yet).
      const lines = [header];
      let m = 0;
      for (const [i, a] of attempts.entries()) {
        for (; m < retries.length && retries[m].afterAttempt < a.attempt; m++) {
          lines.push(markLine(retries[m], job, now));
        }
        lines.push(rows[i]);
      }
      for (; m < retries.length; m++) lines.push(markLine(retries[m], job, now));
      out("\n" + lines.join("\n"));
    }
  }, { create: false });
}

/** "build (completed), test (pending)". */
function linkList(links: DependencyLink[]): string {
  return links.map((l) => `${l.id} (${colorState(l.state)})`).join(", ");
}

/** "; waiting on 1" while a pending job still waits for some of them. */
function waitNote(job: Job): string {
  return job.state === "pending" && job.waitingOn > 0 ? `; waiting on ${job.waitingOn}` : "";
}

/** "2 of 4": runs of the current retry budget out of the most it allows (1 + max_retries). */
function attemptLine(job: Job): string {
  const most = job.maxRetries + 1;
  const used = attemptsUsed(job);
  const since = job.retryBase > 0 ? ` since the retry (${job.attempts} runs in all)` : "";
  if (used === 0) return `none yet${job.retryBase > 0 ? " since the retry" : ""}; at most ${most}`;
  return `${used} of ${most}${since}`;
}

const FROM: Partial<Record<JobState, string>> = {
  dead: "from the DLQ",
  cancelled: "after it was cancelled",
};

/** "-- retried from the DLQ at 2026-…Z (5m ago): a fresh budget of 4 attempts --". */
function markLine(r: RetryMark, job: Job, now: number): string {
  return `-- retried ${FROM[r.fromState] ?? `from ${r.fromState}`} at ${iso(r.retriedAt)} ` +
    `(${relativeTime(r.retriedAt, now)}): a fresh budget of ${job.maxRetries + 1} ` +
    `attempt${job.maxRetries === 0 ? "" : "s"} --`;
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
    fullDescription: "`after` lists the jobs it waits for and `needed by` the jobs waiting for " +
      "it, each with its state.\n\nExample:\n  queuectl show job1",
  },
});
