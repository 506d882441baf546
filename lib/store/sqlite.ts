/**
 * The SQLite store, on Deno's built-in `node:sqlite`. Every SQLite statement of queuectl lives in
 * this file, migrations included. No decisions here: transitions come from `lib/job.ts`.
 *
 * Connections use WAL mode and a busy timeout. `durable: true` (CLI commands, so an `enqueue` that
 * exited 0 survives power loss) sets `synchronous=FULL`; workers use `NORMAL`, where a commit lost
 * to power loss only means a job runs again (at-least-once allows that).
 */
import { DatabaseSync, type SQLInputValue, type StatementSync } from "node:sqlite";
import { join } from "../paths.ts";
import { ConflictError, QueuectlError, StoreError } from "../errors.ts";
import { FINISHED_STATES, isIn, JOB_STATES, type JobState, type Transition } from "../job.ts";
import {
  dependencyError,
  duplicateIdError,
  heldKeyError,
  keyedIndexes,
  linkedJobs,
  matchHolders,
  newSchedule,
  queueInfos,
  toAttempt,
  toJob,
  toRetryMark,
  toSchedule,
  toWorker,
  unknownDependencyError,
} from "./rows.ts";
import type {
  Attempt,
  AttemptResult,
  DeletedJob,
  DependencyLink,
  DrainBacklog,
  DrainKind,
  ExistingJob,
  Job,
  JobCounts,
  JobRecord,
  ListOptions,
  NewJob,
  NewSchedule,
  OutputAppend,
  OutputPiece,
  RetryMark,
  RunEnd,
  Schedule,
  StaleJob,
  StopMode,
  Store,
  WorkerInfo,
} from "./store.ts";
import type { JobCountOptions, JobPageOptions, MetricTotals, MinuteCount } from "./store.ts";
import { DEFAULT_QUEUE, type QueueInfo } from "./store.ts";
import { type MetricRow, metricTotalsFrom } from "./metric_rows.ts";

/**
 * Bucket bounds of the metrics migration, in seconds. Part of that released migration: never
 * change them (store.ts's `METRIC_BUCKETS_SECONDS` is the same list, for readers).
 */
