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
  /** Runs started so far, in the job's whole life: the latest attempt's number. Never reset. */
  attempts: number;
  /**
   * `attempts` when a person last gave the job a fresh retry budget (`retry` of a dead or
   * cancelled job); 0 before. The budget allows `1 + maxRetries` runs after it.
   */
  retryBase: number;
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
  /**
   * Names the output of the latest attempt: a fresh random key at every claim, so no two runs,
   * of this job or of any job of any database at the same path, ever share output. `null` before
   * the first claim.
   */
  outputKey: string | null;
  /**
   * At most one job with this key is pending, failed or processing at a time (`UNIQUE_KEY_STATES`);
   * `null` for a job without one.
   */
  uniqueKey: string | null;
  /**
   * How many of the jobs it waits for (`after`) have not completed. A job is claimed only at 0;
   * a pending job above 0 is shown as waiting. A job whose dependency died keeps its count (it is
   * how a retry of that dependency finds the jobs to bring back).
   */
  waitingOn: number;
  /** The named queue the job waits in (`default` unless given); see `QueueInfo`. */
  queue: string;
}

/** The states in which a job holds its unique key: no other job with the key may be in them. */
export const UNIQUE_KEY_STATES = ["pending", "failed", "processing"] as const;

/** The queue of a job enqueued without one. */
export const DEFAULT_QUEUE = "default";

/** A job as `enqueue` hands it to the store: validated, with every default resolved. */
export type NewJob =
  & Pick<
    Job,
    "id" | "command" | "maxRetries" | "priority" | "runAt" | "timeoutMs" | "cwd" | "env"
  >
  & Partial<Pick<Job, "uniqueKey">>
  & {
    /** `DEFAULT_QUEUE` when absent. */
    queue?: string;
    /**
     * Ids of jobs it waits for (no repeats, not its own): each must be stored already or come
     * earlier in the same batch.
     */
    after?: readonly string[];
  };

/**
 * A job of an `enqueue` batch that was not stored because its unique key was held: by a job in
 * the store, or by a job earlier in the same batch (then `state` is `pending`).
 */
export interface ExistingJob {
  /** Position of the refused job in the batch. */
  index: number;
  /** The job that holds the key. */
  id: string;
  state: JobState;
  runAt: number;
}

/** One end of a dependency, as `show` lists it. */
export interface DependencyLink {
  id: string;
  state: JobState;
}

/**
 * A named queue: its jobs per state and its rules. A queue exists while it has jobs or rules
 * (`default` always). Rules are kept by `setQueue` and hold for every worker on every host.
 */
export interface QueueInfo {
  name: string;
  counts: Record<JobState, number>;
  /** Its jobs are not claimed while paused; running ones finish. */
  paused: boolean;
  /** At most this many of its jobs are processing at once, over every worker; 0 = no limit. */
  concurrency: number;
}

/** One finished run of a job. */
export interface Attempt {
  jobId: string;
  /** 1-based number of the run, counted over the job's whole life (continues after a retry). */
  attempt: number;
  workerId: string;
  startedAt: number;
  finishedAt: number;
  outcome: AttemptOutcome;
  exitCode: number | null;
  signal: string | null;
  error: string | null;
  /** The key of this run's output (`Job.outputKey` while it ran). */
  outputKey: string | null;
  /** Something the run's owner noted beside its outcome, e.g. output that could not be stored. */
  note: string | null;
}

/** What a worker reports when a run ends. */
export type AttemptResult =
  & Pick<Attempt, "outcome" | "exitCode" | "signal" | "error">
  & Partial<Pick<Attempt, "note">>
  & {
    /** The run's last output, stored in the same transaction as the result (when it matches). */
    output?: OutputAppend | null;
  };

/** Bytes of one run's output at `offset` in all it printed; the store keeps its last `capBytes`. */
export interface OutputAppend {
  offset: number;
  data: Uint8Array;
  capBytes: number;
}

/** A stored piece of one run's output, at `offset` in all the run printed. */
export interface OutputPiece {
  offset: number;
  data: Uint8Array;
}

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
  /** The job it holds now (the one it started first), derived from the jobs table. */
  currentJob: string | null;
  /** How many jobs it holds now (more than one with `worker start --concurrency`). */
  runningJobs: number;
}

/**
 * Counts of jobs per state, plus the ready ones waiting for a future `runAt` (`scheduled`) and
 * the pending ones waiting for dependencies (`waiting`; never also counted as `scheduled`).
 */
