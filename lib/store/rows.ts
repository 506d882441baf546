/**
 * Rows as every store returns them (snake_case columns, times as numbers of ms) → the types of
 * store.ts. Shared by the SQLite and PostgreSQL stores, whose tables have the same columns.
 */
import { ConflictError, UsageError } from "../errors.ts";
import type { JobState } from "../job.ts";
import type { Attempt, Job, RetryMark, WorkerInfo } from "./store.ts";

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
    waitingOn: Number(r.waiting_on ?? 0),
  };
}

/** The error of a job that died because a job it waits for ended `dead` or `cancelled`. */
export function dependencyError(depId: string, depState: string): string {
  return `dependency ${depId} ${depState === "cancelled" ? "was cancelled" : "died"}`;
}

/**
 * The refusal of an `after` id that is neither stored nor earlier in the batch (so no cycle can
 * ever form).
 */
export function unknownDependencyError(
  jobId: string,
  depId: string,
  later: boolean,
  batch: boolean,
): UsageError {
  if (!batch) {
    return new UsageError(
      `"after" names "${depId}", which is not a job; enqueue the jobs it waits for first ` +
        `(see queuectl list)`,
    );
  }
  return new UsageError(
    `job "${jobId}" waits for "${depId}", which ${
      later ? "comes later in the same batch" : "does not exist"
    }; enqueue the jobs it waits for first (nothing from this batch was stored)`,
  );
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