const METRICS_MIGRATION_BUCKETS = [
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

/** SQL for the index of the bucket that holds `expr` seconds (the last one is above all bounds). */
function bucketOf(expr: string): string {
  const whens = METRICS_MIGRATION_BUCKETS.map((le, i) => `WHEN ${expr} <= ${le} THEN ${i}`);
  return `(CASE ${whens.join(" ")} ELSE ${METRICS_MIGRATION_BUCKETS.length} END)`;
}

/** An attempt's run time in seconds; `row` is "old." or "new." in a trigger, "" in a query. */
const duration = (row: string) => `max(${row}finished_at - ${row}started_at, 0) / 1000.0`;
const DURATION = duration("old.");

/**
 * A job's last queue wait in seconds: its latest start minus the later of its run_at and
 * created_at. Only for processing, completed and dead jobs, whose run_at is still the one they
 * were claimed at (a failed job's is its next retry's).
 */
const wait = (row: string) =>
  `max(${row}started_at - max(${row}run_at, ${row}created_at), 0) / 1000.0`;
const WAIT = wait("old.");

/** Where a job holds its unique key: the predicate of the partial unique index `jobs_unique_key`. */
const KEY_HELD = "unique_key IS NOT NULL AND state IN ('pending','failed','processing')";

/** Append-only: a released migration is never edited. Index i migrates to user_version i + 1. */
const MIGRATIONS: string[] = [
  `CREATE TABLE jobs (
     seq INTEGER PRIMARY KEY,
     id TEXT NOT NULL UNIQUE,
     command TEXT NOT NULL,
     state TEXT NOT NULL CHECK (state IN
       ('pending','processing','completed','failed','dead','cancelled')),
     attempts INTEGER NOT NULL DEFAULT 0,
     max_retries INTEGER NOT NULL,
     priority INTEGER NOT NULL DEFAULT 0,
     run_at INTEGER NOT NULL,
     timeout_ms INTEGER NOT NULL DEFAULT 0,
     cwd TEXT NOT NULL,
     env TEXT,
     created_at INTEGER NOT NULL,
     updated_at INTEGER NOT NULL,
     started_at INTEGER,
     finished_at INTEGER,
     exit_code INTEGER,
     error TEXT,
     worker_id TEXT
   );
   CREATE INDEX jobs_ready ON jobs (priority DESC, run_at, seq)
     WHERE state IN ('pending','failed');
   CREATE INDEX jobs_state ON jobs (state, finished_at);
   CREATE INDEX jobs_worker ON jobs (worker_id) WHERE state = 'processing';
   CREATE TABLE attempts (
     job_id TEXT NOT NULL,
     attempt INTEGER NOT NULL,
     worker_id TEXT NOT NULL,
     started_at INTEGER NOT NULL,
     finished_at INTEGER NOT NULL,
     outcome TEXT NOT NULL,
     exit_code INTEGER,
     signal TEXT,
     error TEXT
   );
   CREATE INDEX attempts_job ON attempts (job_id, finished_at);
   CREATE TABLE workers (
     id TEXT PRIMARY KEY,
     pid INTEGER NOT NULL,
     host TEXT NOT NULL,
     supervisor_pid INTEGER NOT NULL,
     started_at INTEGER NOT NULL,
     heartbeat_at INTEGER NOT NULL,
     stopped_at INTEGER
   );
   CREATE TABLE config (key TEXT PRIMARY KEY, value TEXT NOT NULL);`,
  // Counts per state, so `status` reads six rows instead of walking an index of a million jobs.
  // A trigger follows every change of state; enqueue and purge adjust the counts themselves
  // (a per-row insert trigger would slow a 100,000-job enqueue).
  `CREATE TABLE job_counts (state TEXT PRIMARY KEY, n INTEGER NOT NULL);
   INSERT INTO job_counts (state, n)
     SELECT s.value, (SELECT count(*) FROM jobs WHERE state = s.value)
     FROM json_each('["pending","processing","completed","failed","dead","cancelled"]') s;
   CREATE TRIGGER jobs_count_state AFTER UPDATE OF state ON jobs
     WHEN old.state <> new.state BEGIN
       UPDATE job_counts SET n = n - 1 WHERE state = old.state;
       UPDATE job_counts SET n = n + 1 WHERE state = new.state;
     END;`,
  // Output named by a random key per run, never by seq (which restarts with a recreated file and
  // is reused after a purge). Runs of an earlier version keep their seq-named file.
  `ALTER TABLE jobs ADD COLUMN output_key TEXT;
   ALTER TABLE attempts ADD COLUMN output_key TEXT;
   ALTER TABLE attempts ADD COLUMN note TEXT;
   UPDATE jobs SET output_key = CAST(seq AS TEXT) WHERE attempts > 0 OR state = 'processing';
   UPDATE attempts SET output_key =
     (SELECT CAST(seq AS TEXT) FROM jobs WHERE jobs.id = attempts.job_id);`,
  // Attempt numbers continue after a person's retry; the retry budget restarts at `retry_base`,
  // and each restart is kept for `show`.
  `ALTER TABLE jobs ADD COLUMN retry_base INTEGER NOT NULL DEFAULT 0;
   CREATE TABLE retries (
     job_id TEXT NOT NULL,
     after_attempt INTEGER NOT NULL,
     from_state TEXT NOT NULL,
     retried_at INTEGER NOT NULL
   );
   CREATE INDEX retries_job ON retries (job_id, retried_at);`,
  // When a worker began to drain (a graceful stop): `worker list` shows it as stopping.
  `ALTER TABLE workers ADD COLUMN stopping_at INTEGER;`,
  // Output lives with its job, in pieces of each run keyed by the run's output key; the store keeps
  // the tail within the cap. Output files of earlier versions stay in <db>-logs/, unread.
  `CREATE TABLE outputs (
     key TEXT NOT NULL,
     byte_offset INTEGER NOT NULL,
     job_id TEXT NOT NULL,
     data BLOB NOT NULL,
     PRIMARY KEY (key, byte_offset)
   );
   CREATE INDEX outputs_job ON outputs (job_id);`,
  // A stop asked through the store, for supervisors on other hosts (worker stop --host).
  `ALTER TABLE workers ADD COLUMN stop_request TEXT;`, // What purge and remove delete, kept for metrics: the deleted jobs, their attempts by outcome
  // and duration bucket, and their last claim's queue wait. Metrics add these to what the rows
  // that are still there say, so deleting rows never lowers a total. Triggers on deletes only:
  // claims and finished runs pay nothing.
  `CREATE TABLE metric_retired (
     name TEXT NOT NULL,
     label TEXT NOT NULL,
     bucket INTEGER NOT NULL,
     n INTEGER NOT NULL,
     sum REAL NOT NULL DEFAULT 0,
     PRIMARY KEY (name, label, bucket)
   );
   CREATE TRIGGER attempts_retire AFTER DELETE ON attempts BEGIN
     INSERT INTO metric_retired (name, label, bucket, n, sum) VALUES
       ('duration', old.outcome, ${bucketOf(DURATION)}, 1, ${DURATION})
       ON CONFLICT (name, label, bucket) DO UPDATE SET n = n + 1, sum = sum + excluded.sum;
   END;
   CREATE TRIGGER jobs_retire AFTER DELETE ON jobs BEGIN
     INSERT INTO metric_retired (name, label, bucket, n, sum) VALUES ('deleted', '', 0, 1, 0)
       ON CONFLICT (name, label, bucket) DO UPDATE SET n = n + 1;
     INSERT INTO metric_retired (name, label, bucket, n, sum)
       SELECT 'wait', '', ${bucketOf(WAIT)}, 1, ${WAIT}
       WHERE old.started_at IS NOT NULL AND old.state IN ('processing','completed','dead')
       ON CONFLICT (name, label, bucket) DO UPDATE SET n = n + 1, sum = sum + excluded.sum;
   END;`,
  // Metrics kept as running totals, so a scrape reads a few dozen rows instead of every attempt
  // and job: each attempt's duration as it is recorded, each claim's queue wait as the job is
  // claimed (every claim, retries too: a histogram's counts only grow), both by the transaction
  // that records them (`#observe`: per-row triggers cost a claim and a finish a third more), and
  // each deleted job once. What the rows and metric_retired held so far is folded in first.
  `CREATE TABLE metric_totals (
     name TEXT NOT NULL,
     label TEXT NOT NULL,
     bucket INTEGER NOT NULL,
     n INTEGER NOT NULL,
     sum REAL NOT NULL DEFAULT 0,
     PRIMARY KEY (name, label, bucket)
   );
   INSERT INTO metric_totals (name, label, bucket, n, sum)
     SELECT name, label, bucket, sum(n), sum(sum) FROM (
       SELECT 'duration' AS name, outcome AS label, ${bucketOf(duration(""))} AS bucket,
         count(*) AS n, sum(${duration("")}) AS sum
       FROM attempts GROUP BY 2, 3
       UNION ALL
       SELECT 'wait', '', ${bucketOf(wait(""))}, count(*), sum(${wait("")}) FROM jobs
       WHERE state IN ('processing','completed','dead') AND started_at IS NOT NULL GROUP BY 3
       UNION ALL
       SELECT name, label, bucket, n, sum FROM metric_retired)
     GROUP BY 1, 2, 3;
   DROP TRIGGER attempts_retire;
   DROP TRIGGER jobs_retire;
   DROP TABLE metric_retired;
   CREATE TRIGGER jobs_deleted AFTER DELETE ON jobs BEGIN
     INSERT INTO metric_totals (name, label, bucket, n, sum) VALUES ('deleted', '', 0, 1, 0)
       ON CONFLICT (name, label, bucket) DO UPDATE SET n = n + 1;
   END;`,
  // Recurring jobs: a cron expression, its zone, and the job each tick enqueues. `next_run_at`
  // is the compare-and-set that lets one supervisor alone fire a tick.
  `CREATE TABLE schedules (
     name TEXT PRIMARY KEY,
     cron TEXT NOT NULL,
     tz TEXT NOT NULL,
     catch_up TEXT NOT NULL CHECK (catch_up IN ('last','none')),
     command TEXT NOT NULL,
     max_retries INTEGER NOT NULL,
     priority INTEGER NOT NULL,
     timeout_ms INTEGER NOT NULL,
     cwd TEXT NOT NULL,
     env TEXT,
     paused INTEGER NOT NULL DEFAULT 0,
     next_run_at INTEGER,
     last_run_at INTEGER,
     last_job_id TEXT,
     created_at INTEGER NOT NULL,
     updated_at INTEGER NOT NULL
   );
   CREATE INDEX schedules_due ON schedules (next_run_at) WHERE paused = 0;`,
  // Unique jobs: one job per key among the pending, failed and processing ones. Jobs without a
  // key stay out of the index.
  `ALTER TABLE jobs ADD COLUMN unique_key TEXT;
   CREATE UNIQUE INDEX jobs_unique_key ON jobs (unique_key) WHERE ${KEY_HELD};`,
  // Dependencies (`after`): one row per (job, job it waits for). `waiting_on` counts a job's
  // dependencies not yet completed; the ready index leaves out jobs above 0, so a claim never
  // walks past waiting jobs. `has_dependants` spares a job without dependants (nearly all) any
  // look-up when it finishes.
  `ALTER TABLE jobs ADD COLUMN waiting_on INTEGER NOT NULL DEFAULT 0;
   ALTER TABLE jobs ADD COLUMN has_dependants INTEGER NOT NULL DEFAULT 0;
   CREATE TABLE job_deps (
     job_id TEXT NOT NULL,
     dep_id TEXT NOT NULL,
     PRIMARY KEY (job_id, dep_id)
   );
   CREATE INDEX job_deps_dep ON job_deps (dep_id);
   DROP INDEX jobs_ready;
   CREATE INDEX jobs_ready ON jobs (priority DESC, run_at, seq)
     WHERE state IN ('pending','failed') AND waiting_on = 0;
   CREATE INDEX jobs_waiting ON jobs (seq) WHERE state = 'pending' AND waiting_on > 0;`,
  // Named queues. The ready jobs by queue, so a claim that skips a paused or full queue never
  // walks its jobs; the jobs of queues other than `default` by state, for their counts (the
  // default queue's are the kept totals minus these, so its jobs pay for neither index but the
  // first). A queue's rules live in `queues`, a row only once a rule was set.
  `ALTER TABLE jobs ADD COLUMN queue TEXT NOT NULL DEFAULT 'default';
   CREATE INDEX jobs_ready_queue ON jobs (queue, priority DESC, run_at, seq)
     WHERE state IN ('pending','failed') AND waiting_on = 0;
   CREATE INDEX jobs_queue ON jobs (queue, state) WHERE queue <> 'default';
   CREATE TABLE queues (
     name TEXT PRIMARY KEY,
     paused INTEGER NOT NULL DEFAULT 0,
     concurrency INTEGER NOT NULL DEFAULT 0
   );`,
  // A schedule's jobs may go to a named queue, and carry a unique key (then a tick is skipped
  // while the job of an earlier tick still holds it).
  `ALTER TABLE schedules ADD COLUMN queue TEXT NOT NULL DEFAULT 'default';
   ALTER TABLE schedules ADD COLUMN unique_key TEXT;`,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

const WAKE_BYTE = new Uint8Array([10]);

/** Device and inode of the file at `path` ("dev:ino"), or `null` when there is none. */
function fileIdentity(path: string): string | null {
  try {
    const st = Deno.statSync(path);
    return st.ino === null ? null : `${st.dev}:${st.ino}`;
  } catch {
    return null;
  }
}

/** The columns `enqueue` fills from a `NewJob`, each with how its value is read. */
const NEW_JOB_COLUMNS: ReadonlyArray<readonly [string, (j: NewJob) => SQLInputValue]> = [
  ["id", (j) => j.id],
  ["command", (j) => j.command],
  ["max_retries", (j) => j.maxRetries],
  ["priority", (j) => j.priority],
  ["run_at", (j) => j.runAt],
  ["timeout_ms", (j) => j.timeoutMs],
  ["cwd", (j) => j.cwd],
  ["env", (j) => j.env === null ? null : JSON.stringify(j.env)],
  ["unique_key", (j) => j.uniqueKey ?? null],
  ["queue", (j) => j.queue ?? DEFAULT_QUEUE],
];

/**
 * The distinct priorities of pending and failed jobs, highest first, as the table `p(pri)` (with a
 * final NULL row): one seek of the ready index per priority, however many jobs wait.
 */
const READY_PRIORITIES = `WITH RECURSIVE p(pri) AS (
   SELECT (SELECT priority FROM jobs INDEXED BY jobs_ready WHERE state IN ('pending','failed')
     AND waiting_on = 0 ORDER BY priority DESC LIMIT 1)
   UNION ALL
   SELECT (SELECT priority FROM jobs INDEXED BY jobs_ready WHERE state IN ('pending','failed')
     AND waiting_on = 0 AND priority < p.pri ORDER BY priority DESC LIMIT 1)
   FROM p WHERE p.pri IS NOT NULL)`;

/**
 * The distinct queues of pending and failed jobs, as rows `name`: one seek of the ready index by
 * queue per queue, however many jobs wait.
 */
const READY_QUEUES = `WITH RECURSIVE q(name) AS (
   SELECT (SELECT queue FROM jobs INDEXED BY jobs_ready_queue WHERE state IN ('pending','failed')
     AND waiting_on = 0 ORDER BY queue LIMIT 1)
   UNION ALL
   SELECT (SELECT queue FROM jobs INDEXED BY jobs_ready_queue WHERE state IN ('pending','failed')
     AND waiting_on = 0 AND queue > q.name ORDER BY queue LIMIT 1) FROM q WHERE q.name IS NOT NULL)
   SELECT name FROM q WHERE name IS NOT NULL`;

/** An attempt's run time as a sample of the duration histogram: [outcome, seconds]. */
function durationSample(outcome: string, startedAt: number, finishedAt: number): [string, number] {
  return [outcome, Math.max(finishedAt - startedAt, 0) / 1000];
}

/** Claimed jobs in the order they were chosen (RETURNING gives them in table order). */
function claimOrder(a: Job, b: Job): number {
  return b.priority - a.priority || a.runAt - b.runAt || a.seq - b.seq;
}

/** Up to this many jobs of the listed states are found by the state index and sorted. */
const INDEX_SORT_MAX = 10_000;

type Row = Record<string, SQLInputValue>;

/** A schedule's row, as `scheduleRow` gives its values. */
const INSERT_SCHEDULE = `INSERT INTO schedules (name, cron, tz, catch_up, command, max_retries,
    priority, timeout_ms, cwd, env, queue, unique_key, paused, next_run_at, last_run_at,
    last_job_id, created_at, updated_at)
  VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`;

function scheduleRow(s: Schedule): SQLInputValue[] {
  return [
    s.name,
    s.cron,
    s.tz,
    s.catchUp,
    s.job.command,
    s.job.maxRetries,
    s.job.priority,
    s.job.timeoutMs,
    s.job.cwd,
    s.job.env === null ? null : JSON.stringify(s.job.env),
    s.job.queue ?? DEFAULT_QUEUE,
    s.job.uniqueKey ?? null,
    s.paused ? 1 : 0,
    s.nextRunAt,
    s.lastRunAt,
    s.lastJobId,
    s.createdAt,
    s.updatedAt,
  ];
}

/** A schedule with the state of the job its last tick enqueued. */
const SCHEDULE_SELECT = `SELECT s.*, j.state AS last_job_state FROM schedules s
  LEFT JOIN jobs j ON j.id = s.last_job_id`;

export interface SqliteOptions {
  /** `synchronous=FULL` when true (default), `NORMAL` otherwise. */
  durable?: boolean;
}

/** Turns SQLite's errors into one-line messages that say what to do. */
export function describeSqliteError(e: unknown, path: string): Error {
  if (!(e instanceof Error) || e instanceof QueuectlError) {
    return e as Error;
  }
  const m = e.message;
  if (/file is not a database|malformed/i.test(m)) {
    return new StoreError(
      `${path} is not a usable queuectl database (${m}); move it away, or pass --db to use another file`,
      "corrupt",
    );
  }
  if (/readonly database|read-only/i.test(m)) {
    return new StoreError(
      `cannot write ${path}: it is read-only; fix its permissions (and its directory's), or pass --db`,
      "read_only",
    );
  }
  if (/unable to open database/i.test(m)) {
    return new StoreError(
      `cannot open ${path}: check that its directory exists and is writable, or pass --db`,
      "missing",
    );
  }
  if (/disk is full|SQLITE_FULL/i.test(m)) {
    return new StoreError(
      `cannot write ${path}: the disk is full; free some space and try again`,
      "full",
    );
  }
  if (/database is locked|busy/i.test(m)) {
    return new StoreError(
      `${path} stayed locked by another process for too long; try again in a moment`,
      "busy",
    );
  }
  if (/disk I\/O error/i.test(m)) {
    return new StoreError(`cannot read or write ${path}: disk I/O error (${m})`, "io");
  }
  return e;
}

export class SqliteStore implements Store {
  readonly location: string;
  #db: DatabaseSync;
  #stmts = new Map<string, StatementSync>();
  #watcher: Deno.FsWatcher | null = null;
  #waiters = new Set<() => void>();
  #dataVersion = -1;
  /** The database file this process opened ("dev:ino"), to notice it being replaced. */
  #identity: string | null = null;
  /**
   * Set inside a transaction that made a job ready for other workers (a completed dependency):
   * they are woken once it commits, never before (a woken worker could miss the change).
   */
  #wakeAfterCommit = false;

  private constructor(path: string, db: DatabaseSync) {
    this.location = path;
    this.#db = db;
  }

  /** Opens (creating when missing) the database at `path` and brings its schema up to date. */
  static open(path: string, options: SqliteOptions = {}): SqliteStore {
    let db: DatabaseSync;
    try {
      db = new DatabaseSync(path, { timeout: 10_000 });
    } catch (e) {
      throw describeSqliteError(e, path);
    }
    const store = new SqliteStore(path, db);
    try {
      store.#identity = fileIdentity(path);
      store.#setup(options.durable ?? true);
    } catch (e) {
      db.close();
      throw describeSqliteError(e, path);
    }
    return store;
  }

  #setup(durable: boolean) {
    const db = this.#db;
    // A schema that is current (every open but the first) needs one cheap read: user_version.
    let version = db.prepare("PRAGMA user_version").get()!.user_version as number;
    if (version !== SCHEMA_VERSION) version = this.#checkSchema();
    const mode = db.prepare("PRAGMA journal_mode").get()!.journal_mode;
    if (mode !== "wal") db.exec("PRAGMA journal_mode=WAL");
    db.exec(
      `PRAGMA synchronous=${durable ? "FULL" : "NORMAL"}; PRAGMA journal_size_limit=67108864`,
    );
    if (version < SCHEMA_VERSION) {
      this.#tx(() => {
        // Re-read inside the write lock: another process may have migrated meanwhile.
        const v = db.prepare("PRAGMA user_version").get()!.user_version as number;
        for (let i = v; i < SCHEMA_VERSION; i++) db.exec(MIGRATIONS[i]);
        db.exec(`PRAGMA user_version=${SCHEMA_VERSION}`);
      });
    }
  }

  /**
   * The schema version of a file that is new, older or newer than this queuectl, or not ours:
   * refuses a newer one and another program's database.
   */
  #checkSchema(): number {
    const db = this.#db;
    // Both read in one read transaction: another process creating the schema at this moment
    // commits its tables and its user_version together, so they are seen together or not at all.
    db.exec("BEGIN");
    let version: number;
    let objects: number;
    try {
      version = db.prepare("PRAGMA user_version").get()!.user_version as number;
      objects = db.prepare("SELECT count(*) AS n FROM sqlite_master").get()!.n as number;
    } finally {
      if (db.isTransaction) db.exec("COMMIT");
    }
    if (version > SCHEMA_VERSION) {
      throw new StoreError(
        `${this.location} has schema version ${version}, newer than this queuectl understands ` +
          `(${SCHEMA_VERSION}); upgrade queuectl, or pass --db to use another file`,
        "too_new",
      );
    }
    if (version === 0 && objects > 0) {
      throw new StoreError(
        `${this.location} is an SQLite database of another program; ` +
          `pass --db to use another file (queuectl leaves this one untouched)`,
        "not_ours",
      );
    }
    return version;
  }

  #stmt(sql: string): StatementSync {
    let s = this.#stmts.get(sql);
    if (!s) {
      s = this.#db.prepare(sql);
      this.#stmts.set(sql, s);
    }
    return s;
  }

  #all(sql: string, ...params: SQLInputValue[]): Row[] {
    return this.#stmt(sql).all(...params) as Row[];
  }

  #get(sql: string, ...params: SQLInputValue[]): Row | undefined {
    return this.#stmt(sql).get(...params) as Row | undefined;
  }

  #run(sql: string, ...params: SQLInputValue[]) {
    return this.#stmt(sql).run(...params);
  }

  /** A write transaction that takes the write lock at its start (never a deferred BEGIN). */
  #tx<T>(fn: () => T): T {
    this.#db.exec("BEGIN IMMEDIATE");
    try {
      const out = fn();
      this.#db.exec("COMMIT");
      if (this.#wakeAfterCommit) this.#wakeWorkers();
      return out;
    } catch (e) {
      if (this.#db.isTransaction) this.#db.exec("ROLLBACK");
      throw e;
    } finally {
      this.#wakeAfterCommit = false;
    }
  }

  /** Runs `fn`, mapping SQLite's errors to StoreError. */
  #do<T>(fn: () => T): Promise<T> {
    try {
      return Promise.resolve(fn());
    } catch (e) {
      return Promise.reject(describeSqliteError(e, this.location));
    }
  }

  enqueue(jobs: NewJob[], now: number): Promise<ExistingJob[]> {
    return this.#do(() => {
      if (jobs.length === 0) return [];
      // One statement for the whole batch: the jobs go in as one JSON array read by jsonb_each
      // (which hands each row to `->>` already parsed, where json_each would print it again).
      // A column with one value for every job (often all but id and command) is bound once
      // instead: reading a value out of the JSON for every row costs more than binding it once.
      const columns: string[] = [];
      const params: SQLInputValue[] = [];
      const varying: Array<(j: NewJob) => SQLInputValue> = [];
      for (const [, read] of NEW_JOB_COLUMNS) {
        const first = read(jobs[0]);
        if (jobs.every((j) => read(j) === first)) {
          columns.push("?");
          params.push(first);
        } else {
          columns.push(`value->>${varying.length}`);
          varying.push(read);
        }
      }
      const rows = jobs.map((j) => varying.map((read) => read(j)));
      // Jobs with a unique key skip the insert when the key is held (by a stored job, or one
      // earlier in this batch: rows go in in order); a batch without keys runs the plain insert.
      const keyed = keyedIndexes(jobs);
      try {
        const existing = this.#tx(() => {
          const { changes } = this.#run(
            `INSERT INTO jobs (${NEW_JOB_COLUMNS.map(([c]) => c).join(", ")}, state, attempts,
               created_at, updated_at)
             SELECT ${columns.join(", ")}, 'pending', 0, ?, ? FROM jsonb_each(?)` +
              (keyed.length === 0
                ? ""
                : ` WHERE true ON CONFLICT (unique_key) WHERE ${KEY_HELD} DO NOTHING`),
            ...params,
            now,
            now,
            JSON.stringify(rows),
          );
          this.#run("UPDATE job_counts SET n = n + ? WHERE state = 'pending'", changes);
          // The write lock is held since BEGIN IMMEDIATE: every skipped job's holder is there.
          const existing = keyed.length === 0 ? [] : matchHolders(
            jobs,
            keyed,
            this.#all(
              `SELECT id, unique_key, state, run_at FROM jobs
               WHERE unique_key IN (SELECT value FROM json_each(?)) AND ${KEY_HELD}`,
              JSON.stringify(keyed.map((i) => jobs[i].uniqueKey)),
            ),
          ).existing;
          if (jobs.some((j) => j.after?.length)) {
            this.#linkDependencies(linkedJobs(jobs, existing), now);
          }
          return existing;
        });
        if (existing.length < jobs.length) this.#wakeWorkers();
        return existing;
      } catch (e) {
        if (e instanceof Error && /UNIQUE constraint failed: jobs.id/.test(e.message)) {
          throw this.#duplicate(jobs);
        }
        throw e;
      }
    });
  }

  /**
   * Stores the `after` links of a batch just inserted, in batch order, and sets each waiting
   * job's count; call inside the enqueue's transaction. See `Store.enqueue`.
   */
  #linkDependencies(jobs: NewJob[], now: number) {
    const position = new Map(jobs.map((j, i) => [j.id, i]));
    const mark = this.#stmt(
      "UPDATE jobs SET has_dependants = 1 WHERE id = ? RETURNING state",
    );
    const link = this.#stmt("INSERT INTO job_deps (job_id, dep_id) VALUES (?, ?)");
    // Each dependency is marked and read once per batch (many jobs often wait for one).
    const states = new Map<string, string>();
    jobs.forEach((j, i) => {
      if (!j.after?.length) return;
      let unfinished = 0;
      let died: string | null = null;
      for (const dep of j.after) {
        const p = position.get(dep);
        // A batch names only earlier jobs: with no link to a later one, no cycle can form.
        if (p !== undefined && p >= i) throw unknownDependencyError(j.id, dep, true, true);
        let state = states.get(dep);
        if (state === undefined) {
          state = mark.get(dep)?.state as string | undefined;
          if (state === undefined) {
            throw unknownDependencyError(j.id, dep, false, jobs.length > 1);
          }
          states.set(dep, state);
        }
        link.run(j.id, dep);
        if (state !== "completed") unfinished++;
        if (died === null && (state === "dead" || state === "cancelled")) {
          died = dependencyError(dep, state);
        }
      }
      if (unfinished === 0) return;
      this.#run(
        `UPDATE jobs SET waiting_on = ?, state = coalesce(?, state), error = ?,
           finished_at = CASE WHEN ? IS NULL THEN NULL ELSE ? END
         WHERE id = ?`,
        unfinished,
        died === null ? null : "dead",
        died,
        died,
        now,
        j.id,
      );
    });
  }

  /**
   * The jobs waiting for `jobId`, which just left `processing` or was changed by a person, follow
   * it; call inside the transaction that changed it, only when it has dependants.
   * - completed: each waits on one job fewer (and workers are woken for the ones now ready);
   * - dead or cancelled: each pending one dies with `dependency ID died`, down the chain;
   * - pending again (a retry of a dead or cancelled job): each one that died because of it, and
   *   waits for no other dead or cancelled job, is pending (waiting) again, down the chain.
   */
  #followDependency(jobId: string, state: JobState, now: number) {
    if (state === "completed") {
      const freed = this.#all(
        `UPDATE jobs SET waiting_on = waiting_on - 1
         WHERE id IN (SELECT job_id FROM job_deps WHERE dep_id = ?) RETURNING waiting_on`,
        jobId,
      );
      if (freed.some((r) => r.waiting_on === 0)) this.#wakeAfterCommit = true;
      return;
    }
    let frontier: Array<{ id: string; state: JobState }> = [{ id: jobId, state }];
    while (frontier.length > 0) {
      const next: typeof frontier = [];
      for (const f of frontier) {
        const rows = f.state === "pending"
          ? this.#all(
            `UPDATE jobs SET state = 'pending', error = NULL, finished_at = NULL, updated_at = ?
             WHERE id IN (SELECT job_id FROM job_deps WHERE dep_id = ?)
               AND state = 'dead' AND waiting_on > 0
               AND NOT EXISTS (SELECT 1 FROM job_deps d JOIN jobs x ON x.id = d.dep_id
                 WHERE d.job_id = jobs.id AND x.state IN ('dead','cancelled'))
             RETURNING id, has_dependants`,
            now,
            f.id,
          )
          : this.#all(
            `UPDATE jobs SET state = 'dead', error = ?, finished_at = ?, updated_at = ?
             WHERE id IN (SELECT job_id FROM job_deps WHERE dep_id = ?)
               AND state = 'pending' AND waiting_on > 0
             RETURNING id, has_dependants`,
            dependencyError(f.id, f.state),
            now,
            now,
            f.id,
          );
        for (const r of rows) {
          if (r.has_dependants) {
            next.push({ id: r.id as string, state: f.state === "pending" ? "pending" : "dead" });
          }
        }
      }
      frontier = next;
    }
  }

  /**
   * A job about to be deleted counts as done for the jobs waiting for it, and its links go;
   * call inside the deleting transaction.
   */
  #unlinkDeleted(row: Row) {
    if (row.has_dependants) {
      if (row.state !== "completed") {
        this.#run(
          `UPDATE jobs SET waiting_on = waiting_on - 1
           WHERE id IN (SELECT job_id FROM job_deps WHERE dep_id = ?)`,
          row.id,
        );
      }
      this.#run("DELETE FROM job_deps WHERE dep_id = ?", row.id);
    }
    this.#run("DELETE FROM job_deps WHERE job_id = ?", row.id);
  }

  dependencies(
    jobId: string,
  ): Promise<{ after: DependencyLink[]; dependants: DependencyLink[] }> {
    const links = (rows: Row[]) =>
      rows.map((r) => ({ id: r.id as string, state: r.state as JobState }));
    return this.#do(() => ({
      after: links(this.#all(
        `SELECT x.id, x.state FROM job_deps d JOIN jobs x ON x.id = d.dep_id
         WHERE d.job_id = ? ORDER BY x.seq`,
        jobId,
      )),
      dependants: links(this.#all(
        `SELECT x.id, x.state FROM job_deps d JOIN jobs x ON x.id = d.job_id
         WHERE d.dep_id = ? ORDER BY x.seq`,
        jobId,
      )),
    }));
  }

  /** Names the first id of `jobs` that already exists, for the message. */
  #duplicate(jobs: NewJob[]): ConflictError {
    return duplicateIdError(
      jobs.map((j) => j.id),
      (id) => this.#get("SELECT 1 FROM jobs WHERE id = ?", id) !== undefined,
    );
  }

  getJob(id: string): Promise<Job | null> {
    return this.#do(() => {
      const r = this.#get("SELECT * FROM jobs WHERE id = ?", id);
      return r ? toJob(r) : null;
    });
  }

  listJobs(
    { state, states, queue, search, newestFirst = false, limit, offset = 0 }: ListOptions,
  ): Promise<Job[]> {
    return this.#do(() => {
      const where: string[] = [];
      const params: SQLInputValue[] = [];
      this.#stateFilter(state, states, where, params);
      if (queue !== undefined) {
        where.push("queue = ?");
        params.push(queue);
      }
      if (search !== undefined && search !== "") {
        // LIKE ignores ASCII case; `\` escapes the user's own % and _. No index can serve a
        // substring match: rows are walked in `seq` order (the primary key) until the page is full.
        where.push(
          "(id LIKE ? ESCAPE '\\' OR command LIKE ? ESCAPE '\\' OR error LIKE ? ESCAPE '\\')",
        );
        const pattern = `%${search.replace(/[\\%_]/g, (c) => "\\" + c)}%`;
        params.push(pattern, pattern, pattern);
      }
      const sql = `SELECT * FROM jobs ${where.length ? "WHERE " + where.join(" AND ") : ""}
         ORDER BY seq ${newestFirst ? "DESC" : ""} LIMIT ? OFFSET ?`;
      return this.#all(sql, ...params, limit, offset).map(toJob);
    });
  }

  countJobs(state?: JobState | readonly JobState[]): Promise<number> {
    return this.#do(() => {
      if (state === undefined) {
        return this.#get("SELECT coalesce(sum(n), 0) AS n FROM job_counts")!.n as number;
      }
      return this.#countStates(typeof state === "string" ? [state] : state);
    });
  }

  /**
   * Adds the WHERE terms for jobs in `state` and in `states`. Many jobs in those states: walk the
   * primary key in order and stop once the page is full (`+state` keeps SQLite off the state
   * index, which would sort them all: 1-2 s for a million). Few: the state index finds them and
   * sorting them is cheap.
   */
  #stateFilter(
    state: JobState | undefined,
    states: readonly JobState[] | undefined,
    where: string[],
    params: SQLInputValue[],
  ) {
    const wanted = state ? [state, ...(states ?? [])] : states;
    const col = wanted && this.#countStates(wanted) > INDEX_SORT_MAX ? "+state" : "state";
    if (state) {
      where.push(`${col} = ?`);
      params.push(state);
    }
    if (states) {
      where.push(`${col} IN (${states.map(() => "?").join(", ") || "NULL"})`);
      params.push(...states);
    }
  }

  /** Jobs in any of `states` (each counted once), from the kept counts. */
  #countStates(states: readonly JobState[]): number {
    const distinct = [...new Set(states)];
    if (distinct.length === 0) return 0;
    return this.#get(
      `SELECT coalesce(sum(n), 0) AS n FROM job_counts
       WHERE state IN (${distinct.map(() => "?").join(", ")})`,
      ...distinct,
    )!.n as number;
  }

  listAttempts(jobId: string): Promise<Attempt[]> {
    return this.#do(() => this.#attemptsOf(jobId));
  }

  #attemptsOf(jobId: string): Attempt[] {
    return this.#all("SELECT * FROM attempts WHERE job_id = ? ORDER BY finished_at, rowid", jobId)
      .map(toAttempt);
  }

  #retriesOf(jobId: string): RetryMark[] {
    return this.#all("SELECT * FROM retries WHERE job_id = ? ORDER BY retried_at, rowid", jobId)
      .map(toRetryMark);
  }

  listRetries(jobId: string): Promise<RetryMark[]> {
    return this.#do(() => this.#retriesOf(jobId));
  }

  counts(now: number): Promise<JobCounts> {
    return this.#do(() => {
      const c = Object.fromEntries(
        [...JOB_STATES, "scheduled", "waiting"].map((s) => [s, 0]),
      ) as JobCounts;
      for (const r of this.#all("SELECT state, n FROM job_counts")) {
        c[r.state as JobState] = r.n as number;
      }
      // Only the waiting jobs are walked: a range of the ready index for each priority.
      c.scheduled = this.#get(
        `${READY_PRIORITIES} SELECT coalesce(sum((SELECT count(*) FROM jobs INDEXED BY jobs_ready
           WHERE state IN ('pending','failed') AND waiting_on = 0 AND priority = p.pri
             AND run_at > ?)), 0) AS n
         FROM p WHERE pri IS NOT NULL`,
        now,
      )!.n as number;
      c.waiting = this.#get(
        `SELECT count(*) AS n FROM jobs INDEXED BY jobs_waiting
         WHERE state = 'pending' AND waiting_on > 0`,
      )!.n as number;
      return c;
    });
  }

  drainBacklog(dueBy: number, queues?: readonly string[]): Promise<DrainBacklog[]> {
    return this.#do(() =>
      this.#all(
        `SELECT j.queue, coalesce(q.paused, 0) AS paused,
           CASE
             WHEN j.state = 'processing' THEN 'processing'
             WHEN j.waiting_on > 0 THEN
               CASE WHEN EXISTS (SELECT 1 FROM job_deps d JOIN jobs p ON p.id = d.dep_id
                   LEFT JOIN queues pq ON pq.name = p.queue
                   WHERE d.job_id = j.id AND (p.state = 'processing'
                     OR (p.state IN ('pending','failed') AND p.waiting_on = 0 AND p.run_at <= ?1
                       AND coalesce(pq.paused, 0) = 0
                       AND (?2 IS NULL OR p.queue IN (SELECT value FROM json_each(?2))))))
                 THEN 'waiting_live' ELSE 'waiting_stuck' END
             WHEN j.run_at <= ?1 THEN 'ready_' || j.state
             ELSE 'later_' || j.state
           END AS kind,
           count(*) AS n
         FROM jobs j LEFT JOIN queues q ON q.name = j.queue
         WHERE j.state IN ('pending','failed','processing')
         GROUP BY 1, 2, 3 ORDER BY 1, 3`,
        dueBy,
        queues ? JSON.stringify(queues) : null,
      ).map((r) => ({
        queue: r.queue as string,
        paused: r.paused === 1,
        kind: r.kind as DrainKind,
        n: r.n as number,
      }))
    );
  }

  claimNext(
    workerId: string,
    now: number,
    limit = 1,
    queues?: readonly string[],
  ): Promise<Job[]> {
    return this.#do(() => {
      const claim = () => this.#observeWaits(this.#claim(workerId, now, limit, queues ?? null));
      return this.#db.isTransaction ? claim() : this.#tx(claim);
    });
  }

  /** Adds the queue waits of `jobs`, just claimed, to the kept totals. Returns `jobs`. */
  #observeWaits(jobs: Job[]): Job[] {
    this.#observe(
      "wait",
      jobs.map((j) => ["", Math.max(j.startedAt! - Math.max(j.runAt, j.createdAt), 0) / 1000]),
    );
    return jobs;
  }

  /**
   * Adds `samples` ([label, seconds]) to the kept histogram `name`, one upsert per label and
   * bucket; call in the transaction that records what they measure.
   */
  #observe(name: "wait" | "duration", samples: ReadonlyArray<readonly [string, number]>) {
    const totals = new Map<string, { label: string; bucket: number; n: number; sum: number }>();
    for (const [label, seconds] of samples) {
      const i = METRICS_MIGRATION_BUCKETS.findIndex((le) => seconds <= le);
      const bucket = i === -1 ? METRICS_MIGRATION_BUCKETS.length : i;
      const key = `${bucket} ${label}`;
      const t = totals.get(key) ?? { label, bucket, n: 0, sum: 0 };
      t.n++;
      t.sum += seconds;
      totals.set(key, t);
    }
    for (const t of totals.values()) {
      this.#run(
        `INSERT INTO metric_totals (name, label, bucket, n, sum) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (name, label, bucket) DO UPDATE SET n = n + excluded.n,
           sum = sum + excluded.sum`,
        name,
        t.label,
        t.bucket,
        t.n,
        t.sum,
      );
    }
  }

  /**
   * Whether the last claim saw no queue rules (no pause, no limit): then claims from every queue
   * try the one-statement claim first. Only a hint: that statement checks it again itself.
   */
  #noQueueRules = false;

  /**
   * One autocommit statement (or part of the caller's transaction): it takes the write lock as it
   * starts, so two workers can never claim the same row. Mirrors transition(job, {type: "claim"}).
   * With queue rules, or only some queues, `#claimByQueue` does it in one write transaction.
   */
  #claim(workerId: string, now: number, limit: number, queues: readonly string[] | null): Job[] {
    if (queues === null && this.#noQueueRules) {
      const jobs = this.#claimAny(workerId, now, limit);
      if (jobs.length > 0 || !this.#hasQueueRules()) return jobs;
    } else if (queues === null && !this.#hasQueueRules()) {
      return this.#claimAny(workerId, now, limit);
    }
    const byQueue = () => this.#claimByQueue(workerId, now, limit, queues);
    return this.#db.isTransaction ? byQueue() : this.#tx(byQueue);
  }

  /** Whether some queue is paused or limited now; keeps the answer as the hint above. */
  #hasQueueRules(): boolean {
    const any = this.#get(
      "SELECT EXISTS (SELECT 1 FROM queues WHERE paused <> 0 OR concurrency > 0) AS any",
    )!.any;
    this.#noQueueRules = !any;
    return Boolean(any);
  }

  /** The claim from every queue, when no queue has a rule (checked by the statement itself). */
  #claimAny(workerId: string, now: number, limit: number): Job[] {
    return this.#all(
      `UPDATE jobs SET state = 'processing', attempts = attempts + 1, worker_id = ?,
         started_at = ?, finished_at = NULL, updated_at = ?,
         output_key = lower(hex(randomblob(8)))
       WHERE seq IN (
         SELECT seq FROM jobs INDEXED BY jobs_ready
         WHERE state IN ('pending','failed') AND waiting_on = 0 AND run_at <= ?
           AND NOT EXISTS (SELECT 1 FROM queues WHERE paused <> 0 OR concurrency > 0)
         ORDER BY priority DESC, run_at, seq LIMIT ?)
       RETURNING *`,
      workerId,
      now,
      now,
      now,
      limit,
    ).map(toJob).sort(claimOrder);
  }

  /**
   * The claim under queue rules; call inside a write transaction, which keeps other claimers out
   * from the count of a limited queue's running jobs to the claim. Each allowed queue gives its
   * first ready jobs (up to its free slots) from its own range of the ready index; the best of
   * them are claimed.
   */
  #claimByQueue(
    workerId: string,
    now: number,
    limit: number,
    queues: readonly string[] | null,
  ): Job[] {
    const rules = this.#all(
      "SELECT name, paused, concurrency FROM queues WHERE paused <> 0 OR concurrency > 0",
    );
    const rule = new Map(rules.map((r) => [r.name as string, r]));
    // Only a limited queue's running jobs are counted: from the index of its jobs by state, or
    // for `default`, among the processing jobs (as many as run at once).
    const running = (name: string) =>
      this.#get(
        name === DEFAULT_QUEUE
          ? "SELECT count(*) AS n FROM jobs WHERE state = 'processing' AND queue = ?"
          : `SELECT count(*) AS n FROM jobs INDEXED BY jobs_queue
             WHERE queue = ? AND queue <> 'default' AND state = 'processing'`,
        name,
      )!.n as number;
    const names = queues ?? this.#all(READY_QUEUES).map((r) => r.name as string);
    const picked: Row[] = [];
    for (const name of new Set(names)) {
      const r = rule.get(name);
      if (r && r.paused) continue;
      const max = r ? r.concurrency as number : 0;
      const slots = max > 0 ? Math.min(limit, max - running(name)) : limit;
      if (slots <= 0) continue;
      picked.push(...this.#all(
        `SELECT seq, priority, run_at FROM jobs INDEXED BY jobs_ready_queue
         WHERE queue = ? AND state IN ('pending','failed') AND waiting_on = 0 AND run_at <= ?
         ORDER BY priority DESC, run_at, seq LIMIT ?`,
        name,
        now,
        slots,
      ));
    }
    if (picked.length === 0) return [];
    const seqs = picked.sort((a, b) =>
      (b.priority as number) - (a.priority as number) ||
      (a.run_at as number) - (b.run_at as number) || (a.seq as number) - (b.seq as number)
    ).slice(0, limit).map((r) => r.seq as number);
    return this.#all(
      `UPDATE jobs SET state = 'processing', attempts = attempts + 1, worker_id = ?,
         started_at = ?, finished_at = NULL, updated_at = ?,
         output_key = lower(hex(randomblob(8)))
       WHERE seq IN (SELECT value FROM json_each(?))
       RETURNING *`,
      workerId,
      now,
      now,
      JSON.stringify(seqs),
    ).map(toJob).sort(claimOrder);
  }

  listQueues(): Promise<QueueInfo[]> {
    return this.#do(() => {
      // One read transaction: the totals and the other queues' counts are one snapshot.
      this.#db.exec("BEGIN");
      try {
        const totals = this.#all("SELECT state, n FROM job_counts");
        const others = this.#all(
          `SELECT queue, state, count(*) AS n FROM jobs INDEXED BY jobs_queue
           WHERE queue <> 'default' GROUP BY queue, state`,
        );
        const rules = this.#all("SELECT name, paused, concurrency FROM queues");
        return queueInfos(totals, others, rules);
      } finally {
        if (this.#db.isTransaction) this.#db.exec("COMMIT");
      }
    });
  }

  setQueue(name: string, rules: { paused?: boolean; concurrency?: number }): Promise<void> {
    const paused = rules.paused === undefined ? null : rules.paused ? 1 : 0;
    const concurrency = rules.concurrency ?? null;
    return this.#do(() => {
      this.#tx(() => {
        this.#run(
          `INSERT INTO queues (name, paused, concurrency) VALUES (?, coalesce(?, 0), coalesce(?, 0))
           ON CONFLICT (name) DO UPDATE SET paused = coalesce(?, paused),
             concurrency = coalesce(?, concurrency)`,
          name,
          paused,
          concurrency,
          paused,
          concurrency,
        );
        // Rules back to none keep no row: a mistyped name resumed again leaves nothing behind.
        this.#run("DELETE FROM queues WHERE name = ? AND paused = 0 AND concurrency = 0", name);
      });
      // A resumed queue or a raised limit may free jobs for idle workers.
      this.#wakeWorkers();
    });
  }

  finishAttempt(
    jobId: string,
    workerId: string,
    next: Transition,
    result: AttemptResult,
    now: number,
  ): Promise<Job | null> {
    return this.#do(() => this.#tx(() => this.#finish(jobId, workerId, next, result, now)));
  }

  finishAndClaim(
    workerId: string,
    ends: readonly RunEnd[],
    claimLimit: number,
    now: number,
    queues?: readonly string[],
  ): Promise<{ finished: (Job | null)[]; claimed: Job[] }> {
    return this.#do(() =>
      this.#tx(() => {
        const durations: Array<[string, number]> = [];
        const finished = ends.map((e) =>
          this.#finish(e.jobId, workerId, e.next, e.result, now, null, durations)
        );
        this.#observe("duration", durations);
        const claimed = claimLimit > 0
          ? this.#observeWaits(this.#claim(workerId, now, claimLimit, queues ?? null))
          : [];
        return { finished, claimed };
      })
    );
  }

  /**
   * The guarded end of a run plus its attempt row; call inside a transaction. With `attempt`, the
   * guard also needs the job to be on that run (a person's cancel names the run it saw).
   */
  #finish(
    jobId: string,
    workerId: string,
    next: Transition,
    result: AttemptResult,
    now: number,
    attempt: number | null = null,
    durations?: Array<[string, number]>,
  ): Job | null {
    const r = this.#get(
      `UPDATE jobs SET state = ?, attempts = ?, run_at = coalesce(?, run_at),
         retry_base = coalesce(?, retry_base), finished_at = ?, updated_at = ?, exit_code = ?,
         error = ?
       WHERE id = ? AND state = 'processing' AND worker_id = ? AND (? IS NULL OR attempts = ?)
       RETURNING *`,
      next.state,
      next.attempts,
      next.runAt,
      next.retryBase ?? null,
      now,
      now,
      result.exitCode,
      result.outcome === "completed" ? null : result.error,
      jobId,
      workerId,
      attempt,
      attempt,
    );
    if (!r) return null;
    const job = toJob(r);
    if (r.has_dependants && isIn(job.state, FINISHED_STATES)) {
      this.#followDependency(jobId, job.state, now);
    }
    this.#run(
      `INSERT INTO attempts (job_id, attempt, worker_id, started_at, finished_at, outcome,
         exit_code, signal, error, output_key, note) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      jobId,
      // An interrupted run gave its number back (transition "interrupt"); record the run's own.
      result.outcome === "interrupted" ? job.attempts + 1 : job.attempts,
      workerId,
      job.startedAt ?? now,
      now,
      result.outcome,
      result.exitCode,
      result.signal,
      result.error,
      job.outputKey,
      result.note ?? null,
    );
    const duration = durationSample(result.outcome, job.startedAt ?? now, now);
    if (durations) durations.push(duration);
    else this.#observe("duration", [duration]);
    if (result.output && job.outputKey) this.#appendOutput(jobId, job.outputKey, result.output);
    return job;
  }

  applyTransition(
    jobId: string,
    expected: Pick<Job, "state" | "attempts">,
    next: Transition,
    now: number,
  ): Promise<Job | null> {
    return this.#do(() => {
      const r = this.#heldKeyGuard(jobId, () =>
        this.#tx(() => {
          // Never pending while a job it waits for is dead or cancelled: nothing would free it.
          const r = this.#get(
            `UPDATE jobs SET state = ?, attempts = ?, run_at = coalesce(?, run_at),
             retry_base = coalesce(?, retry_base), updated_at = ?
           WHERE id = ? AND state = ? AND attempts = ?
             AND (? <> 'pending' OR waiting_on = 0 OR NOT EXISTS (SELECT 1 FROM job_deps d
               JOIN jobs x ON x.id = d.dep_id
               WHERE d.job_id = jobs.id AND x.state IN ('dead','cancelled')))
           RETURNING *`,
            next.state,
            next.attempts,
            next.runAt,
            next.retryBase ?? null,
            now,
            jobId,
            expected.state,
            expected.attempts,
            next.state,
          );
          if (r?.has_dependants && next.state !== expected.state) {
            this.#followDependency(jobId, next.state, now);
          }
          if (r && next.retryBase !== undefined) {
            this.#run(
              `INSERT INTO retries (job_id, after_attempt, from_state, retried_at)
             VALUES (?, ?, ?, ?)`,
              jobId,
              next.retryBase!,
              expected.state,
              now,
            );
          }
          return r;
        }));
      if (r && (next.state === "pending" || next.state === "failed")) this.#wakeWorkers();
      return r ? toJob(r) : null;
    });
  }

  /**
   * `e`, or the one-line refusal when `e` says that job `jobId` cannot hold its unique key again
   * because another job holds it now.
   */
  #heldKeyGuard<T>(jobId: string, fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      throw this.#heldKey(e, jobId);
    }
  }

  #heldKey(e: unknown, jobId: string): unknown {
    if (!(e instanceof Error && /UNIQUE constraint failed: jobs\.unique_key/.test(e.message))) {
      return e;
    }
    const key = this.#get("SELECT unique_key FROM jobs WHERE id = ?", jobId)?.unique_key ?? null;
    const holder = this.#get(
      `SELECT id, state FROM jobs WHERE unique_key = ? AND ${KEY_HELD} AND id <> ?`,
      key,
      jobId,
    );
    return heldKeyError(jobId, String(key), holder);
  }

  cancelRunning(
    jobId: string,
    workerId: string,
    attempt: number,
    next: Transition,
    error: string,
    now: number,
  ): Promise<Job | null> {
    const result = { outcome: "cancelled", exitCode: null, signal: null, error } as const;
    return this.#do(() =>
      this.#tx(() => this.#finish(jobId, workerId, next, result, now, attempt))
    );
  }

  removeJob(jobId: string, states: readonly JobState[]): Promise<Job | null> {
    if (states.length === 0) return Promise.resolve(null);
    return this.#do(() =>
      this.#tx(() => {
        const r = this.#get(
          `DELETE FROM jobs WHERE id = ? AND state IN (${states.map(() => "?").join(", ")})
           RETURNING *`,
          jobId,
          ...states,
        );
        if (!r) return null;
        this.#unlinkDeleted(r);
        this.#run("DELETE FROM attempts WHERE job_id = ?", jobId);
        this.#run("DELETE FROM retries WHERE job_id = ?", jobId);
        this.#run("DELETE FROM outputs WHERE job_id = ?", jobId);
        this.#run("UPDATE job_counts SET n = n - 1 WHERE state = ?", r.state);
        return toJob(r);
      })
    );
  }

  nextRunAt(): Promise<number | null> {
    return this.#do(() =>
      (this.#get(
        `SELECT min(run_at) AS t FROM jobs WHERE state IN ('pending','failed') AND waiting_on = 0`,
      )!.t as number | null) ?? null
    );
  }

  findStaleJobs(now: number, leaseMs: number): Promise<StaleJob[]> {
    return this.#do(() =>
      this.#all(
        `SELECT j.* FROM jobs j LEFT JOIN workers w ON w.id = j.worker_id
         WHERE j.state = 'processing'
           AND (w.id IS NULL OR w.stopped_at IS NOT NULL OR w.heartbeat_at < ?)`,
        now - leaseMs,
      ).map((r) => ({ job: toJob(r), workerId: r.worker_id as string }))
    );
  }

  jobsHeldBy(workerId: string): Promise<Job[]> {
    return this.#do(() =>
      this.#all("SELECT * FROM jobs WHERE state = 'processing' AND worker_id = ?", workerId).map(
        toJob,
      )
    );
  }

  purge(state: JobState, finishedBefore: number): Promise<DeletedJob[]> {
    return this.#do(() =>
      this.#tx(() => {
        const rows = this.#all(
          `DELETE FROM jobs WHERE state = ? AND coalesce(finished_at, updated_at) < ?
           RETURNING id, state, output_key, has_dependants`,
          state,
          finishedBefore,
        );
        const del = this.#stmt("DELETE FROM attempts WHERE job_id = ? RETURNING output_key");
        const delRetries = this.#stmt("DELETE FROM retries WHERE job_id = ?");
        const delOutput = this.#stmt("DELETE FROM outputs WHERE job_id = ?");
        const deleted = rows.map((r) => {
          const keys = new Set<string>();
          for (const a of del.all(r.id)) {
            if (a.output_key !== null) keys.add(a.output_key as string);
          }
          if (r.output_key !== null) keys.add(r.output_key as string);
          delRetries.run(r.id);
          delOutput.run(r.id);
          this.#unlinkDeleted(r);
          return { id: r.id as string, outputKeys: [...keys] };
        });
        this.#run("UPDATE job_counts SET n = n - ? WHERE state = ?", rows.length, state);
        return deleted;
      })
    );
  }

  outputKeys(jobId: string): Promise<Array<{ attempt: number; key: string }>> {
    return this.#do(() => {
      const out: Array<{ attempt: number; key: string }> = [];
      const seen = new Set<string>();
      for (
        const r of this.#all(
          `SELECT attempt, output_key FROM attempts WHERE job_id = ? AND output_key IS NOT NULL
           ORDER BY finished_at, rowid`,
          jobId,
        )
      ) {
        if (seen.has(r.output_key as string)) continue;
        seen.add(r.output_key as string);
        out.push({ attempt: r.attempt as number, key: r.output_key as string });
      }
      const job = this.#get(
        "SELECT attempts, output_key FROM jobs WHERE id = ? AND output_key IS NOT NULL",
        jobId,
      );
      if (job && !seen.has(job.output_key as string)) {
        out.push({ attempt: job.attempts as number, key: job.output_key as string });
      }
      return out;
    });
  }

  countPurgeable(state: JobState, finishedBefore: number): Promise<number> {
    return this.#do(() =>
      this.#get(
        `SELECT count(*) AS n FROM jobs WHERE state = ? AND coalesce(finished_at, updated_at) < ?`,
        state,
        finishedBefore,
      )!.n as number
    );
  }

  registerWorker(
    w: Omit<WorkerInfo, "currentJob" | "runningJobs" | "stoppingAt" | "stoppedAt">,
  ): Promise<void> {
    return this.#do(() => {
      this.#run(
        `INSERT INTO workers (id, pid, host, supervisor_pid, started_at, heartbeat_at)
         VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET pid = excluded.pid, host = excluded.host,
           supervisor_pid = excluded.supervisor_pid, started_at = excluded.started_at,
           heartbeat_at = excluded.heartbeat_at, stopping_at = NULL, stopped_at = NULL,
           stop_request = NULL`,
        w.id,
        w.pid,
        w.host,
        w.supervisorPid,
        w.startedAt,
        w.heartbeatAt,
      );
    });
  }

  now(): Promise<number> {
    return Promise.resolve(Date.now());
  }

  addSchedule(s: NewSchedule, now: number): Promise<boolean> {
    const row = scheduleRow(newSchedule(s, now));
    return this.#do(() =>
      this.#run(`${INSERT_SCHEDULE} ON CONFLICT (name) DO NOTHING`, ...row).changes === 1
    );
  }

  importSchedules(schedules: readonly Schedule[]): Promise<void> {
    return this.#do(() =>
      this.#tx(() => {
        const insert = this.#stmt(INSERT_SCHEDULE);
        for (const s of schedules) insert.run(...scheduleRow(s));
      })
    );
  }

  getSchedule(name: string): Promise<Schedule | null> {
    return this.#do(() => {
      const r = this.#get(`${SCHEDULE_SELECT} WHERE s.name = ?`, name);
      return r ? toSchedule(r) : null;
    });
  }

  listSchedules(): Promise<Schedule[]> {
    return this.#do(() => this.#all(`${SCHEDULE_SELECT} ORDER BY s.name`).map(toSchedule));
  }

  removeSchedule(name: string): Promise<boolean> {
    return this.#do(() => this.#run("DELETE FROM schedules WHERE name = ?", name).changes === 1);
  }

  setSchedulePaused(
    name: string,
    paused: boolean,
    nextRunAt: number | null,
    now: number,
  ): Promise<Schedule | null> {
    return this.#do(() => {
      if (paused) {
        this.#run(
          "UPDATE schedules SET paused = 1, updated_at = ? WHERE name = ? AND paused = 0",
          now,
          name,
        );
      } else {
        this.#run(
          `UPDATE schedules SET paused = 0, next_run_at = ?, updated_at = ?
           WHERE name = ? AND paused = 1`,
          nextRunAt,
          now,
          name,
        );
      }
      const r = this.#get(`${SCHEDULE_SELECT} WHERE s.name = ?`, name);
      return r ? toSchedule(r) : null;
    });
  }

  dueSchedules(now: number): Promise<Schedule[]> {
    return this.#do(() =>
      this.#all(
        `${SCHEDULE_SELECT} WHERE s.paused = 0 AND s.next_run_at <= ? ORDER BY s.next_run_at`,
        now,
      ).map(toSchedule)
    );
  }

  fireSchedule(
    name: string,
    dueAt: number,
    job: NewJob | null,
    nextRunAt: number | null,
    now: number,
  ): Promise<boolean> {
    return this.#do(() => {
      const fired = this.#tx(() => {
        const won = this.#run(
          `UPDATE schedules SET next_run_at = ?, updated_at = ?
           WHERE name = ? AND next_run_at = ? AND paused = 0`,
          nextRunAt,
          now,
          name,
          dueAt,
        ).changes === 1;
        if (!won || !job) return won;
        // Not stored when the id exists, or when its unique key is held by an earlier tick's job.
        const inserted = this.#run(
          `INSERT INTO jobs (${NEW_JOB_COLUMNS.map(([c]) => c).join(", ")}, state, attempts,
             created_at, updated_at)
           VALUES (${NEW_JOB_COLUMNS.map(() => "?").join(", ")}, 'pending', 0, ?, ?)
           ON CONFLICT DO NOTHING`,
          ...NEW_JOB_COLUMNS.map(([, read]) => read(job)),
          now,
          now,
        ).changes;
        this.#run("UPDATE job_counts SET n = n + ? WHERE state = 'pending'", inserted);
        this.#run(
          `UPDATE schedules SET last_run_at = ?, last_job_id = ?
           WHERE name = ? AND EXISTS (SELECT 1 FROM jobs WHERE id = ?)`,
          job.runAt,
          job.id,
          name,
          job.id,
        );
        return won;
      });
      if (fired && job) this.#wakeWorkers();
      return fired;
    });
  }

  exportJobs(afterSeq: number, limit: number): Promise<JobRecord[]> {
    return this.#do(() =>
      this.#all("SELECT * FROM jobs WHERE seq > ? ORDER BY seq LIMIT ?", afterSeq, limit).map(
        (r) => {
          const job = toJob(r);
          return {
            job,
            attempts: this.#attemptsOf(job.id),
            retries: this.#retriesOf(job.id),
            after: this.#all("SELECT dep_id FROM job_deps WHERE job_id = ?", job.id).map((d) =>
              d.dep_id as string
            ),
            output: this.#all(
              "SELECT key, byte_offset, data FROM outputs WHERE job_id = ? ORDER BY key, byte_offset",
              job.id,
            ).map((x) => ({
              key: x.key as string,
              offset: x.byte_offset as number,
              data: x.data as Uint8Array,
            })),
          };
        },
      )
    );
  }

  importJobs(records: JobRecord[]): Promise<void> {
    return this.#do(() =>
      this.#tx(() => {
        const job = this.#stmt(
          `INSERT INTO jobs (id, command, state, attempts, max_retries, priority, run_at, timeout_ms, cwd, env, created_at, updated_at, started_at, finished_at, exit_code, error, worker_id, output_key, retry_base, unique_key, waiting_on, queue)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        );
        const attempt = this.#stmt(
          `INSERT INTO attempts (job_id, attempt, worker_id, started_at, finished_at, outcome,
             exit_code, signal, error, output_key, note) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        );
        const retry = this.#stmt(
          "INSERT INTO retries (job_id, after_attempt, from_state, retried_at) VALUES (?, ?, ?, ?)",
        );
        const output = this.#stmt(
          "INSERT INTO outputs (key, byte_offset, job_id, data) VALUES (?, ?, ?, ?)",
        );
        const count = this.#stmt("UPDATE job_counts SET n = n + 1 WHERE state = ?");
        const link = this.#stmt("INSERT INTO job_deps (job_id, dep_id) VALUES (?, ?)");
        const mark = this.#stmt("UPDATE jobs SET has_dependants = 1 WHERE id = ?");
        for (const { job: j, attempts, retries, output: pieces, after } of records) {
          job.run(
            j.id,
            j.command,
            j.state,
            j.attempts,
            j.maxRetries,
            j.priority,
            j.runAt,
            j.timeoutMs,
            j.cwd,
            j.env === null ? null : JSON.stringify(j.env),
            j.createdAt,
            j.updatedAt,
            j.startedAt,
            j.finishedAt,
            j.exitCode,
            j.error,
            j.workerId,
            j.outputKey,
            j.retryBase,
            j.uniqueKey ?? null,
            j.waitingOn ?? 0,
            j.queue ?? DEFAULT_QUEUE,
          );
          count.run(j.state);
          for (const dep of after ?? []) {
            link.run(j.id, dep);
            mark.run(dep);
          }
          for (const a of attempts) {
            attempt.run(
              a.jobId,
              a.attempt,
              a.workerId,
              a.startedAt,
              a.finishedAt,
              a.outcome,
              a.exitCode,
              a.signal,
              a.error,
              a.outputKey,
              a.note,
            );
          }
          for (const r of retries) retry.run(r.jobId, r.afterAttempt, r.fromState, r.retriedAt);
          for (const p of pieces) output.run(p.key, p.offset, j.id, p.data);
        }
        // Their run times count here too, as on PostgreSQL (its trigger sees every insert).
        this.#observe(
          "duration",
          records.flatMap((r) =>
            r.attempts.map((a) => durationSample(a.outcome, a.startedAt, a.finishedAt))
          ),
        );
      })
    );
  }

  requestStop(target: { host?: string }, mode: StopMode, _now: number): Promise<WorkerInfo[]> {
    return this.#do(() =>
      this.#tx(() => {
        const host = target.host ?? null;
        this.#run(
          `UPDATE workers SET stop_request = ?
           WHERE stopped_at IS NULL AND (? IS NULL OR host = ?)
             AND (stop_request IS NULL OR ? = 'now')`,
          mode,
          host,
          host,
          mode,
        );
        return this.#all(
          `SELECT w.*, (SELECT j.id FROM jobs j WHERE j.state = 'processing'
             AND j.worker_id = w.id ORDER BY j.started_at, j.seq LIMIT 1) AS current_job,
           (SELECT count(*) FROM jobs j WHERE j.state = 'processing'
             AND j.worker_id = w.id) AS running_jobs
           FROM workers w WHERE stopped_at IS NULL AND (? IS NULL OR host = ?)
           ORDER BY started_at, id`,
          host,
          host,
        ).map(toWorker);
      })
    );
  }

  stopRequestFor(host: string, supervisorPid: number): Promise<StopMode | null> {
    return this.#do(() =>
      (this.#get(
        `SELECT max(stop_request) AS r FROM workers
         WHERE host = ? AND supervisor_pid = ? AND stopped_at IS NULL`,
        host,
        supervisorPid,
      )!.r as StopMode | null) ?? null
    );
  }

  heartbeat(workerId: string, now: number): Promise<void> {
    return this.#do(() => {
      this.#run("UPDATE workers SET heartbeat_at = ? WHERE id = ?", now, workerId);
    });
  }

  markWorkerStopped(workerId: string, now: number): Promise<void> {
    return this.#do(() => {
      this.#run(
        "UPDATE workers SET stopped_at = ? WHERE id = ? AND stopped_at IS NULL",
        now,
        workerId,
      );
    });
  }

  markWorkerStopping(workerId: string, now: number): Promise<void> {
    return this.#do(() => {
      this.#run(
        `UPDATE workers SET stopping_at = ?
         WHERE id = ? AND stopping_at IS NULL AND stopped_at IS NULL`,
        now,
        workerId,
      );
    });
  }

  listWorkers(options: { all?: boolean } = {}): Promise<WorkerInfo[]> {
    return this.#do(() =>
      this.#all(
        `SELECT w.*, (SELECT j.id FROM jobs j WHERE j.state = 'processing' AND j.worker_id = w.id
           ORDER BY j.started_at, j.seq LIMIT 1) AS current_job,
           (SELECT count(*) FROM jobs j WHERE j.state = 'processing' AND j.worker_id = w.id)
           AS running_jobs
         FROM workers w ${options.all ? "" : "WHERE w.stopped_at IS NULL"}
         ORDER BY w.started_at, w.id`,
      ).map(toWorker)
    );
  }

  getConfig(): Promise<Record<string, string>> {
    return this.#do(() =>
      Object.fromEntries(
        this.#all("SELECT key, value FROM config").map((r) => [r.key, r.value as string]),
      )
    );
  }

  setConfig(key: string, value: string | null): Promise<void> {
    return this.#do(() => {
      if (value === null) this.#run("DELETE FROM config WHERE key = ?", key);
      else {
        this.#run(
          "INSERT INTO config (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
          key,
          value,
        );
      }
    });
  }

  appendOutput(jobId: string, key: string, output: OutputAppend): Promise<void> {
    return this.#do(() => this.#tx(() => this.#appendOutput(jobId, key, output)));
  }

  /** Inserts a piece and trims the run to its cap; call inside a transaction. */
  #appendOutput(jobId: string, key: string, { offset, data, capBytes }: OutputAppend) {
    if (data.length === 0) return;
    this.#run(
      `INSERT INTO outputs (key, byte_offset, job_id, data) VALUES (?, ?, ?, ?)
       ON CONFLICT (key, byte_offset) DO UPDATE SET data = excluded.data`,
      key,
      offset,
      jobId,
      data,
    );
    this.#run(
      "DELETE FROM outputs WHERE key = ? AND byte_offset + length(data) <= ?",
      key,
      offset + data.length - capBytes,
    );
  }

  readOutput(key: string, fromOffset = 0): Promise<OutputPiece[]> {
    return this.#do(() =>
      this.#all(
        `SELECT byte_offset, data FROM outputs WHERE key = ? AND byte_offset + length(data) > ?
         ORDER BY byte_offset`,
        key,
        fromOffset,
      ).map((r) => ({ offset: r.byte_offset as number, data: r.data as Uint8Array }))
    );
  }

  assertSameStore(): Promise<void> {
    // stat(2) only: opening and closing the file here would drop SQLite's POSIX locks (see
    // waitForChange).
    const now = fileIdentity(this.location);
    if (this.#identity !== null && now !== this.#identity) {
      return Promise.reject(
        new StoreError(
          now === null
            ? `${this.location} was deleted while this process had it open`
            : `${this.location} was replaced by another file while this process had it open`,
          "replaced",
        ),
      );
    }
    return Promise.resolve();
  }

  assertWritable(): Promise<void> {
    // Rewriting the header's user_version is a real write (a read-only file refuses it even inside
    // BEGIN IMMEDIATE), and the rollback leaves the file as it was.
    return this.#do(() => {
      this.#db.exec("BEGIN IMMEDIATE");
      try {
        this.#db.exec(`PRAGMA user_version = ${SCHEMA_VERSION}`);
      } finally {
        this.#db.exec("ROLLBACK");
      }
    });
  }

  #readDataVersion(): number {
    return this.#db.prepare("PRAGMA data_version").get()!.data_version as number;
  }

  /** The directory of pid files and of the wake file, beside the database. */
  get #runDir(): string {
    return `${this.location}-run`;
  }

  /**
   * Tells idle workers that jobs may be ready: rewrites `<db>-run/wake`, which their stores watch.
   * Only when that directory exists (a supervisor made it): without it, no worker is waiting here.
   */
  #wakeWorkers() {
    try {
      Deno.writeFileSync(join(this.#runDir, "wake"), WAKE_BYTE, { mode: 0o600 });
    } catch {
      // No supervisor has run here, or the file cannot be written: workers fall back to polling.
    }
  }

  /**
   * Resolves on a write to `<db>-run/wake` (an enqueue or a retry committed), on a commit by another
   * connection seen through `PRAGMA data_version` before the wait, or after `maxWaitMs`.
   *
   * !!! Never watch the database's own directory: Deno's watcher opens and closes the files it
   * reports on, and on Linux closing any descriptor of a file drops every POSIX lock this process
   * holds on it, so SQLite's locks on the -shm and -wal files vanish. Two workers could then
   * claim the same job, and a CLI call could delete the WAL under a live worker. !!!
   */
  async waitForChange(maxWaitMs: number, signal?: AbortSignal): Promise<void> {
    if (!this.#watcher) this.#startWatcher();
    const v = this.#readDataVersion();
    if (v !== this.#dataVersion) {
      const first = this.#dataVersion === -1;
      this.#dataVersion = v;
      if (!first) return;
    }
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#waiters.delete(done);
        signal?.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, maxWaitMs);
      this.#waiters.add(done);
      signal?.addEventListener("abort", done);
    });
    this.#dataVersion = this.#readDataVersion();
  }

  #startWatcher() {
    const wake = join(this.#runDir, "wake");
    try {
      Deno.mkdirSync(this.#runDir, { recursive: true, mode: 0o700 });
      this.#watcher = Deno.watchFs(this.#runDir, { recursive: false });
    } catch {
      return; // No watcher (e.g. an unsupported file system): waits fall back to their timeout.
    }
    (async () => {
      try {
        for await (const ev of this.#watcher!) {
          if (ev.paths.some((p) => p === wake)) {
            for (const w of [...this.#waiters]) w();
          }
        }
      } catch {
        // Closed while iterating: nothing to do.
      }
    })();
  }

  close(): Promise<void> {
    for (const w of [...this.#waiters]) w();
    this.#watcher?.close();
    this.#watcher = null;
    try {
      this.#db.close();
    } catch {
      // Already closed.
    }
    return Promise.resolve();
  }

  metricTotals(): Promise<MetricTotals> {
    // One statement, so one snapshot.
    return this.#do(() =>
      metricTotalsFrom(
        this.#all(
          `SELECT name, label, bucket, n, sum FROM metric_totals
           UNION ALL
           SELECT 'present', '', 0, coalesce(sum(n), 0), 0 FROM job_counts`,
        ) as unknown as MetricRow[],
      )
    );
  }

  finishedPerMinute(since: number): Promise<MinuteCount[]> {
    // The state index (state, finished_at) finds each state's recent jobs.
    return this.#do(() =>
      this.#all(
        `SELECT finished_at / 60000 * 60000 AS minute, state, count(*) AS n FROM jobs
         WHERE state IN ('completed','failed','dead') AND finished_at >= ?
         GROUP BY 1, 2 ORDER BY 1, 2`,
        Math.ceil(since / 60000) * 60000,
      ).map((r) => ({ minute: r.minute as number, state: r.state as JobState, n: r.n as number }))
    );
  }

  pageJobs({ sort = "newest", limit, ...filter }: JobPageOptions): Promise<Job[]> {
    return this.#do(() => {
      const { where, params } = this.#pageFilter(filter);
      return this.#all(
        `SELECT * FROM jobs ${where} ORDER BY seq ${sort === "oldest" ? "" : "DESC"} LIMIT ?`,
        ...params,
        limit,
      ).map(toJob);
    });
  }

  countPage(filter: JobCountOptions): Promise<number> {
    return this.#do(() => {
      const { state, states, search, afterSeq, beforeSeq, queue } = filter;
      if (!search && afterSeq === undefined && beforeSeq === undefined && queue === undefined) {
        if (!state && !states) {
          return this.#get("SELECT coalesce(sum(n), 0) AS n FROM job_counts")!.n as number;
        }
        const wanted = state ? (!states || states.includes(state) ? [state] : []) : states!;
        return this.#countStates(wanted);
      }
      const { where, params } = this.#pageFilter(filter);
      return this.#get(`SELECT count(*) AS n FROM jobs ${where}`, ...params)!.n as number;
    });
  }

  /** The WHERE clause of `pageJobs` and `countPage`. */
  #pageFilter(
    { state, states, search, beforeSeq, afterSeq, queue }: JobCountOptions,
  ): { where: string; params: SQLInputValue[] } {
    const where: string[] = [];
    const params: SQLInputValue[] = [];
    if (queue !== undefined) {
      where.push("queue = ?");
      params.push(queue);
    }
    if (beforeSeq !== undefined) {
      where.push("seq < ?");
      params.push(beforeSeq);
    }
    if (afterSeq !== undefined) {
      where.push("seq > ?");
      params.push(afterSeq);
    }
    this.#stateFilter(state, states, where, params);
    if (search) {
      where.push("(id LIKE ? ESCAPE '\\' OR command LIKE ? ESCAPE '\\')");
      const pattern = `%${search.replace(/[\\%_]/g, (c) => "\\" + c)}%`;
      params.push(pattern, pattern);
    }
    return { where: where.length ? "WHERE " + where.join(" AND ") : "", params };
  }

  readyLatencyMs(now: number): Promise<number> {
    return this.#do(() => {
      // The ready index is ordered by priority first: its first entry of each priority holds that
      // priority's earliest run_at, found by one seek each (no walk over the waiting jobs).
      const t = this.#get(
        `${READY_PRIORITIES} SELECT min((SELECT run_at FROM jobs INDEXED BY jobs_ready
           WHERE state IN ('pending','failed') AND waiting_on = 0 AND priority = p.pri
           ORDER BY run_at LIMIT 1)) AS t
         FROM p WHERE pri IS NOT NULL`,
      )!.t as number | null;
      return t === null ? 0 : Math.max(now - t, 0);
    });
  }
}