export type JobCounts = Record<JobState, number> & { scheduled: number; waiting: number };

/**
 * How a drain sees an unfinished job: `ready_pending` / `ready_failed` (waiting on no job, due
 * by the drain's window), `later_pending` / `later_failed` (due after it), `processing`,
 * `waiting_live` (waiting on a job that is processing, or ready in an unpaused queue the drain
 * serves), `waiting_stuck` (waiting only on jobs that cannot move for the drain).
 */
export type DrainKind =
  | "ready_pending"
  | "ready_failed"
  | "later_pending"
  | "later_failed"
  | "processing"
  | "waiting_live"
  | "waiting_stuck";

/** One row of `drainBacklog`: how many jobs of `queue` are of `kind`. */
export interface DrainBacklog {
  queue: string;
  paused: boolean;
  kind: DrainKind;
  n: number;
}

/** A job held by a worker whose heartbeat is older than the lease. */
export interface StaleJob {
  job: Job;
  workerId: string;
}

/** How a stop asked through the store goes: like SIGTERM (`graceful`) or `worker stop --now`. */
export type StopMode = "graceful" | "now";

/** A job removed by `purge`, with the keys of its runs' output. */
export interface DeletedJob {
  id: string;
  outputKeys: string[];
}

/** A person gave a job a fresh retry budget (`retry` or `dlq retry` of a dead or cancelled job). */
export interface RetryMark {
  jobId: string;
  /** The budget restarted after this many runs: the next run was attempt `afterAttempt + 1`. */
  afterAttempt: number;
  /** The state the job was retried from (`dead`: from the DLQ, or `cancelled`). */
  fromState: JobState;
  retriedAt: number;
}

/** A job with everything stored about it, as `migrate` moves it from one store to another. */
export interface JobRecord {
  job: Job;
  attempts: Attempt[];
  retries: RetryMark[];
  /** Its runs' stored output. */
  output: Array<{ key: string; offset: number; data: Uint8Array }>;
  /** Ids of the jobs it waits for (all earlier in enqueue order). */
  after?: string[];
}

export interface ListOptions {
  /** Only jobs in this state. */
  state?: JobState;
  /** Only jobs of this queue. */
  queue?: string;
  /** Only jobs in one of these states (with `state`, jobs must match both). */
  states?: readonly JobState[];
  /**
   * Only jobs whose id, command or error contains this text, ignoring ASCII case. Matched by the
   * store on every row it walks (no index): fast while matches are common, a full scan otherwise.
   */
  search?: string;
  /** Newest (highest `seq`) first instead of enqueue order. */
  newestFirst?: boolean;
  limit: number;
  offset?: number;
}

/** How one run ended, as a worker hands it to `finishAndClaim`. */
export interface RunEnd {
  jobId: string;
  /** From `transition(job, eventForOutcome(result.outcome), …)`. */
  next: Transition;
  result: AttemptResult;
}

/** A recurring job (`queuectl schedule`): a cron expression in a time zone, and its job. */
export interface Schedule {
  /** Unique; each tick's job id is `NAME@<tick, ISO 8601 UTC>`. */
  name: string;
  cron: string;
  /** IANA time zone the expression is read in. */
  tz: string;
  /** After a downtime: run the last missed tick (`last`) or none. */
  catchUp: "last" | "none";
  /** What each tick enqueues (id and `runAt` are the tick's). */
  job: Omit<NewJob, "id" | "runAt">;
  paused: boolean;
  /** The next tick to fire; `null` when the expression has none left. */
  nextRunAt: number | null;
  /** The tick last fired, and the id of the job it enqueued. */
  lastRunAt: number | null;
  lastJobId: string | null;
  /** The state of that job now; `null` when it was removed or purged (or there is none). */
  lastJobState: JobState | null;
  createdAt: number;
  updatedAt: number;
}

/** A schedule as `schedule add` hands it to the store. */
export type NewSchedule = Pick<Schedule, "name" | "cron" | "tz" | "catchUp" | "job" | "nextRunAt">;

export interface Store {
  /** Where the data lives, for messages (a file path or a redacted URL). */
  readonly location: string;

