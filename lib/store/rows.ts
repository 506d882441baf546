/**
 * Rows as every store returns them (snake_case columns, times as numbers of ms) → the types of
 * store.ts. Shared by the SQLite and PostgreSQL stores, whose tables have the same columns.
 */
import { ConflictError, UsageError } from "../errors.ts";
import { JOB_STATES, type JobState } from "../job.ts";
import type {
  Attempt,
  ExistingJob,
  Job,
  NewJob,
  NewSchedule,
  QueueInfo,
  RetryMark,
  Schedule,
  WorkerInfo,
} from "./store.ts";

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
    uniqueKey: (r.unique_key ?? null) as string | null,
    waitingOn: Number(r.waiting_on ?? 0),
    queue: r.queue as string,
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

/** Positions of the jobs of a batch that have a unique key. */
export function keyedIndexes(jobs: readonly NewJob[]): number[] {
  const at: number[] = [];
  for (let i = 0; i < jobs.length; i++) if (jobs[i].uniqueKey != null) at.push(i);
  return at;
}

/**
 * Sorts the keyed jobs of a batch (`at`), just inserted with their key's conflicts skipped, by
 * the holders of their keys read back in the same transaction (rows with `id`, `unique_key`,
 * `state`, `run_at`): a job held by itself was stored, one held by another job is `existing`, and
 * one whose key nobody holds (its holder finished between the insert and the read) is `unheld`,
 * for the caller to insert again.
 */
export function matchHolders(
  jobs: readonly NewJob[],
  at: readonly number[],
  holders: readonly Row[],
): { existing: ExistingJob[]; unheld: number[] } {
  const byKey = new Map(holders.map((h) => [h.unique_key as string, h]));
  const existing: ExistingJob[] = [];
  const unheld: number[] = [];
  for (const index of at) {
    const h = byKey.get(jobs[index].uniqueKey!);
    if (!h) unheld.push(index);
    else if (h.id !== jobs[index].id) {
      existing.push({
        index,
        id: h.id as string,
        state: h.state as JobState,
        runAt: Number(h.run_at),
      });
    }
  }
  return { existing, unheld };
}

/** The message for a retry refused because another job holds the job's unique key now. */
export function heldKeyError(jobId: string, key: string, holder: Row | undefined): ConflictError {
  const by = holder ? `job "${holder.id}" (${holder.state})` : "another job";
  return new ConflictError(
    `job "${jobId}" was not queued again: its unique key "${key}" is held by ${by}; ` +
      `wait for that job to finish or cancel it, then retry`,
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

/** A schedule as `addSchedule` stores it: not paused, never fired, created `now`. */
export function newSchedule(s: NewSchedule, now: number): Schedule {
  return {
    ...s,
    paused: false,
    lastRunAt: null,
    lastJobId: null,
    lastJobState: null,
    createdAt: now,
    updatedAt: now,
  };
}

/** A row of `schedules`, with `last_job_state` joined from the jobs table. */
export function toSchedule(r: Row): Schedule {
  return {
    name: r.name as string,
    cron: r.cron as string,
    tz: r.tz as string,
    catchUp: r.catch_up as Schedule["catchUp"],
    job: {
      command: r.command as string,
      maxRetries: r.max_retries as number,
      priority: r.priority as number,
      timeoutMs: r.timeout_ms as number,
      cwd: r.cwd as string,
      env: r.env === null ? null : JSON.parse(r.env as string),
      queue: r.queue as string,
      uniqueKey: (r.unique_key ?? null) as string | null,
    },
    paused: Boolean(r.paused),
    nextRunAt: r.next_run_at as number | null,
    lastRunAt: r.last_run_at as number | null,
    lastJobId: r.last_job_id as string | null,
    lastJobState: (r.last_job_state ?? null) as JobState | null,
    createdAt: r.created_at as number,
    updatedAt: r.updated_at as number,
  };
}

/**
 * The jobs of a batch that were stored (all but `existing`), for linking their dependencies: a
 * job that waits for a batch job skipped for its unique key waits for that key's holder instead.
 */
export function linkedJobs(jobs: readonly NewJob[], existing: readonly ExistingJob[]): NewJob[] {
  if (existing.length === 0) return [...jobs];
  const skipped = new Set(existing.map((e) => e.index));
  const holder = new Map(existing.map((e) => [jobs[e.index].id, e.id]));
  return jobs.filter((_, i) => !skipped.has(i)).map((j) =>
    j.after?.some((id) => holder.has(id))
      ? { ...j, after: [...new Set(j.after.map((id) => holder.get(id) ?? id))] }
      : j
  );
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
