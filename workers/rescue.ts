/**
 * Puts the jobs of lost workers back in the queue: each counts as a failed attempt ("worker lost"),
 * so it is retried with backoff, or moves to the DLQ on its last attempt. Every write goes through
 * the guarded `finishAttempt`, so a job that its worker finished meanwhile is never overwritten.
 */
import { backoffPolicy, type Config } from "../lib/config.ts";
import { formatDurationExact } from "../lib/duration.ts";
import { transition } from "../lib/job.ts";
import type { Job, Store } from "../lib/store/store.ts";

export interface Rescued {
  job: Job;
  /** The worker that lost it. */
  workerId: string;
}

/** Fails `jobs` held by `workerId` as lost. Returns the jobs that were moved. */
export async function failLostJobs(
  store: Store,
  held: Array<{ job: Job; workerId: string }>,
  reason: string,
  config: Config,
  now: number,
): Promise<Rescued[]> {
  const moved: Rescued[] = [];
  for (const { job, workerId } of held) {
    const next = transition(
      job,
      { type: "fail", outcome: "worker_lost" },
      now,
      backoffPolicy(config),
    );
    const updated = await store.finishAttempt(job.id, workerId, next, {
      outcome: "worker_lost",
      exitCode: null,
      signal: null,
      error: reason,
    }, now);
    if (updated) moved.push({ job: updated, workerId });
  }
  return moved;
}

/** Finds processing jobs whose worker's lease ran out, and fails them as lost. */
export async function rescueStaleJobs(store: Store, config: Config, now: number) {
  const stale = await store.findStaleJobs(now, config.leaseTimeoutMs);
  if (stale.length === 0) return [];
  return await failLostJobs(
    store,
    stale,
    `worker lost: no heartbeat for ${formatDurationExact(config.leaseTimeoutMs)}`,
    config,
    now,
  );
}

/**
 * Deletes finished jobs past their retention (config `retention-completed`, `retention-dead`; 0
 * keeps them), with their attempts and output. Every worker does it now and then; deleting what
 * another worker deleted first is harmless. Returns how many went, per state.
 */
export async function pruneFinished(
  store: Store,
  config: Config,
  now: number,
): Promise<{ completed: number; dead: number }> {
  const completed = config.retentionCompletedMs > 0
    ? (await store.purge("completed", now - config.retentionCompletedMs)).length
    : 0;
  const dead = config.retentionDeadMs > 0
    ? (await store.purge("dead", now - config.retentionDeadMs)).length
    : 0;
  return { completed, dead };
}
