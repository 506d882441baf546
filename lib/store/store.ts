/**
 * The storage contract: row types and the `Store` interface, the only view of storage the rest of
 * queuectl has. No SQL here; each implementation (sqlite.ts) holds all of its own.
 *
 * Every time is milliseconds since the Unix epoch, passed in by the caller as `now`: a store never
 * reads the clock to decide anything.
 */
import type { AttemptOutcome, JobState, Transition } from "../job.ts";

/** A job as stored. */
export interface Job {
  /** Enqueue order; breaks ties between jobs of equal priority and `runAt`. */
  seq: number;
  id: string;
  command: string;
  state: JobState;
  /** Runs started so far. */
  attempts: number;
  maxRetries: number;
  /** Higher runs first. */
  priority: number;
  /** Earliest time a pending or failed job may be claimed. */
  runAt: number;
  /** Run-time limit in ms; 0 means none. */
  timeoutMs: number;
  cwd: string;
  env: Record<string, string> | null;
  createdAt: number;
  updatedAt: number;
  /** Start of the latest attempt. */
  startedAt: number | null;
  /** End of the latest attempt. */
  finishedAt: number | null;
  exitCode: number | null;
  /** Why the latest attempt failed (the tail of its stderr, a timeout, a lost worker). */
  error: string | null;
  /** The worker that holds (processing) or last held the job. */
  workerId: string | null;
}

/** A job as `enqueue` hands it to the store: validated, with every default resolved. */
export type NewJob = Pick<
  Job,
  "id" | "command" | "maxRetries" | "priority" | "runAt" | "timeoutMs" | "cwd" | "env"
>;

/** One finished run of a job. */
export interface Attempt {
  jobId: string;
  /** 1-based number of the run. */
  attempt: number;
  workerId: string;
  startedAt: number;
  finishedAt: number;
  outcome: AttemptOutcome;
  exitCode: number | null;
  signal: string | null;
  error: string | null;
}

/** What a worker reports when a run ends. */
export type AttemptResult = Pick<Attempt, "outcome" | "exitCode" | "signal" | "error">;

/** A registered worker process. */
export interface WorkerInfo {
  id: string;
  pid: number;
  host: string;
  /** Pid of the `worker start` process that spawned it. */
  supervisorPid: number;
  startedAt: number;
  heartbeatAt: number;
  /** Set when the worker began a graceful stop: it claims nothing more and exits after its job. */
  stoppingAt: number | null;
  /** Set when the worker exited or was found dead. */
  stoppedAt: number | null;
  /** The job it holds now, derived from the jobs table. */
  currentJob: string | null;
}

/** Counts of jobs per state, plus the ready ones waiting for a future `runAt`. */
export type JobCounts = Record<JobState, number> & { scheduled: number };

/** A job held by a worker whose heartbeat is older than the lease. */
export interface StaleJob {
  job: Job;
  workerId: string;
}

export interface ListOptions {
  state?: JobState;
  limit: number;
  offset?: number;
}

export interface Store {
  /** Where the data lives, for messages (a file path or a redacted URL). */
  readonly location: string;

  /**
   * Inserts jobs in one transaction. Throws `ConflictError` naming the first id that exists
   * already (in the store or earlier in `jobs`); then nothing is stored.
   */
  enqueue(jobs: NewJob[], now: number): Promise<void>;

  /** The job with this id, or `null`. */
  getJob(id: string): Promise<Job | null>;

  /** Jobs in enqueue order, optionally of one state. */
  listJobs(options: ListOptions): Promise<Job[]>;

  /** Number of jobs matching `state` (all jobs without it). */
  countJobs(state?: JobState): Promise<number>;

  /** Finished runs of a job, oldest first. */
  listAttempts(jobId: string): Promise<Attempt[]>;

  /** Job counts per state; `scheduled` counts pending/failed jobs whose `runAt` is after `now`. */
  counts(now: number): Promise<JobCounts>;