  /**
   * Inserts jobs in one transaction. Throws `ConflictError` naming the first id that exists
   * already (in the store or earlier in `jobs`); then nothing is stored.
   *
   * A job whose `uniqueKey` is held (another job with that key is pending, failed or processing,
   * in the store or earlier in `jobs`) is not stored; it is returned as an `ExistingJob` naming
   * the holder, in batch order. Every job not returned was stored under its own id, so the result
   * is empty when no job has a key. Guarded by a unique index: concurrent enqueues from any
   * number of processes and hosts store one job per held key.
   *
   * A job with `after` waits (`waitingOn` > 0) until every job it names has completed; completed
   * ones count as done already. Throws `UsageError` (nothing stored) when one of them is neither
   * stored nor earlier in `jobs`, so no cycle can form. A job after a dead or cancelled job is
   * stored straight into `dead` with the error `dependency ID died` (`… was cancelled`), as if it
   * had been enqueued before that job ended; a retry of that job brings it back.
   */
  enqueue(jobs: NewJob[], now: number): Promise<ExistingJob[]>;

  /** The jobs `jobId` waits for and the jobs that wait for it, each in enqueue order. */
  dependencies(jobId: string): Promise<{ after: DependencyLink[]; dependants: DependencyLink[] }>;

  /** The job with this id, or `null`. */
  getJob(id: string): Promise<Job | null>;

  /** Jobs in enqueue order (or newest first), filtered by `options`, one page. */
  listJobs(options: ListOptions): Promise<Job[]>;

  /**
   * Number of jobs in `state` or in any of several states (all jobs without it). Cheap: read
   * from kept counts, never by walking the jobs.
   */
  countJobs(state?: JobState | readonly JobState[]): Promise<number>;

  /** Finished runs of a job, oldest first. */
  listAttempts(jobId: string): Promise<Attempt[]>;

  /** The times a person gave the job a fresh retry budget, oldest first. */
  listRetries(jobId: string): Promise<RetryMark[]>;

  /**
   * Job counts per state; `scheduled` counts pending/failed jobs whose `runAt` is after `now`,
   * `waiting` pending jobs waiting on a dependency.
   */
  counts(now: number): Promise<JobCounts>;

  /**
   * The unfinished jobs (pending, failed, processing) as a drain sees them, counted per queue
   * and `DrainKind`, in one statement (one snapshot). `dueBy` splits ready jobs from later
   * ones; `queues` (every queue when absent) are the ones the draining workers claim from, used
   * to tell whether a waiting job's dependency can still move. Walks the unfinished jobs.
   */
  drainBacklog(dueBy: number, queues?: readonly string[]): Promise<DrainBacklog[]>;

  /**
   * Atomically claims up to `limit` ready jobs (pending or failed, `runAt <= now`, waiting on no
   * dependency) for `workerId`,
   * by priority (high first), then `runAt`, then `seq`. Each claimed job becomes `processing` with
   * `attempts + 1` and `startedAt = now`, exactly as `transition(job, {type:"claim"})` says. Two
   * callers never receive the same job.
   *
   * Queues: only jobs of `queues` (every queue when absent), never of a paused queue, and never
   * more of a limited queue than its free slots (its limit minus its processing jobs, counted
   * inside the claim, so concurrent claimers on any host never exceed it together).
   */
  claimNext(
    workerId: string,
    now: number,
    limit?: number,
    queues?: readonly string[],
  ): Promise<Job[]>;

  /**
   * Ends the current run of a job: applies `next` (from `transition`) and records the attempt, in
   * one transaction. Guarded: only when the job is `processing` and held by `workerId`. Returns the
   * updated job, or `null` when the guard did not match (the job was rescued or changed meanwhile);
   * then nothing is written.
   *
   * In the same transaction, the jobs waiting for it: when it completes, each waits on one job
   * fewer; when it goes to `dead` (or `cancelled`), each pending one goes to `dead` with the error
   * `dependency ID died` (`dependency ID was cancelled`), and so on down the chain.
   */
  finishAttempt(
    jobId: string,
    workerId: string,
    next: Transition,
    result: AttemptResult,
    now: number,
  ): Promise<Job | null>;

