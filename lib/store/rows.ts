/**
 * Rows as every store returns them (snake_case columns, times as numbers of ms) → the types of
 * store.ts. Shared by the SQLite and PostgreSQL stores, whose tables have the same columns.
 */
import { ConflictError } from "../errors.ts";
import { JOB_STATES, type JobState } from "../job.ts";
import type { Attempt, Job, QueueInfo, RetryMark, WorkerInfo } from "./store.ts";

/** A row as a driver returns it. */
export type Row = Record<string, unknown>;

export function toJob(r: Row): Job {
  return {
    seq: r.seq as number,
    id: r.id as string,
    command: r.command as string,
    state: r.state as JobState,
    attempts: r.attempts as number,
    retryBase: r.retry_base as number,
    maxRetries: r.max_retries as number,
    priority: r.priority as number,
    runAt: r.run_at as number,
    timeoutMs: r.timeout_ms as number,
    cwd: r.cwd as string,
    env: r.env === null ? null : JSON.parse(r.env as string),
    createdAt: r.created_at as number,
    updatedAt: r.updated_at as number,
    startedAt: r.started_at as number | null,
    finishedAt: r.finished_at as number | null,
    exitCode: r.exit_code as number | null,
    error: r.error as string | null,
    workerId: r.worker_id as string | null,
    outputKey: r.output_key as string | null,
    queue: r.queue as string,
  };
}

export function toAttempt(r: Row): Attempt {
  return {
    jobId: r.job_id as string,
    attempt: r.attempt as number,
    workerId: r.worker_id as string,
    startedAt: r.started_at as number,
    finishedAt: r.finished_at as number,
    outcome: r.outcome as Attempt["outcome"],
    exitCode: r.exit_code as number | null,
    signal: r.signal as string | null,
    error: r.error as string | null,
    outputKey: r.output_key as string | null,
    note: r.note as string | null,
  };
}

export function toWorker(r: Row): WorkerInfo {
  return {
    id: r.id as string,
    pid: r.pid as number,
    host: r.host as string,
    supervisorPid: r.supervisor_pid as number,
    startedAt: r.started_at as number,
    heartbeatAt: r.heartbeat_at as number,
    stoppingAt: r.stopping_at as number | null,
    stoppedAt: r.stopped_at as number | null,
    currentJob: r.current_job as string | null,
    runningJobs: Number(r.running_jobs ?? 0),
  };
}

/**
 * The error for a batch that hit an existing id: names the first id of `ids` that `exists` in
 * the store or comes twice in the batch.
 */
export function duplicateIdError(ids: string[], exists: (id: string) => boolean): ConflictError {
  const seen = new Set<string>();
  for (const id of ids) {
    if (seen.has(id) || exists(id)) {
      return new ConflictError(
        `job "${id}" already exists; choose another id, or omit "id" to get a generated one` +
          (ids.length > 1 ? " (nothing from this batch was stored)" : ""),
      );
    }
    seen.add(id);
  }
  return new ConflictError("a job id already exists; nothing was stored");
}

export function toRetryMark(r: Row): RetryMark {
  return {
    jobId: r.job_id as string,
    afterAttempt: r.after_attempt as number,
    fromState: r.from_state as JobState,
    retriedAt: r.retried_at as number,
  };
}

/**
 * The queues of `listQueues` from the kept totals per state (`state`, `n`), the counts of the
 * queues other than `default` (`queue`, `state`, `n`) and the rules (`name`, `paused`,
 * `concurrency`): `default` gets the totals minus the others. Sorted by name, `default` always in.
 */
export function queueInfos(totals: Row[], others: Row[], rules: Row[]): QueueInfo[] {
  const queues = new Map<string, QueueInfo>();
  const get = (name: string) => {
    let q = queues.get(name);
    if (!q) {
      const counts = Object.fromEntries(JOB_STATES.map((s) => [s, 0])) as Record<JobState, number>;
      q = { name, counts, paused: false, concurrency: 0 };
      queues.set(name, q);
    }
    return q;
  };
  const fallback = get("default");
  for (const r of totals) fallback.counts[r.state as JobState] += Number(r.n);
  for (const r of others) {
    get(r.queue as string).counts[r.state as JobState] += Number(r.n);
    fallback.counts[r.state as JobState] -= Number(r.n);
  }
  for (const r of rules) {
    const q = get(r.name as string);
    q.paused = Boolean(r.paused);
    q.concurrency = Number(r.concurrency);
  }
  return [...queues.values()].sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
}