  /**
   * Atomically claims up to `limit` ready jobs (pending or failed, `runAt <= now`) for `workerId`,
   * by priority (high first), then `runAt`, then `seq`. Each claimed job becomes `processing` with
   * `attempts + 1` and `startedAt = now`, exactly as `transition(job, {type:"claim"})` says. Two
   * callers never receive the same job.
   */
  claimNext(workerId: string, now: number, limit?: number): Promise<Job[]>;

  /**
   * Ends the current run of a job: applies `next` (from `transition`) and records the attempt, in
   * one transaction. Guarded: only when the job is `processing` and held by `workerId`. Returns the
   * updated job, or `null` when the guard did not match (the job was rescued or changed meanwhile);
   * then nothing is written.
   */
  finishAttempt(
    jobId: string,
    workerId: string,
    next: Transition,
    result: AttemptResult,
    now: number,
  ): Promise<Job | null>;

  /**
   * `finishAttempt`, then `claimNext(workerId, now, 1)`, in one transaction: one commit per job
   * for a busy worker instead of two. `finished` is `null` when the guard did not match (the
   * claim still happens); `claimed` is `null` when no job is ready.
   */
  finishAndClaim(
    jobId: string,
    workerId: string,
    next: Transition,
    result: AttemptResult,
    now: number,
  ): Promise<{ finished: Job | null; claimed: Job | null }>;

  /**
   * Applies a person's change (`retry`, `cancel`) to a job that is not running. Guarded by the
   * state and attempt count the caller read (`expected`): returns the updated job, or `null` when
   * the job changed since, even if it came back to the same state (claimed and failed again).
   */
  applyTransition(
    jobId: string,
    expected: Pick<Job, "state" | "attempts">,
    next: Transition,
    now: number,
  ): Promise<Job | null>;

  /** The earliest `runAt` among pending and failed jobs, or `null` when none is waiting. */
  nextRunAt(): Promise<number | null>;

  /**
   * Processing jobs whose worker's heartbeat is older than `now - leaseMs` or whose worker has
   * stopped. The caller fails each through `finishAttempt`, whose guard keeps a job that finished
   * meanwhile untouched.
   */
  findStaleJobs(now: number, leaseMs: number): Promise<StaleJob[]>;

  /** Processing jobs held by one worker (for the supervisor, when it sees that worker die). */
  jobsHeldBy(workerId: string): Promise<Job[]>;

  /**
   * Deletes jobs in `state` that finished before `finishedBefore`, with their attempts. Returns
   * the deleted jobs' `seq`s so the caller can remove their logs.
   */
  purge(state: JobState, finishedBefore: number): Promise<number[]>;

  /** Registers a worker process (or refreshes it, when the id exists). */
  registerWorker(
    worker: Omit<WorkerInfo, "currentJob" | "stoppingAt" | "stoppedAt">,
  ): Promise<void>;

  /** Renews a worker's lease. */
  heartbeat(workerId: string, now: number): Promise<void>;

  /**
   * Records that a worker began a graceful stop at `now` (it claims nothing more and exits after
   * its current job). Only the first call counts; a stopped or unknown worker is left unchanged.
   * Registering the id again clears it.
   */
  markWorkerStopping(workerId: string, now: number): Promise<void>;

  /** Marks a worker as stopped. */
  markWorkerStopped(workerId: string, now: number): Promise<void>;

  /** Workers not yet stopped, or all of them with `all`. */
  listWorkers(options?: { all?: boolean }): Promise<WorkerInfo[]>;

  /** Stored config values by canonical key. */
  getConfig(): Promise<Record<string, string>>;

  /** Stores one config value (already validated), or removes it when `value` is `null`. */
  setConfig(key: string, value: string | null): Promise<void>;

  /**
   * Resolves when the store may have changed (another process committed), or after `maxWaitMs`.
   * A cheap wake-up for idle workers; callers must still re-check, and `signal` cancels the wait.
   */
  waitForChange(maxWaitMs: number, signal?: AbortSignal): Promise<void>;

  /**
   * Throws `StoreError` when nothing could be written (a read-only file, directory or mount), so
   * a long-running process can refuse to start instead of failing on its first write.
   */
  assertWritable(): Promise<void>;

  /** Releases the connection and any watcher. */
  close(): Promise<void>;
}