  /**
   * A busy worker's one commit: `finishAttempt` for each of `ends` (in order), then
   * `claimNext(workerId, now, claimLimit)`, in one transaction, so a worker running several jobs
   * pays one commit for all the results that arrived together and the jobs that take their slots.
   * `finished[i]` is `null` when the guard of `ends[i]` did not match (then nothing is written for
   * it; the rest still is); `claimed` is empty when no job is ready or `claimLimit` is 0. The
   * claim follows the queue rules of `claimNext`, with the slots these ends freed.
   */
  finishAndClaim(
    workerId: string,
    ends: readonly RunEnd[],
    claimLimit: number,
    now: number,
    queues?: readonly string[],
  ): Promise<{ finished: (Job | null)[]; claimed: Job[] }>;

  /**
   * Every queue that has jobs or rules, `default` always, by name. The counts of `default` come
   * from the kept totals; those of other queues walk an index of their jobs (no other job).
   */
  listQueues(): Promise<QueueInfo[]>;

  /**
   * Sets a queue's rules (creating it when it has none): `paused`, `concurrency` (0 = no limit).
   * Fields left out keep their value. Claims that start after it returns follow the new rules;
   * jobs already running finish.
   */
  setQueue(name: string, rules: { paused?: boolean; concurrency?: number }): Promise<void>;

  /**
   * Applies a person's change (`retry`, `cancel`) to a job that is not running. Guarded by the
   * state and attempt count the caller read (`expected`): returns the updated job, or `null` when
   * the job changed since, even if it came back to the same state (claimed and failed again).
   * When `next.retryBase` is given, the fresh budget is recorded as a `RetryMark` (from
   * `expected.state`, at `now`) in the same transaction. Throws `ConflictError` (nothing
   * written) when the job would hold its unique key again but another job holds it now.
   *
   * Dependencies, in the same transaction: a job moved to `cancelled` takes its waiting
   * dependants to `dead` (as `finishAttempt` does); a `dead` or `cancelled` job moved back to
   * `pending` brings back the dependants that died because of it (those with no other dead or
   * cancelled dependency), down the chain. The guard also refuses (`null`) to move a job to
   * `pending` while one of the jobs it waits for is `dead` or `cancelled`.
   */
  applyTransition(
    jobId: string,
    expected: Pick<Job, "state" | "attempts">,
    next: Transition,
    now: number,
  ): Promise<Job | null>;

  /**
   * Cancels a running job: applies `next` (from `transition(job, {type: "cancel"})`, state
   * `cancelled`) and records the run as an attempt with outcome `cancelled`, `error` and no exit
   * code, in one transaction. Guarded: only when the job is `processing`, held by `workerId`, and
   * on run `attempt` (the run the caller read, so a later run of the same worker is never
   * cancelled by mistake). Returns the updated job (`finishedAt = now`), or `null` when the guard
   * did not match; then nothing is written. The worker learns of it when its own `finishAttempt`
   * or heartbeat finds the job no longer its own, and stops the command.
   */
  cancelRunning(
    jobId: string,
    workerId: string,
    attempt: number,
    next: Transition,
    error: string,
    now: number,
  ): Promise<Job | null>;

  /**
   * Deletes one job with its attempts and retry marks, only when it is in one of `states`.
   * Returns the deleted job, or `null` when there is no such job or it is in another state (then
   * nothing is deleted). The caller removes its output. A deleted job counts as done for the
   * jobs that wait for it (as `purge` does), and its dependency links go with it.
   */
  removeJob(jobId: string, states: readonly JobState[]): Promise<Job | null>;

  /**
   * The earliest `runAt` among pending and failed jobs that wait on no dependency, or `null` when
   * none is waiting.
   */
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
   * Deletes jobs in `state` that finished before `finishedBefore`, with their attempts and retry
   * marks. Returns the deleted jobs' output keys (every run's) so the caller can remove their
   * output.
   */
  purge(state: JobState, finishedBefore: number): Promise<DeletedJob[]>;

  /**
   * The output keys of a job's runs, oldest first, the running attempt's last; each with its
   * attempt number. Empty for an unknown job or one that never ran.
   */
  outputKeys(jobId: string): Promise<Array<{ attempt: number; key: string }>>;

  /** How many jobs `purge(state, finishedBefore)` would delete now; deletes nothing. */
  countPurgeable(state: JobState, finishedBefore: number): Promise<number>;

  /** Registers a worker process (or refreshes it, when the id exists). */
  registerWorker(
    worker: Omit<WorkerInfo, "currentJob" | "runningJobs" | "stoppingAt" | "stoppedAt">,
  ): Promise<void>;

  /** Up to `limit` jobs after `afterSeq` in enqueue order, each with all that is stored of it. */
  exportJobs(afterSeq: number, limit: number): Promise<JobRecord[]>;

  /**
   * Stores `records` as they are (ids, states, times, attempts, output; new `seq`s in their order),
   * in one transaction. For `migrate` into an empty store: a duplicate id fails the whole batch.
   */
  importJobs(records: JobRecord[]): Promise<void>;

  /**
   * The store's clock, in ms since the epoch: the database server's for PostgreSQL, this host's
   * for an SQLite file (which only this host's workers use). Leases are stamped and judged by it
   * alone (`registerWorker`, `heartbeat`, `findStaleJobs`), so hosts whose own clocks are off
   * agree on which worker is alive.
   */
  now(): Promise<number>;

  /**
   * Asks the supervisors of the live workers on `host` (all hosts without it) to stop them:
   * `graceful` (finish the running job) or `now` (interrupt it); `now` overrides `graceful`, never
   * the other way. Each supervisor looks every second (`stopRequestFor`). Returns the workers
   * asked. Registering a worker id again clears its request.
   */
  requestStop(target: { host?: string }, mode: StopMode, now: number): Promise<WorkerInfo[]>;

  /** The strongest stop request for the live workers of one supervisor, or `null`. */
  stopRequestFor(host: string, supervisorPid: number): Promise<StopMode | null>;

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

  /**
   * Appends output of the run `key` of job `jobId`, then drops the run's pieces that lie wholly
   * before its last `capBytes`. Output lives with its job: `purge` and `removeJob` delete it.
   */
  appendOutput(jobId: string, key: string, output: OutputAppend): Promise<void>;

  /**
   * The stored output of the run `key` that ends after `fromOffset`, oldest first. A first piece
   * starting after `fromOffset` means output in between was dropped by the cap.
   */
  readOutput(key: string, fromOffset?: number): Promise<OutputPiece[]>;

  /**
   * Throws `StoreError` when the store this process opened is no longer the one its location
   * names (the database file was deleted or replaced), so a long-running worker stops instead of
   * working on data nobody else sees.
   */
  assertSameStore(): Promise<void>;

  /** Stores a new schedule, not paused. Returns `false` (storing nothing) when the name exists. */
  addSchedule(schedule: NewSchedule, now: number): Promise<boolean>;

  /**
   * Stores schedules as they are (paused or not, next and last tick, times), in one transaction.
   * For `migrate` into an empty store: a name that exists fails the whole call.
   */
  importSchedules(schedules: readonly Schedule[]): Promise<void>;

  /** The schedule with this name, or `null`. */
  getSchedule(name: string): Promise<Schedule | null>;

  /** Every schedule, by name. */
  listSchedules(): Promise<Schedule[]>;

  /** Deletes a schedule (its jobs stay). Returns `false` when there is none of that name. */
  removeSchedule(name: string): Promise<boolean>;

  /**
   * Pauses a schedule (`paused`), or resumes a paused one with `nextRunAt` as its next tick (the
   * caller's first tick after `now`: ticks that passed while paused never run). Returns the
   * schedule as it is now, or `null` when there is none; pausing a paused schedule or resuming a
   * running one changes nothing.
   */
  setSchedulePaused(
    name: string,
    paused: boolean,
    nextRunAt: number | null,
    now: number,
  ): Promise<Schedule | null>;

  /** Schedules that are not paused and whose `nextRunAt` is at or before `now`. Cheap: indexed. */
  dueSchedules(now: number): Promise<Schedule[]>;

  /**
   * Fires one tick of a schedule, at most once however many supervisors try: in one transaction,
   * moves the schedule's `nextRunAt` from `dueAt` to `nextRunAt`, guarded by `dueAt` (a
   * compare-and-set) and by the schedule not being paused, then enqueues `job` (the tick's job,
   * its id derived from the schedule and the tick) unless a job with that id exists or another
   * job holds its unique key, and records it as the last run (`lastRunAt = job.runAt`) when it is
   * stored (or was already). With `job` null the tick is skipped: only
   * `nextRunAt` moves. Returns `false` when the guard did not match (another supervisor fired it,
   * or the schedule was paused, removed or changed); then nothing is written.
   */
  fireSchedule(
    name: string,
    dueAt: number,
    job: NewJob | null,
    nextRunAt: number | null,
    now: number,
  ): Promise<boolean>;

  /** Releases the connection and any watcher. */
  close(): Promise<void>;

  /**
   * The totals for metrics (see `MetricTotals`). Walks every attempt and every finished job: a
   * scrape's cost grows with what is stored (purge keeps it bounded).
   */
  metricTotals(): Promise<MetricTotals>;

  /**
   * Jobs by the minute in which their latest run ended, for minutes starting at or after `since`,
   * counted by the state they are in now (`completed`, `failed`, `dead`), oldest first. Read from
   * the jobs as they are: a job that failed and later completed counts once, as completed.
   */
  finishedPerMinute(since: number): Promise<MinuteCount[]>;

  /**
   * Jobs newest first (highest `seq`) or in enqueue order (`sort: "oldest"`), filtered by state
   * and search text, past the cursor (`beforeSeq` / `afterSeq`). Each page costs the same however
   * deep it is (no offset); a search walks rows until the page is full (bound the walk with both
   * `beforeSeq` and `afterSeq` to bound its cost).
   */
  pageJobs(options: JobPageOptions): Promise<Job[]>;

  /**
   * How many jobs `pageJobs` would list with this filter over all pages. Without `search` or a
   * `seq` range, read from the kept counts; otherwise the matching rows are walked (bound the
   * walk with `afterSeq`/`beforeSeq` to bound its cost).
   */
  countPage(options: JobCountOptions): Promise<number>;

  /**
   * How long the oldest ready job (pending or failed, `runAt <= now`) has waited, in ms (`now -
   * runAt`), or 0 when none is ready.
   */
  readyLatencyMs(now: number): Promise<number>;
}

/**
 * Upper bounds, in seconds, of the buckets of the stores' histograms (attempt duration, queue
 * wait); one more bucket holds everything above the last. Fixed by the migrations that count them:
 * never change this list.
 */
export const METRIC_BUCKETS_SECONDS: readonly number[] = [
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
  30,
  60,
  300,
  1800,
  3600,
];

/** Observations per bucket of `METRIC_BUCKETS_SECONDS` (not cumulative; the last is above all). */
export interface HistogramCounts {
  /** `METRIC_BUCKETS_SECONDS.length + 1` counts. */
  buckets: number[];
  sumSeconds: number;
}

/**
 * Totals for `queuectl metrics`: what the stored rows say, plus what deleted rows said (kept by
 * the stores when `purge` or `remove` deletes them), so deleting jobs never lowers a total.
 */
export interface MetricTotals {
  /** Jobs ever stored: the jobs there are plus every job deleted since the totals were kept. */
  enqueuedTotal: number;
  /** Finished attempts per outcome. */
  attemptsByOutcome: Partial<Record<AttemptOutcome, number>>;
  /** `finishedAt - startedAt` of every finished attempt. */
  attemptDuration: HistogramCounts;
  /**
   * Every claim's wait, retries included, kept as a running total as each claim happens: the
   * job's start minus the later of its `runAt` and `createdAt`.
   */
  queueWait: HistogramCounts;
}

/** Jobs whose latest run ended in one minute and that are in one state now. */
export interface MinuteCount {
  /** Start of the minute, ms since the epoch. */
  minute: number;
  state: JobState;
  n: number;
}

/** One page of jobs, for browsing a large queue with keyset paging (no offset). */
export interface JobPageOptions {
  state?: JobState;
  /** Only jobs of this queue. */
  queue?: string;
  /** Only jobs in one of these states (with `state`, jobs must match both). */
  states?: readonly JobState[];
  /** Only jobs whose id or command contains this text, ignoring ASCII case. */
  search?: string;
  /** `newest` (default): highest `seq` first; `oldest`: enqueue order. */
  sort?: "newest" | "oldest";
  /** Only jobs with a smaller `seq` (the last `seq` of the previous `newest` page). */
  beforeSeq?: number;
  /** Only jobs with a larger `seq` (the last `seq` of the previous `oldest` page). */
  afterSeq?: number;
  limit: number;
}

/** Which jobs `countPage` counts: a page's filter, within an optional range of `seq`. */
export interface JobCountOptions {
  state?: JobState;
  /** Only jobs of this queue. */
  queue?: string;
  states?: readonly JobState[];
  search?: string;
  /** Only jobs with `seq > afterSeq`. */
  afterSeq?: number;
  /** Only jobs with `seq < beforeSeq`. */
  beforeSeq?: number;
}
