/**
 * The PostgreSQL store: the same contract as sqlite.ts, for queues shared by workers on many
 * hosts. Every PostgreSQL statement of queuectl lives here, migrations included. The client
 * (`npm:postgres`) is loaded only when a `postgres://` URL is opened, so the SQLite path never
 * pays for it.
 *
 * Tables live in their own schema (`queuectl` unless the URL says `?schema=NAME`), so a database
 * shared with other programs is never touched outside it. Claims are one `UPDATE … WHERE seq IN
 * (SELECT … FOR UPDATE SKIP LOCKED) RETURNING *`; every later write is guarded by state and owner,
 * exactly as on SQLite. Idle workers wake through LISTEN/NOTIFY, with polling as the fallback.
 */
import type postgresType from "postgres";
import { ConflictError, NotFoundError, QueuectlError, StoreError } from "../errors.ts";
import { pgPassFile, redactUrl } from "./open.ts";
import { FINISHED_STATES, isIn, JOB_STATES, type JobState, type Transition } from "../job.ts";
import { sleep } from "../sleep.ts";
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

type Sql = postgresType.Sql<Record<string, never>>;

/** Where a job holds its unique key: the predicate of the partial unique index `jobs_unique_key`. */
const KEY_HELD = "unique_key IS NOT NULL AND state IN ('pending','failed','processing')";

/**
 * Append-only: a released migration is never edited. Index i migrates to version i + 1. Each runs
 * with `search_path` set to the store's schema.
 */
const MIGRATIONS: string[] = [
  `CREATE TABLE jobs (
     seq bigserial PRIMARY KEY,
     id text NOT NULL UNIQUE,
     command text NOT NULL,
     state text NOT NULL CHECK (state IN
       ('pending','processing','completed','failed','dead','cancelled')),
     attempts integer NOT NULL DEFAULT 0,
     max_retries integer NOT NULL,
     priority integer NOT NULL DEFAULT 0,
     run_at bigint NOT NULL,
     timeout_ms bigint NOT NULL DEFAULT 0,
     cwd text NOT NULL,
     env text,
     created_at bigint NOT NULL,
     updated_at bigint NOT NULL,
     started_at bigint,
     finished_at bigint,
     exit_code integer,
     error text,
     worker_id text,
     output_key text,
     retry_base integer NOT NULL DEFAULT 0
   );
   CREATE INDEX jobs_ready ON jobs (priority DESC, run_at, seq)
     WHERE state IN ('pending','failed');
   CREATE INDEX jobs_state ON jobs (state, finished_at);
   CREATE INDEX jobs_worker ON jobs (worker_id) WHERE state = 'processing';
   CREATE TABLE attempts (
     n bigserial PRIMARY KEY,
     job_id text NOT NULL,
     attempt integer NOT NULL,
     worker_id text NOT NULL,
     started_at bigint NOT NULL,
     finished_at bigint NOT NULL,
     outcome text NOT NULL,
     exit_code integer,
     signal text,
     error text,
     output_key text,
     note text
   );
   CREATE INDEX attempts_job ON attempts (job_id, finished_at);
   CREATE TABLE retries (
     n bigserial PRIMARY KEY,
     job_id text NOT NULL,
     after_attempt integer NOT NULL,
     from_state text NOT NULL,
     retried_at bigint NOT NULL
   );
   CREATE INDEX retries_job ON retries (job_id, retried_at);
   CREATE TABLE outputs (
     key text NOT NULL,
     byte_offset bigint NOT NULL,
     job_id text NOT NULL,
     data bytea NOT NULL,
     PRIMARY KEY (key, byte_offset)
   );
   CREATE INDEX outputs_job ON outputs (job_id);
   CREATE TABLE workers (
     id text PRIMARY KEY,
     pid integer NOT NULL,
     host text NOT NULL,
     supervisor_pid integer NOT NULL,
     started_at bigint NOT NULL,
     heartbeat_at bigint NOT NULL,
     stopping_at bigint,
     stopped_at bigint,
     stop_request text
   );
   CREATE TABLE config (key text PRIMARY KEY, value text NOT NULL);
   -- Counts per state, spread over slots so that concurrent writers rarely touch the same row;
   -- status sums them instead of counting a million jobs.
   CREATE TABLE job_counts (
     state text NOT NULL,
     slot integer NOT NULL,
     n bigint NOT NULL,
     PRIMARY KEY (state, slot)
   );
   INSERT INTO job_counts (state, slot, n)
     SELECT s, 0, 0 FROM unnest(ARRAY['pending','processing','completed','failed','dead',
       'cancelled']) s;
   CREATE FUNCTION count_state() RETURNS trigger LANGUAGE plpgsql AS $$
   DECLARE
     s integer := pg_backend_pid() % 64;
   BEGIN
     -- Both rows in one statement, in name order, so two writers never lock them crosswise.
     IF OLD.state < NEW.state THEN
       INSERT INTO job_counts AS c (state, slot, n) VALUES (OLD.state, s, -1), (NEW.state, s, 1)
         ON CONFLICT (state, slot) DO UPDATE SET n = c.n + excluded.n;
     ELSE
       INSERT INTO job_counts AS c (state, slot, n) VALUES (NEW.state, s, 1), (OLD.state, s, -1)
         ON CONFLICT (state, slot) DO UPDATE SET n = c.n + excluded.n;
     END IF;
     RETURN NULL;
   END $$;
   CREATE TRIGGER jobs_count_state AFTER UPDATE OF state ON jobs
     FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state) EXECUTE FUNCTION count_state();`,
  // What purge and remove delete, kept for metrics (as in the SQLite store): the deleted jobs,
  // their attempts by outcome and duration bucket (the bounds of store.ts's
  // METRIC_BUCKETS_SECONDS), their last claim's queue wait. Statement triggers on deletes only:
  // claims and finished runs pay nothing; slots as in job_counts.
  `CREATE TABLE metric_retired (
     name text NOT NULL,
     label text NOT NULL,
     bucket integer NOT NULL,
     slot integer NOT NULL,
     n bigint NOT NULL,
     sum double precision NOT NULL DEFAULT 0,
     PRIMARY KEY (name, label, bucket, slot)
   );
   CREATE FUNCTION metric_bucket(s double precision) RETURNS integer LANGUAGE sql IMMUTABLE AS
     $$ SELECT CASE WHEN s <= 0.005 THEN 0 WHEN s <= 0.01 THEN 1 WHEN s <= 0.025 THEN 2 WHEN s <= 0.05 THEN 3 WHEN s <= 0.1 THEN 4 WHEN s <= 0.25 THEN 5 WHEN s <= 0.5 THEN 6 WHEN s <= 1 THEN 7 WHEN s <= 2.5 THEN 8 WHEN s <= 5 THEN 9 WHEN s <= 10 THEN 10 WHEN s <= 30 THEN 11 WHEN s <= 60 THEN 12 WHEN s <= 300 THEN 13 WHEN s <= 1800 THEN 14 WHEN s <= 3600 THEN 15 ELSE 16 END $$;
   CREATE FUNCTION retire_attempts() RETURNS trigger LANGUAGE plpgsql AS $$
   BEGIN
     INSERT INTO metric_retired AS c (name, label, bucket, slot, n, sum)
       SELECT 'duration', outcome, metric_bucket(d), pg_backend_pid() % 64, count(*), sum(d)
       FROM (SELECT outcome, greatest(finished_at - started_at, 0) / 1000.0::double precision AS d
             FROM gone) g
       GROUP BY outcome, metric_bucket(d)
       ON CONFLICT (name, label, bucket, slot) DO UPDATE SET n = c.n + excluded.n,
         sum = c.sum + excluded.sum;
     RETURN NULL;
   END $$;
   CREATE TRIGGER attempts_retire AFTER DELETE ON attempts REFERENCING OLD TABLE AS gone
     FOR EACH STATEMENT EXECUTE FUNCTION retire_attempts();
   CREATE FUNCTION retire_jobs() RETURNS trigger LANGUAGE plpgsql AS $$
   BEGIN
     INSERT INTO metric_retired AS c (name, label, bucket, slot, n, sum)
       SELECT 'deleted', '', 0, pg_backend_pid() % 64, count(*), 0 FROM gone HAVING count(*) > 0
       ON CONFLICT (name, label, bucket, slot) DO UPDATE SET n = c.n + excluded.n;
     INSERT INTO metric_retired AS c (name, label, bucket, slot, n, sum)
       SELECT 'wait', '', metric_bucket(w), pg_backend_pid() % 64, count(*), sum(w)
       FROM (SELECT greatest(started_at - greatest(run_at, created_at), 0)
               / 1000.0::double precision AS w
             FROM gone
             WHERE started_at IS NOT NULL AND state IN ('processing','completed','dead')) g
       GROUP BY metric_bucket(w)
       ON CONFLICT (name, label, bucket, slot) DO UPDATE SET n = c.n + excluded.n,
         sum = c.sum + excluded.sum;
     RETURN NULL;
   END $$;
   CREATE TRIGGER jobs_retire AFTER DELETE ON jobs REFERENCING OLD TABLE AS gone
     FOR EACH STATEMENT EXECUTE FUNCTION retire_jobs();`,
  // Counts per state once per statement instead of once per row: a claim of 16 jobs, or one
  // statement that moves 100,000, updates each count row once (per row, one transaction piled
  // up a version of the same row per job, each update slower than the last).
  `DROP TRIGGER jobs_count_state ON jobs;
   DROP FUNCTION count_state();
   CREATE FUNCTION count_states() RETURNS trigger LANGUAGE plpgsql AS $$
   BEGIN
     -- In name order, so two writers never lock the rows crosswise.
     INSERT INTO job_counts AS c (state, slot, n)
       SELECT state, pg_backend_pid() % 64, sum(d) FROM (
         SELECT o.state, -1 AS d FROM moved_from o JOIN moved_to t USING (seq)
           WHERE o.state <> t.state
         UNION ALL
         SELECT t.state, 1 FROM moved_from o JOIN moved_to t USING (seq)
           WHERE o.state <> t.state) m
       GROUP BY state HAVING sum(d) <> 0 ORDER BY state
       ON CONFLICT (state, slot) DO UPDATE SET n = c.n + excluded.n;
     RETURN NULL;
   END $$;
   CREATE TRIGGER jobs_count_states AFTER UPDATE ON jobs
     REFERENCING OLD TABLE AS moved_from NEW TABLE AS moved_to
     FOR EACH STATEMENT EXECUTE FUNCTION count_states();`,
  // Metrics kept as running totals (as in the SQLite store), so a scrape reads a few rows per slot
  // instead of every attempt and job: each attempt's duration is observed as it is recorded, each
  // claim's queue wait as the job is claimed (every claim, retries too: a histogram's counts only
  // grow), each deleted job once; once per statement, in key order, slots as in job_counts. What
  // the rows and metric_retired held so far is folded in first.
  `CREATE TABLE metric_totals (
     name text NOT NULL,
     label text NOT NULL,
     bucket integer NOT NULL,
     slot integer NOT NULL,
     n bigint NOT NULL,
     sum double precision NOT NULL DEFAULT 0,
     PRIMARY KEY (name, label, bucket, slot)
   );
   INSERT INTO metric_totals (name, label, bucket, slot, n, sum)
     SELECT name, label, bucket, 0, sum(n), sum(sum) FROM (
       SELECT 'duration' AS name, outcome AS label, metric_bucket(d) AS bucket, count(*) AS n,
         sum(d) AS sum
       FROM (SELECT outcome, greatest(finished_at - started_at, 0) / 1000.0::double precision AS d
             FROM attempts) a
       GROUP BY outcome, metric_bucket(d)
       UNION ALL
       SELECT 'wait', '', metric_bucket(w), count(*), sum(w)
       FROM (SELECT greatest(started_at - greatest(run_at, created_at), 0)
               / 1000.0::double precision AS w
             FROM jobs
             WHERE state IN ('processing','completed','dead') AND started_at IS NOT NULL) j
       GROUP BY metric_bucket(w)
       UNION ALL
       SELECT name, label, bucket, n, sum FROM metric_retired) t
     GROUP BY name, label, bucket;
   DROP TRIGGER attempts_retire ON attempts;
   DROP FUNCTION retire_attempts();
   DROP TRIGGER jobs_retire ON jobs;
   DROP FUNCTION retire_jobs();
   DROP TABLE metric_retired;
   CREATE FUNCTION observe_attempts() RETURNS trigger LANGUAGE plpgsql AS $$
   BEGIN
     INSERT INTO metric_totals AS c (name, label, bucket, slot, n, sum)
       SELECT 'duration', outcome, metric_bucket(d), pg_backend_pid() % 64, count(*), sum(d)
       FROM (SELECT outcome, greatest(finished_at - started_at, 0) / 1000.0::double precision AS d
             FROM added) a
       GROUP BY outcome, metric_bucket(d) ORDER BY 2, 3
       ON CONFLICT (name, label, bucket, slot) DO UPDATE SET n = c.n + excluded.n,
         sum = c.sum + excluded.sum;
     RETURN NULL;
   END $$;
   CREATE TRIGGER attempts_observe AFTER INSERT ON attempts REFERENCING NEW TABLE AS added
     FOR EACH STATEMENT EXECUTE FUNCTION observe_attempts();
   CREATE OR REPLACE FUNCTION count_states() RETURNS trigger LANGUAGE plpgsql AS $$
   BEGIN
     -- In name order, so two writers never lock the rows crosswise.
     INSERT INTO job_counts AS c (state, slot, n)
       SELECT state, pg_backend_pid() % 64, sum(d) FROM (
         SELECT o.state, -1 AS d FROM moved_from o JOIN moved_to t USING (seq)
           WHERE o.state <> t.state
         UNION ALL
         SELECT t.state, 1 FROM moved_from o JOIN moved_to t USING (seq)
           WHERE o.state <> t.state) m
       GROUP BY state HAVING sum(d) <> 0 ORDER BY state
       ON CONFLICT (state, slot) DO UPDATE SET n = c.n + excluded.n;
     -- The queue wait of every claim in the statement.
     INSERT INTO metric_totals AS c (name, label, bucket, slot, n, sum)
       SELECT 'wait', '', metric_bucket(w), pg_backend_pid() % 64, count(*), sum(w)
       FROM (SELECT greatest(t.started_at - greatest(t.run_at, t.created_at), 0)
               / 1000.0::double precision AS w
             FROM moved_from o JOIN moved_to t USING (seq)
             WHERE t.state = 'processing' AND o.state <> 'processing') j
       GROUP BY metric_bucket(w) ORDER BY 3
       ON CONFLICT (name, label, bucket, slot) DO UPDATE SET n = c.n + excluded.n,
         sum = c.sum + excluded.sum;
     RETURN NULL;
   END $$;
   CREATE FUNCTION count_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
   BEGIN
     INSERT INTO metric_totals AS c (name, label, bucket, slot, n, sum)
       SELECT 'deleted', '', 0, pg_backend_pid() % 64, count(*), 0 FROM gone HAVING count(*) > 0
       ON CONFLICT (name, label, bucket, slot) DO UPDATE SET n = c.n + excluded.n;
     RETURN NULL;
   END $$;
   CREATE TRIGGER jobs_deleted AFTER DELETE ON jobs REFERENCING OLD TABLE AS gone
     FOR EACH STATEMENT EXECUTE FUNCTION count_deleted();`,
  // Recurring jobs: a cron expression, its zone, and the job each tick enqueues. `next_run_at`
  // is the compare-and-set that lets one supervisor alone fire a tick.
  `CREATE TABLE schedules (
     name text PRIMARY KEY,
     cron text NOT NULL,
     tz text NOT NULL,
     catch_up text NOT NULL CHECK (catch_up IN ('last','none')),
     command text NOT NULL,
     max_retries integer NOT NULL,
     priority integer NOT NULL,
     timeout_ms bigint NOT NULL,
     cwd text NOT NULL,
     env text,
     paused boolean NOT NULL DEFAULT false,
     next_run_at bigint,
     last_run_at bigint,
     last_job_id text,
     created_at bigint NOT NULL,
     updated_at bigint NOT NULL
   );
   CREATE INDEX schedules_due ON schedules (next_run_at) WHERE NOT paused;`,
  // Unique jobs: one job per key among the pending, failed and processing ones. Jobs without a
  // key stay out of the index.
  `ALTER TABLE jobs ADD COLUMN unique_key text;
   CREATE UNIQUE INDEX jobs_unique_key ON jobs (unique_key) WHERE ${KEY_HELD};`,
  // Dependencies (`after`), as on SQLite: one row per (job, job it waits for); `waiting_on`
  // counts the ones not yet completed and keeps waiting jobs out of the ready index;
  // `has_dependants` spares nearly every finishing job a look-up.
  `ALTER TABLE jobs ADD COLUMN waiting_on integer NOT NULL DEFAULT 0;
   ALTER TABLE jobs ADD COLUMN has_dependants boolean NOT NULL DEFAULT false;
   CREATE TABLE job_deps (
     job_id text NOT NULL,
     dep_id text NOT NULL,
     PRIMARY KEY (job_id, dep_id)
   );
   CREATE INDEX job_deps_dep ON job_deps (dep_id);
   DROP INDEX jobs_ready;
   CREATE INDEX jobs_ready ON jobs (priority DESC, run_at, seq)
     WHERE state IN ('pending','failed') AND waiting_on = 0;
   CREATE INDEX jobs_waiting ON jobs (seq) WHERE state = 'pending' AND waiting_on > 0;`,
  // Named queues, as in the SQLite store: ready jobs by queue (a claim that skips a paused or
  // full queue never walks its jobs), jobs of queues other than `default` by state for their
  // counts (default's are the kept totals minus these), and each queue's rules once one is set.
  // A claim of a limited queue locks its row here, so claimers of it take turns.
  `ALTER TABLE jobs ADD COLUMN queue text NOT NULL DEFAULT 'default';
   CREATE INDEX jobs_ready_queue ON jobs (queue, priority DESC, run_at, seq)
     WHERE state IN ('pending','failed') AND waiting_on = 0;
   CREATE INDEX jobs_queue ON jobs (queue, state) WHERE queue <> 'default';
   CREATE TABLE queues (
     name text PRIMARY KEY,
     paused boolean NOT NULL DEFAULT false,
     concurrency integer NOT NULL DEFAULT 0
   );`,
  // As in the SQLite store: a schedule's queue, and the unique key its jobs carry.
  `ALTER TABLE schedules ADD COLUMN queue text NOT NULL DEFAULT 'default';
   ALTER TABLE schedules ADD COLUMN unique_key text;`,
  // A worker's results and its next claim in one call: one round trip and one commit instead of
  // three round trips (BEGIN, statements, COMMIT). The guarded ends of runs with their attempt
  // rows (one statement, so the count and metric triggers run once for all), the jobs waiting for
  // a completed one freed by one, the runs' last output (one blob, cut by offsets) trimmed to its
  // cap, a wake-up when a job is ready again, then up to p_lim ready jobs claimed from every queue
  // while no queue has a rule (checked here too). Returns the finished jobs, then the claimed
  // ones (state 'processing'). Jobs that die with dependants are followed by the caller.
  `CREATE FUNCTION finish_runs(p_worker text, p_now bigint, p_lim integer, p_channel text,
       p_attempt integer, p_ids text[], p_states text[], p_attempts integer[], p_run_ats bigint[],
       p_retry_bases integer[], p_outcomes text[], p_exit_codes integer[], p_signals text[],
       p_errors text[], p_notes text[], p_out_offsets bigint[], p_out_starts integer[],
       p_out_lens integer[], p_out_caps bigint[], p_out_blob bytea)
     RETURNS SETOF jobs LANGUAGE plpgsql AS $$
   DECLARE
     r jobs;
     done jobs[] := '{}';
     wake boolean := false;
   BEGIN
     FOR r IN
       WITH e AS (
         SELECT * FROM unnest(p_ids, p_states, p_attempts, p_run_ats, p_retry_bases, p_outcomes,
           p_exit_codes, p_signals, p_errors, p_notes)
           WITH ORDINALITY AS e(id, state, attempts, run_at, retry_base, outcome, exit_code,
             signal, error, note, i)),
       u AS (
         UPDATE jobs j SET state = e.state, attempts = e.attempts,
           run_at = coalesce(e.run_at, j.run_at),
           retry_base = coalesce(e.retry_base, j.retry_base), finished_at = p_now,
           updated_at = p_now, exit_code = e.exit_code,
           error = CASE WHEN e.outcome = 'completed' THEN NULL ELSE e.error END
         FROM e
         WHERE j.id = e.id AND j.state = 'processing' AND j.worker_id = p_worker
           AND (p_attempt IS NULL OR j.attempts = p_attempt)
         RETURNING j.*),
       a AS (
         INSERT INTO attempts (job_id, attempt, worker_id, started_at, finished_at, outcome,
           exit_code, signal, error, output_key, note)
         SELECT u.id,
           CASE WHEN e.outcome = 'interrupted' THEN u.attempts + 1 ELSE u.attempts END,
           p_worker, coalesce(u.started_at, p_now), p_now, e.outcome, e.exit_code, e.signal,
           e.error, u.output_key, e.note
         FROM u JOIN e USING (id) ORDER BY e.i)
       SELECT * FROM u
     LOOP
       done := done || r;
       wake := wake OR r.state IN ('pending', 'failed');
     END LOOP;
     IF EXISTS (SELECT 1 FROM unnest(done) d WHERE d.has_dependants AND d.state = 'completed')
     THEN
       WITH f AS (
         UPDATE jobs x SET waiting_on = x.waiting_on - g.n
         FROM (SELECT k.job_id, count(*)::integer AS n FROM job_deps k
               WHERE k.dep_id IN (SELECT d.id FROM unnest(done) d
                                  WHERE d.has_dependants AND d.state = 'completed')
               GROUP BY k.job_id) g
         WHERE x.id = g.job_id
         RETURNING x.waiting_on)
       SELECT wake OR coalesce(bool_or(f.waiting_on = 0), false) INTO wake FROM f;
     END IF;
     IF p_out_blob IS NOT NULL THEN
       INSERT INTO outputs AS o (key, byte_offset, job_id, data)
         SELECT d.output_key, x.off, d.id, substring(p_out_blob FROM x.start + 1 FOR x.len)
         FROM unnest(p_ids, p_out_offsets, p_out_starts, p_out_lens) AS x(id, off, start, len)
         JOIN unnest(done) d ON d.id = x.id
         WHERE x.len > 0 AND d.output_key IS NOT NULL
         ON CONFLICT (key, byte_offset) DO UPDATE SET data = excluded.data;
       DELETE FROM outputs o
         USING unnest(p_ids, p_out_offsets, p_out_lens, p_out_caps) AS x(id, off, len, cap),
           unnest(done) d
         WHERE d.id = x.id AND x.len > 0 AND o.key = d.output_key
           AND o.byte_offset + length(o.data) <= x.off + x.len - x.cap;
     END IF;
     IF wake THEN
       PERFORM pg_notify(p_channel, '');
     END IF;
     RETURN QUERY SELECT * FROM unnest(done);
     IF p_lim > 0 THEN
       RETURN QUERY
         WITH c AS (
           UPDATE jobs SET state = 'processing', attempts = attempts + 1, worker_id = p_worker,
             started_at = p_now, finished_at = NULL, updated_at = p_now,
             output_key = substr(md5(random()::text || clock_timestamp()::text), 1, 16)
           WHERE seq IN (
             SELECT seq FROM jobs
             WHERE state IN ('pending','failed') AND waiting_on = 0 AND run_at <= p_now
               AND NOT EXISTS (SELECT 1 FROM queues WHERE paused OR concurrency > 0)
             ORDER BY priority DESC, run_at, seq LIMIT p_lim
             FOR UPDATE SKIP LOCKED)
           RETURNING *)
         SELECT * FROM c;
     END IF;
   END $$;`,
  // finish_runs keeps the counts and metrics itself: one statement for the per-state counts and
  // one for the metrics per call, instead of the update and insert triggers firing three times
  // (five statements, three trigger calls); with one job per call they were a third of the
  // server's CPU. The triggers stay for every other writer and skip while finish_runs runs
  // (its SET of queuectl.counted ends with the call). The claim keeps each job's state before
  // it, for the counts. Rows are returned as they are read (RETURN NEXT), and whether a completed
  // job has dependants is noted then, instead of three more statements over the arrays.
  `DROP TRIGGER jobs_count_states ON jobs;
   CREATE TRIGGER jobs_count_states AFTER UPDATE ON jobs
     REFERENCING OLD TABLE AS moved_from NEW TABLE AS moved_to FOR EACH STATEMENT
     WHEN (current_setting('queuectl.counted', true) IS DISTINCT FROM 'on')
     EXECUTE FUNCTION count_states();
   DROP TRIGGER attempts_observe ON attempts;
   CREATE TRIGGER attempts_observe AFTER INSERT ON attempts REFERENCING NEW TABLE AS added
     FOR EACH STATEMENT WHEN (current_setting('queuectl.counted', true) IS DISTINCT FROM 'on')
     EXECUTE FUNCTION observe_attempts();
   CREATE OR REPLACE FUNCTION finish_runs(p_worker text, p_now bigint, p_lim integer,
       p_channel text, p_attempt integer, p_ids text[], p_states text[], p_attempts integer[],
       p_run_ats bigint[], p_retry_bases integer[], p_outcomes text[], p_exit_codes integer[],
       p_signals text[], p_errors text[], p_notes text[], p_out_offsets bigint[],
       p_out_starts integer[], p_out_lens integer[], p_out_caps bigint[], p_out_blob bytea)
     RETURNS SETOF jobs LANGUAGE plpgsql SET queuectl.counted = 'on' AS $$
   DECLARE
     r jobs;
     done jobs[] := '{}';
     claimed jobs[] := '{}';
     was text[] := '{}';
     cr record;
     deps boolean := false;
     wake boolean := false;
     my_slot integer := pg_backend_pid() % 64;
   BEGIN
     IF cardinality(p_ids) > 0 THEN
       FOR r IN
         WITH e AS (
           SELECT * FROM unnest(p_ids, p_states, p_attempts, p_run_ats, p_retry_bases,
             p_outcomes, p_exit_codes, p_signals, p_errors, p_notes)
             WITH ORDINALITY AS e(id, state, attempts, run_at, retry_base, outcome, exit_code,
               signal, error, note, i)),
         u AS (
           UPDATE jobs j SET state = e.state, attempts = e.attempts,
             run_at = coalesce(e.run_at, j.run_at),
             retry_base = coalesce(e.retry_base, j.retry_base), finished_at = p_now,
             updated_at = p_now, exit_code = e.exit_code,
             error = CASE WHEN e.outcome = 'completed' THEN NULL ELSE e.error END
           FROM e
           WHERE j.id = e.id AND j.state = 'processing' AND j.worker_id = p_worker
             AND (p_attempt IS NULL OR j.attempts = p_attempt)
           RETURNING j.*),
         a AS (
           INSERT INTO attempts (job_id, attempt, worker_id, started_at, finished_at, outcome,
             exit_code, signal, error, output_key, note)
           SELECT u.id,
             CASE WHEN e.outcome = 'interrupted' THEN u.attempts + 1 ELSE u.attempts END,
             p_worker, coalesce(u.started_at, p_now), p_now, e.outcome, e.exit_code, e.signal,
             e.error, u.output_key, e.note
           FROM u JOIN e USING (id) ORDER BY e.i)
         SELECT * FROM u
       LOOP
         RETURN NEXT r;
         done := done || r;
         wake := wake OR r.state IN ('pending', 'failed');
         deps := deps OR (r.has_dependants AND r.state = 'completed');
       END LOOP;
     END IF;
     IF deps THEN
       WITH f AS (
         UPDATE jobs x SET waiting_on = x.waiting_on - g.n
         FROM (SELECT k.job_id, count(*)::integer AS n FROM job_deps k
               WHERE k.dep_id IN (SELECT d.id FROM unnest(done) d
                                  WHERE d.has_dependants AND d.state = 'completed')
               GROUP BY k.job_id) g
         WHERE x.id = g.job_id
         RETURNING x.waiting_on)
       SELECT wake OR coalesce(bool_or(f.waiting_on = 0), false) INTO wake FROM f;
     END IF;
     IF p_out_blob IS NOT NULL THEN
       INSERT INTO outputs AS o (key, byte_offset, job_id, data)
         SELECT d.output_key, x.off, d.id, substring(p_out_blob FROM x.start + 1 FOR x.len)
         FROM unnest(p_ids, p_out_offsets, p_out_starts, p_out_lens) AS x(id, off, start, len)
         JOIN unnest(done) d ON d.id = x.id
         WHERE x.len > 0 AND d.output_key IS NOT NULL
         ON CONFLICT (key, byte_offset) DO UPDATE SET data = excluded.data;
       DELETE FROM outputs o
         USING unnest(p_ids, p_out_offsets, p_out_lens, p_out_caps) AS x(id, off, len, cap),
           unnest(done) d
         WHERE d.id = x.id AND x.len > 0 AND o.key = d.output_key
           AND o.byte_offset + length(o.data) <= x.off + x.len - x.cap;
     END IF;
     IF wake THEN
       PERFORM pg_notify(p_channel, '');
     END IF;
     IF p_lim > 0 THEN
       FOR cr IN WITH s AS (
         SELECT seq, state FROM jobs
         WHERE state IN ('pending','failed') AND waiting_on = 0 AND run_at <= p_now
           AND NOT EXISTS (SELECT 1 FROM queues WHERE paused OR concurrency > 0)
         ORDER BY priority DESC, run_at, seq LIMIT p_lim
         FOR UPDATE SKIP LOCKED),
       c AS (
         UPDATE jobs j SET state = 'processing', attempts = j.attempts + 1, worker_id = p_worker,
           started_at = p_now, finished_at = NULL, updated_at = p_now,
           output_key = substr(md5(random()::text || clock_timestamp()::text), 1, 16)
         FROM s WHERE j.seq = s.seq
         RETURNING j AS job, s.state AS was)
       SELECT * FROM c LOOP
         RETURN NEXT cr.job;
         claimed := claimed || cr.job;
         was := was || cr.was;
       END LOOP;
     END IF;
     IF cardinality(done) + cardinality(claimed) > 0 THEN
       -- As count_states and observe_attempts do, in key order. A finished run was processing.
       INSERT INTO job_counts AS k (state, slot, n)
         SELECT m.state, my_slot, sum(m.d) FROM (
           SELECT 'processing' AS state, -cardinality(done) + cardinality(claimed) AS d
           UNION ALL SELECT d.state, 1 FROM unnest(done) d
           UNION ALL SELECT w, -1 FROM unnest(was) w) m
         GROUP BY m.state HAVING sum(m.d) <> 0 ORDER BY m.state
         ON CONFLICT (state, slot) DO UPDATE SET n = k.n + excluded.n;
       INSERT INTO metric_totals AS k (name, label, bucket, slot, n, sum)
         SELECT t.name, t.label, metric_bucket(t.v), my_slot, count(*), sum(t.v) FROM (
           SELECT 'duration' AS name, x.outcome AS label,
             greatest(p_now - coalesce(d.started_at, p_now), 0) / 1000.0::double precision AS v
           FROM unnest(done) d JOIN unnest(p_ids, p_outcomes) AS x(id, outcome) ON x.id = d.id
           UNION ALL
           SELECT 'wait', '', greatest(c.started_at - greatest(c.run_at, c.created_at), 0)
             / 1000.0::double precision
           FROM unnest(claimed) c) t
         GROUP BY t.name, t.label, metric_bucket(t.v) ORDER BY 1, 2, 3
         ON CONFLICT (name, label, bucket, slot) DO UPDATE SET n = k.n + excluded.n,
           sum = k.sum + excluded.sum;
     END IF;
   END $$;`,
  // The per-state counts of any other update from its two transition tables apart (each row's
  // old state -1, its new one +1), and the claims' queue wait planned afresh each time: the plan
  // the trigger kept from its first, small statement joined the two tables row by row, so one
  // statement that moved thousands of jobs took seconds (5,000 after 1: 3.4 s against 0.1 s).
  `CREATE OR REPLACE FUNCTION count_states() RETURNS trigger LANGUAGE plpgsql AS $$
   BEGIN
     -- In name order, so two writers never lock the rows crosswise.
     INSERT INTO job_counts AS c (state, slot, n)
       SELECT state, pg_backend_pid() % 64, sum(d) FROM (
         SELECT state, -1 AS d FROM moved_from
         UNION ALL
         SELECT state, 1 FROM moved_to) m
       GROUP BY state HAVING sum(d) <> 0 ORDER BY state
       ON CONFLICT (state, slot) DO UPDATE SET n = c.n + excluded.n;
     -- The queue wait of every claim in the statement.
     EXECUTE $q$
       INSERT INTO metric_totals AS c (name, label, bucket, slot, n, sum)
         SELECT 'wait', '', metric_bucket(w), pg_backend_pid() % 64, count(*), sum(w)
         FROM (SELECT greatest(t.started_at - greatest(t.run_at, t.created_at), 0)
                 / 1000.0::double precision AS w
               FROM moved_from o JOIN moved_to t USING (seq)
               WHERE t.state = 'processing' AND o.state <> 'processing') j
         GROUP BY metric_bucket(w) ORDER BY 3
         ON CONFLICT (name, label, bucket, slot) DO UPDATE SET n = c.n + excluded.n,
           sum = c.sum + excluded.sum$q$;
     RETURN NULL;
   END $$;`,
];

export const PG_SCHEMA_VERSION = MIGRATIONS.length;

/** The insert of one schedule's row, as it is (`addSchedule` adds its conflict clause). */
function insertSchedule(sql: Sql, s: Schedule) {
  return sql`
    INSERT INTO schedules (name, cron, tz, catch_up, command, max_retries, priority, timeout_ms,
      cwd, env, queue, unique_key, paused, next_run_at, last_run_at, last_job_id, created_at,
      updated_at)
    VALUES (${s.name}, ${s.cron}, ${s.tz}, ${s.catchUp}, ${s.job.command}, ${s.job.maxRetries},
      ${s.job.priority}, ${s.job.timeoutMs}, ${s.job.cwd},
      ${s.job.env === null ? null : JSON.stringify(s.job.env)}, ${s.job.queue ?? DEFAULT_QUEUE},
      ${s.job.uniqueKey ?? null}, ${s.paused}, ${s.nextRunAt}::bigint, ${s.lastRunAt}::bigint,
      ${s.lastJobId}, ${s.createdAt}, ${s.updatedAt})`;
}

/** A schedule with the state of the job its last tick enqueued. */
const SCHEDULE_SELECT = `SELECT s.*, j.state AS last_job_state FROM schedules s
  LEFT JOIN jobs j ON j.id = s.last_job_id`;

/** The NOTIFY channel that wakes idle workers of one schema. */
const wakeChannel = (schema: string) => `queuectl_wake_${schema}`;

export interface PostgresOptions {
  /** `synchronous_commit` stays on when true (default); workers turn it off. */
  durable?: boolean;
  /** Create a missing queue (default); `false` refuses it with a NotFoundError, as SQLite does. */
  create?: boolean;
}

/** The parts of a `postgres://` URL queuectl reads itself; the rest goes to the client. */
export interface PgUrl {
  /** The URL without `schema=` and without a password, for messages. */
  redacted: string;
  /** The URL given to the client (with the password, without `schema=`). */
  clientUrl: string;
  schema: string;
  host: string;
  port: number;
  /**
   * `?listen=off`: idle workers poll instead of LISTEN, for connection poolers in transaction
   * mode (PgBouncer), which do not carry notifications.
   */
  listen: boolean;
  /**
   * `?pooler=transaction`: a connection pooler in transaction mode (PgBouncer) stands between
   * queuectl and the server, so no session state holds from one transaction to the next: no
   * LISTEN (as `listen=off`), no prepared statements, and no settings in the startup packet
   * (the pooler refuses them); the schema must come from the server's side (the user's
   * `search_path`, or the pooler's `connect_query`), and workers commit with the server's own
   * `synchronous_commit`.
   */
  pooler: boolean;
  /** `?connect_timeout=S` as libpq reads it: seconds to wait for the server (default 10). */
  connectTimeoutS: number;
}

/** Parses a `postgres://` or `postgresql://` URL; throws StoreError with a one-line reason. */
export function parsePgUrl(url: string): PgUrl {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new StoreError(
      `"${redactUrl(url)}" is not a valid PostgreSQL URL; write postgres://USER@HOST:5432/DB`,
      "invalid",
    );
  }
  const schema = u.searchParams.get("schema") ?? "queuectl";
  if (!/^[a-z_][a-z0-9_]{0,39}$/.test(schema)) {
    throw new StoreError(
      `schema "${schema}" in the URL must be lowercase letters, digits and _ (at most 40)`,
      "invalid",
    );
  }
  u.searchParams.delete("schema");
  const listenParam = u.searchParams.get("listen");
  if (listenParam !== null && listenParam !== "on" && listenParam !== "off") {
    throw new StoreError(`listen in the URL is on or off, got "${listenParam}"`, "invalid");
  }
  u.searchParams.delete("listen");
  const poolerParam = u.searchParams.get("pooler");
  if (poolerParam !== null && poolerParam !== "transaction") {
    throw new StoreError(
      `pooler in the URL is transaction (a pooler in transaction mode), got "${poolerParam}"`,
      "invalid",
    );
  }
  u.searchParams.delete("pooler");
  const timeoutParam = u.searchParams.get("connect_timeout");
  if (timeoutParam !== null && !/^[1-9]\d{0,3}$/.test(timeoutParam)) {
    throw new StoreError(
      `connect_timeout in the URL is whole seconds (1 to 9999), got "${timeoutParam}"`,
      "invalid",
    );
  }
  u.searchParams.delete("connect_timeout");
  const clientUrl = u.toString();
  const shown = new URL(clientUrl);
  if (shown.password) shown.password = "";
  if (schema !== "queuectl") shown.searchParams.set("schema", schema);
  if (listenParam === "off") shown.searchParams.set("listen", "off");
  if (poolerParam !== null) shown.searchParams.set("pooler", poolerParam);
  return {
    redacted: shown.toString().replace(/:@/, "@"),
    clientUrl,
    schema,
    host: u.hostname || "localhost",
    port: Number(u.port || 5432),
    listen: listenParam !== "off" && poolerParam === null,
    pooler: poolerParam !== null,
    connectTimeoutS: timeoutParam === null ? 10 : Number(timeoutParam),
  };
}

const MS = {
  to: 20,
  from: [20],
  serialize: (x: number) => String(x),
  parse: (x: string) => Number(x),
};

/** Turns the client's and the server's errors into one-line messages that say what to do. */
export function describePgError(e: unknown, where: PgUrl): Error {
  if (!(e instanceof Error) || e instanceof QueuectlError) {
    return e as Error;
  }
  const err = e as Error & { code?: string; errno?: string };
  const code = err.code ?? "";
  const at = `${where.host}:${where.port}`;
  if (code === "ECONNREFUSED") {
    return new StoreError(
      `cannot reach PostgreSQL at ${at}: connection refused; check that the server runs and ` +
        `the URL's host and port`,
      "unreachable",
    );
  }
  if (
    code === "EPERM" || code === "EACCES" || err.name === "NotCapable" ||
    /Requires net access/i.test(err.message)
  ) {
    return new StoreError(
      `no permission to reach PostgreSQL at ${at}; run with --allow-net=${at}`,
      "denied",
    );
  }
  if (/before secure TLS connection/i.test(err.message)) {
    return new StoreError(
      `PostgreSQL at ${at} closed the connection before TLS was set up: the server may not ` +
        `accept SSL; enable ssl on the server or drop sslmode= from the URL`,
      "unreachable",
    );
  }
  if (code === "42704" && /configuration parameter/.test(err.message)) {
    // The client sends every parameter of the URL it does not know itself as a setting.
    return new StoreError(
      `PostgreSQL at ${at} refused a setting of the URL (${err.message}); remove it from the URL`,
      "invalid",
    );
  }
  if (code === "22023" && /parameter/.test(err.message)) {
    return new StoreError(
      `PostgreSQL at ${at} refused a setting of the URL (${err.message}); fix its value`,
      "invalid",
    );
  }
  if (code === "57014" || code === "55P03") {
    // statement_timeout or lock_timeout (of the URL, the user or the server), or a cancel.
    return new StoreError(
      `PostgreSQL at ${at} cancelled a statement of queuectl (${err.message}); if a timeout ` +
        `did it, raise statement_timeout or lock_timeout (in the URL, or for this user)`,
      "busy",
    );
  }
  if (code === "ENOTFOUND" || code === "EAI_AGAIN" || /failed to lookup/i.test(err.message)) {
    return new StoreError(
      `cannot resolve the PostgreSQL host "${where.host}"; check the URL`,
      "unreachable",
    );
  }
  if (code === "CONNECT_TIMEOUT" || code === "ETIMEDOUT") {
    return new StoreError(
      `PostgreSQL at ${at} did not answer in time; check the URL and network`,
      "unreachable",
    );
  }
  if (code === "3D000") {
    return new StoreError(
      `database does not exist on ${at} (${where.redacted}); create it (createdb NAME) or fix ` +
        `the URL`,
      "missing",
    );
  }
  if (code === "28P01") {
    // The server's words name the user, never the password; the advice names where it came from.
    return new StoreError(
      `PostgreSQL at ${at} refused the credentials of ${where.redacted}: ${err.message}; ` +
        passwordAdvice(where),
      "denied",
    );
  }
  if (code === "28000" && /no PostgreSQL user name/.test(err.message)) {
    return new StoreError(
      `no PostgreSQL user to connect as: write it in the URL (postgres://USER@HOST:5432/DB) ` +
        `or set PGUSER`,
      "invalid",
    );
  }
  if (code === "28000") {
    return new StoreError(
      `PostgreSQL at ${at} refused the credentials of ${where.redacted}: ${err.message}; ` +
        `check the user, and the server's pg_hba.conf`,
      "denied",
    );
  }
  if (code === "25006") {
    return new StoreError(
      `cannot write ${where.redacted}: the server is read-only (a standby?)`,
      "read_only",
    );
  }
  if (code === "53100") {
    return new StoreError(`cannot write ${where.redacted}: the server's disk is full`, "full");
  }
  if (code === "42501") {
    return new StoreError(
      `PostgreSQL denied access in ${where.redacted} (${err.message}); grant the user rights ` +
        `on schema ${where.schema}`,
      "denied",
    );
  }
  if (/unsupported startup parameter/.test(err.message)) {
    return new StoreError(
      `the server at ${at} refused a setting of the connection (${err.message}): through ` +
        `PgBouncer in transaction mode, add ?pooler=transaction to the URL`,
      "invalid",
    );
  }
  if (
    code === "CONNECTION_CLOSED" || code === "CONNECTION_ENDED" ||
    code === "CONNECTION_DESTROYED" ||
    code === "ECONNRESET" || code === "EPIPE" || /^(08|57P0)/.test(code)
  ) {
    return new StoreError(`lost the connection to PostgreSQL at ${at}; try again`, "unreachable");
  }
  return e;
}

/** What to check when the server refused the password: the place it came from. */
function passwordAdvice(url: PgUrl): string {
  if (new URL(url.clientUrl).password) return "check the password in the URL";
  if (Deno.env.get("PGPASSWORD")) return "check PGPASSWORD";
  if (passwordFor(url) !== undefined) {
    return `check the password for this server in ${pgPassFile()}`;
  }
  return "no password was given: set PGPASSWORD or add it to ~/.pgpass";
}

/**
 * The password for `url` when neither the URL nor `PGPASSWORD` gives one: the first matching line
 * of the password file (`PGPASSFILE`, else `~/.pgpass`; `host:port:database:user:password`, `*`
 * matches anything, `\\:` is a colon), as libpq reads it. `undefined` when none matches.
 */
export function passwordFor(url: PgUrl): string | undefined {
  const u = new URL(url.clientUrl);
  if (u.password || Deno.env.get("PGPASSWORD")) return undefined;
  const file = pgPassFile();
  if (!file) return undefined;
  let text: string;
  try {
    text = Deno.readTextFileSync(file);
  } catch {
    return undefined;
  }
  const user = decodeURIComponent(u.username) || Deno.env.get("PGUSER") ||
    Deno.env.get("USER") || "";
  const database = decodeURIComponent(u.pathname.replace(/^\//, "")) || user;
  const want = [url.host, String(url.port), database, user];
  for (const line of text.split("\n")) {
    if (line.trim() === "" || line.startsWith("#")) continue;
    const fields: string[] = [];
    let cur = "";
    for (let i = 0; i < line.length; i++) {
      if (line[i] === "\\" && i + 1 < line.length) cur += line[++i];
      else if (line[i] === ":" && fields.length < 4) {
        fields.push(cur);
        cur = "";
      } else cur += line[i];
    }
    fields.push(cur);
    if (fields.length !== 5) continue;
    if (want.every((w, i) => fields[i] === "*" || fields[i] === w)) return fields[4];
  }
  return undefined;
}

/** Whether an error from the server is worth retrying as it is (a deadlock, a serialization). */
function isRetryable(e: unknown): boolean {
  const code = (e as { code?: string })?.code;
  return code === "40P01" || code === "40001";
}

/**
 * Whether PostgreSQL says that a queue that was there is not: its database (3D000), schema
 * (3F000), a table (42P01) or a function of ours (42883) missing.
 */
function queueGone(e: unknown): boolean {
  return GONE_CODES.has((e as { code?: string })?.code ?? "");
}
const GONE_CODES = new Set(["3D000", "3F000", "42P01", "42883"]);

/** Waits for `promise`, at most `ms` and not past `signal`; the timer ends with it. */
async function within(promise: Promise<void>, ms: number, signal?: AbortSignal): Promise<void> {
  const settled = new AbortController();
  await Promise.race([
    promise,
    sleep(ms, signal ? AbortSignal.any([signal, settled.signal]) : settled.signal),
  ]);
  settled.abort();
}

/**
 * The client looks up the array types on each new connection in a promise nobody awaits: when
 * that query fails (a statement_timeout of a millisecond, a cancel), the query waiting behind it
 * fails with the same error, which is ours to report, and the orphaned one would end the process
 * with a stack trace. Only that rejection is dropped.
 */
let orphanGuard = false;
function ignoreOrphanedTypeFetch() {
  if (orphanGuard) return;
  orphanGuard = true;
  globalThis.addEventListener("unhandledrejection", (e) => {
    const reason = e.reason as { name?: string; query?: unknown } | null;
    if (
      reason?.name === "PostgresError" && typeof reason.query === "string" &&
      reason.query.includes("b.typarray")
    ) {
      e.preventDefault();
    }
  });
}

export class PostgresStore implements Store {
  readonly location: string;
  #sql: Sql;
  #url: PgUrl;
  #instance: string | null = null;
  #listening: Promise<void> | null = null;
  #waiters = new Set<() => void>();
  #changed = false;

  private constructor(url: PgUrl, sql: Sql) {
    this.location = url.redacted;
    this.#url = url;
    this.#sql = sql;
  }

  /** Connects, creates or migrates the schema, and refuses a schema of a newer queuectl. */
  static async open(url: string, options: PostgresOptions = {}): Promise<PostgresStore> {
    const parsed = parsePgUrl(url);
    const at = `${parsed.host}:${parsed.port}`;
    if (Deno.permissions.querySync({ name: "net", host: at }).state !== "granted") {
      throw new StoreError(
        `this process may not connect to ${at}; run queuectl with --allow-net=${at} ` +
          `(a compiled queuectl needs a build with --allow-net)`,
        "denied",
      );
    }
    const { default: postgres } = await import("postgres");
    ignoreOrphanedTypeFetch();
    const pass = passwordFor(parsed);
    const sql = postgres(parsed.clientUrl, {
      ...(pass !== undefined ? { pass } : {}),
      max: 1,
      idle_timeout: 0,
      connect_timeout: parsed.connectTimeoutS,
      onnotice: () => {},
      types: { ms: MS },
      // Through a pooler: no named statements (each call is a transaction of its own: #do).
      ...(parsed.pooler ? { prepare: false } : {}),
      connection: {
        application_name: "queuectl",
        ...(parsed.pooler ? {} : {
          search_path: parsed.schema,
          ...(options.durable === false ? { synchronous_commit: "off" } : {}),
        }),
      },
    }) as unknown as Sql;
    const store = new PostgresStore(parsed, sql);
    // The client's own connect timeout does not fire under Deno when the host never answers (an
    // address nothing routes to): bound the first connection here.
    let timer: ReturnType<typeof setTimeout> | undefined;
    const giveUp = new AbortController();
    const unanswered = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new StoreError(
              `no answer from PostgreSQL at ${at} within ${parsed.connectTimeoutS} s; check ` +
                `the host and port in the URL, and that the server is up and reachable`,
              "unreachable",
            ),
          ),
        parsed.connectTimeoutS * 1000 + 500,
      );
    });
    try {
      await Promise.race([store.#setup(options.create ?? true), unanswered]);
    } catch (e) {
      await Promise.race([sql.end({ timeout: 1 }).catch(() => {}), sleep(1500, giveUp.signal)]);
      giveUp.abort();
      throw describePgError(e, parsed);
    } finally {
      clearTimeout(timer);
    }
    return store;
  }

  async #setup(create: boolean) {
    const sql = this.#sql;
    const schema = this.#url.schema;
    if (this.#url.pooler) {
      // Every statement names its tables without their schema: the server's side must set it.
      const [{ path }] = await sql`SELECT current_setting('search_path') AS path`;
      const first = String(path).split(",")[0].trim().replace(/^"(.*)"$/, "$1");
      if (first !== schema) {
        throw new StoreError(
          `through a transaction pooler the schema comes from the server, whose search_path ` +
            `is "${path}": set it to ${schema} for this user (ALTER ROLE … SET search_path = ` +
            `${schema}) or in the pooler (PgBouncer: connect_query='SET search_path TO ${schema}')`,
          "missing",
        );
      }
    }
    const { version, instance } = await this.#readMeta();
    if (version === 0 && !create) {
      throw new NotFoundError(
        `no queue in ${this.location} yet; enqueue a job or run queuectl init (or pass --db)`,
      );
    }
    if (version > PG_SCHEMA_VERSION) {
      throw new StoreError(
        `${this.location} has queuectl schema version ${version}, newer than this queuectl ` +
          `understands (${PG_SCHEMA_VERSION}); upgrade queuectl`,
        "too_new",
      );
    }
    if (version === PG_SCHEMA_VERSION) {
      this.#instance = instance;
      return;
    }
    await sql.begin(async (tx) => {
      // One migrating process at a time, whichever host it runs on.
      await tx`SELECT pg_advisory_xact_lock(hashtext(${"queuectl:" + schema}))`;
      const [{ exists }] = await tx`
        SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = ${schema}) AS exists`;
      if (exists) {
        const [{ ours }] = await tx`
          SELECT EXISTS (SELECT 1 FROM pg_tables WHERE schemaname = ${schema}
            AND tablename = 'meta') AS ours`;
        const [{ n }] = await tx`
          SELECT count(*)::int AS n FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace
          WHERE s.nspname = ${schema}`;
        if (!ours && n > 0) {
          throw new StoreError(
            `schema "${schema}" in ${this.location} belongs to another program; pass ` +
              `?schema=NAME in the URL to use another (queuectl leaves this one untouched)`,
            "not_ours",
          );
        }
      }
      await tx.unsafe(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
      await tx.unsafe(`SET LOCAL search_path = "${schema}"`);
      await tx.unsafe(
        `CREATE TABLE IF NOT EXISTS meta (key text PRIMARY KEY, value text NOT NULL)`,
      );
      const [row] = await tx`SELECT value FROM meta WHERE key = 'schema_version'`;
      const v = row ? Number(row.value) : 0;
      for (let i = v; i < PG_SCHEMA_VERSION; i++) await tx.unsafe(MIGRATIONS[i]);
      await tx`
        INSERT INTO meta (key, value) VALUES ('schema_version', ${String(PG_SCHEMA_VERSION)})
        ON CONFLICT (key) DO UPDATE SET value = excluded.value`;
      await tx`
        INSERT INTO meta (key, value) VALUES ('instance', ${crypto.randomUUID()})
        ON CONFLICT (key) DO NOTHING`;
    });
    this.#instance = await this.#readInstance();
  }

  /** The schema version (0 without one) and the instance id, in two round trips at most. */
  async #readMeta(): Promise<{ version: number; instance: string | null }> {
    const [row] = await this.#sql`
      SELECT to_regclass(${this.#url.schema + ".meta"}) IS NOT NULL AS present`;
    if (!row.present) return { version: 0, instance: null };
    const meta = new Map(
      (await this.#sql`SELECT key, value FROM meta WHERE key IN ('schema_version', 'instance')`)
        .map((r) => [r.key as string, r.value as string]),
    );
    return {
      version: Number(meta.get("schema_version") ?? 0),
      instance: meta.get("instance") ?? null,
    };
  }

  async #readInstance(): Promise<string | null> {
    const [row] = await this.#sql`SELECT value FROM meta WHERE key = 'instance'`;
    return (row?.value as string) ?? null;
  }

  /**
   * `describePgError`, knowing that this queue existed when this process opened it: its database
   * or its tables missing now means it was dropped under us, as a deleted SQLite file is. So does
   * its schema or a function of ours missing (`finish_runs`, the worker's path, names no table).
   */
  #describe(e: unknown): Error {
    return queueGone(e) && this.#instance !== null
      ? this.#replaced()
      : describePgError(e, this.#url);
  }

  #replaced(): StoreError {
    return new StoreError(
      `the queue in ${this.location} was dropped or recreated while this process had it open`,
      "replaced",
    );
  }

  /**
   * Runs `fn`, retrying deadlocks, and maps errors to one-line StoreErrors. With `begin` (the
   * options of BEGIN, "" for none) `fn` runs in a transaction. Through a transaction pooler
   * (`?pooler=transaction`) every call is one: the pooler keeps one server for it, so the
   * statements `fn` sends together reach that server in order (outside one, PgBouncer handed
   * the rest of a pipeline to whichever server came next, and its answers never came back).
   */
  async #do<T>(fn: (sql: Sql) => Promise<T>, begin?: string): Promise<T> {
    const inTx = begin !== undefined || this.#url.pooler;
    const run = (tx: unknown) => fn(tx as Sql);
    for (let attempt = 0;; attempt++) {
      try {
        if (!inTx) return await fn(this.#sql);
        return (await (begin ? this.#sql.begin(begin, run) : this.#sql.begin(run))) as T;
      } catch (e) {
        if (isRetryable(e) && attempt < 5) continue;
        throw this.#describe(e);
      }
    }
  }

  /** A transaction around `fn`, retried as a whole on a deadlock. */
  #tx<T>(fn: (sql: Sql) => Promise<T>): Promise<T> {
    return this.#do(fn, "");
  }

  #notify(sql: Sql) {
    return sql`SELECT pg_notify(${wakeChannel(this.#url.schema)}, '')`;
  }

  async enqueue(jobs: NewJob[], now: number): Promise<ExistingJob[]> {
    if (jobs.length === 0) return [];
    const keyed = keyedIndexes(jobs);
    // Jobs with a unique key skip the insert when the key is held (by a stored job, or one
    // earlier in this batch: rows go in in order); a batch without keys runs the plain insert.
    const insert = async (sql: Sql, batch: NewJob[]) => {
      const payload = JSON.stringify(batch.map((j) => ({
        id: j.id,
        command: j.command,
        max_retries: j.maxRetries,
        priority: j.priority,
        run_at: j.runAt,
        timeout_ms: j.timeoutMs,
        cwd: j.cwd,
        env: j.env === null ? null : JSON.stringify(j.env),
        queue: j.queue ?? DEFAULT_QUEUE,
        // Left out when none: a batch without keys sends what it sent before.
        unique_key: j.uniqueKey ?? undefined,
      })));
      // ORDER BY the input's position, so seq follows the order of the batch.
      const r = await sql`
        INSERT INTO jobs (id, command, state, attempts, max_retries, priority, run_at,
          timeout_ms, cwd, env, queue, unique_key, created_at, updated_at)
        SELECT v->>'id', v->>'command', 'pending', 0, (v->>'max_retries')::integer,
          (v->>'priority')::integer, (v->>'run_at')::bigint, (v->>'timeout_ms')::bigint,
          v->>'cwd', v->>'env', v->>'queue', v->>'unique_key', ${now}, ${now}
        FROM json_array_elements(${payload}::text::json) WITH ORDINALITY AS e(v, i)
        ORDER BY i
        ${
        keyed.length === 0 ? sql`` : sql`ON CONFLICT (unique_key)
          WHERE unique_key IS NOT NULL AND state IN ('pending','failed','processing') DO NOTHING`
      }`;
      return r.count;
    };
    try {
      return await this.#tx(async (sql) => {
        let inserted = await insert(sql, jobs);
        const existing: ExistingJob[] = [];
        // A skipped job's holder may finish before the read below sees it (READ COMMITTED):
        // then the key is free, and that job is inserted again.
        let todo = keyed;
        for (let round = 1; todo.length > 0; round++) {
          const keys = todo.map((i) => jobs[i].uniqueKey!);
          const holders = await sql.unsafe(
            `SELECT id, unique_key, state, run_at FROM jobs
             WHERE unique_key = ANY($1::text[]) AND ${KEY_HELD}`,
            [keys],
          );
          const found = matchHolders(jobs, todo, holders);
          existing.push(...found.existing);
          todo = found.unheld;
          if (todo.length === 0) break;
          if (round === 5) {
            throw new ConflictError(
              "the unique keys of this batch kept changing hands; enqueue again",
            );
          }
          inserted += await insert(sql, todo.map((i) => jobs[i]));
        }
        await this.#countAdd(sql, "pending", inserted);
        if (jobs.some((j) => j.after?.length)) {
          await this.#linkDependencies(sql, linkedJobs(jobs, existing), now);
        }
        if (inserted > 0) await this.#notify(sql);
        return existing.sort((a, b) => a.index - b.index);
      });
    } catch (e) {
      if ((e as { code?: string }).code === "23505") throw await this.#duplicate(jobs);
      throw e;
    }
  }

  /**
   * Stores the `after` links of a batch just inserted, in batch order, and sets each waiting
   * job's count; call inside the enqueue's transaction. See `Store.enqueue`. Marking a dependency
   * locks its row and reads its state after the lock: a dependency completing at this moment is
   * either seen completed here, or its finish waits for this commit and then sees the link.
   */
  async #linkDependencies(sql: Sql, jobs: NewJob[], now: number) {
    const position = new Map(jobs.map((j, i) => [j.id, i]));
    // Each dependency is marked and read once per batch (many jobs often wait for one).
    const states = new Map<string, string>();
    for (const [i, j] of jobs.entries()) {
      if (!j.after?.length) continue;
      let unfinished = 0;
      let died: string | null = null;
      for (const dep of j.after) {
        const p = position.get(dep);
        // A batch names only earlier jobs: with no link to a later one, no cycle can form.
        if (p !== undefined && p >= i) throw unknownDependencyError(j.id, dep, true, true);
        let state = states.get(dep);
        if (state === undefined) {
          const [r] = await sql`
            UPDATE jobs SET has_dependants = true WHERE id = ${dep} RETURNING state`;
          if (!r) throw unknownDependencyError(j.id, dep, false, jobs.length > 1);
          state = r.state as string;
          states.set(dep, state);
        }
        await sql`INSERT INTO job_deps (job_id, dep_id) VALUES (${j.id}, ${dep})`;
        if (state !== "completed") unfinished++;
        if (died === null && (state === "dead" || state === "cancelled")) {
          died = dependencyError(dep, state);
        }
      }
      if (unfinished === 0) continue;
      await sql`
        UPDATE jobs SET waiting_on = ${unfinished},
          state = coalesce(${died === null ? null : "dead"}::text, state), error = ${died},
          finished_at = ${died === null ? null : now}::bigint
        WHERE id = ${j.id}`;
    }
  }

  /**
   * The jobs waiting for `jobId`, which just left `processing` or was changed by a person, follow
   * it; call inside the transaction that changed it, only when it has dependants. As in the
   * SQLite store: completed frees them by one; dead or cancelled kills the pending ones down the
   * chain; pending again (a retry) brings back the ones that died because of it.
   */
  async #followDependency(sql: Sql, jobId: string, state: JobState, now: number) {
    if (state === "completed") {
      const freed = await sql`
        UPDATE jobs SET waiting_on = waiting_on - 1
        WHERE id IN (SELECT job_id FROM job_deps WHERE dep_id = ${jobId}) RETURNING waiting_on`;
      if (freed.some((r) => r.waiting_on === 0)) await this.#notify(sql);
      return;
    }
    let frontier: Array<{ id: string; state: JobState }> = [{ id: jobId, state }];
    while (frontier.length > 0) {
      const next: typeof frontier = [];
      for (const f of frontier) {
        const rows = f.state === "pending"
          ? await sql`
            UPDATE jobs SET state = 'pending', error = NULL, finished_at = NULL, updated_at = ${now}
            WHERE id IN (SELECT job_id FROM job_deps WHERE dep_id = ${f.id})
              AND state = 'dead' AND waiting_on > 0
              AND NOT EXISTS (SELECT 1 FROM job_deps d JOIN jobs x ON x.id = d.dep_id
                WHERE d.job_id = jobs.id AND x.state IN ('dead','cancelled'))
            RETURNING id, has_dependants`
          : await sql`
            UPDATE jobs SET state = 'dead', error = ${dependencyError(f.id, f.state)},
              finished_at = ${now}, updated_at = ${now}
            WHERE id IN (SELECT job_id FROM job_deps WHERE dep_id = ${f.id})
              AND state = 'pending' AND waiting_on > 0
            RETURNING id, has_dependants`;
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
   * Deleted jobs count as done for the jobs waiting for them, and their links go; call inside the
   * deleting transaction with the deleted rows (`id`, `state`, `has_dependants`).
   */
  async #unlinkDeleted(sql: Sql, rows: readonly Record<string, unknown>[]) {
    if (rows.length === 0) return;
    const ids = rows.map((r) => r.id as string);
    const unfinished = rows.filter((r) => r.has_dependants && r.state !== "completed").map((r) =>
      r.id as string
    );
    if (unfinished.length > 0) {
      await sql`
        UPDATE jobs j SET waiting_on = j.waiting_on - d.n
        FROM (SELECT job_id, count(*)::integer AS n FROM job_deps
              WHERE dep_id = ANY(${unfinished}) GROUP BY job_id) d
        WHERE j.id = d.job_id`;
    }
    await sql`DELETE FROM job_deps WHERE job_id = ANY(${ids}) OR dep_id = ANY(${ids})`;
  }

  async dependencies(
    jobId: string,
  ): Promise<{ after: DependencyLink[]; dependants: DependencyLink[] }> {
    const links = (rows: readonly Record<string, unknown>[]) =>
      rows.map((r) => ({ id: r.id as string, state: r.state as JobState }));
    const [after, dependants] = await this.#do((sql) =>
      Promise.all([
        sql`SELECT x.id, x.state FROM job_deps d JOIN jobs x ON x.id = d.dep_id
            WHERE d.job_id = ${jobId} ORDER BY x.seq`,
        sql`SELECT x.id, x.state FROM job_deps d JOIN jobs x ON x.id = d.job_id
            WHERE d.dep_id = ${jobId} ORDER BY x.seq`,
      ])
    );
    return { after: links(after), dependants: links(dependants) };
  }

  async #countAdd(sql: Sql, state: JobState, n: number) {
    if (n === 0) return;
    await sql`
      INSERT INTO job_counts AS c (state, slot, n) VALUES (${state}, pg_backend_pid() % 64, ${n})
      ON CONFLICT (state, slot) DO UPDATE SET n = c.n + excluded.n`;
  }

  /** Names the first id of `jobs` that already exists, for the message. */
  async #duplicate(jobs: NewJob[]): Promise<ConflictError> {
    const ids = jobs.map((j) => j.id);
    const existing = new Set(
      (await this.#do((sql) => sql`SELECT id FROM jobs WHERE id = ANY(${ids})`)).map((r) =>
        r.id as string
      ),
    );
    return duplicateIdError(ids, (id) => existing.has(id));
  }

  async getJob(id: string): Promise<Job | null> {
    const [r] = await this.#do((sql) => sql`SELECT * FROM jobs WHERE id = ${id}`);
    return r ? toJob(r) : null;
  }

  async listJobs(
    { state, states, queue, search, newestFirst = false, limit, offset = 0 }: ListOptions,
  ): Promise<Job[]> {
    const rows = await this.#do((sql) => {
      const conds = [];
      if (state) conds.push(sql`state = ${state}`);
      if (queue !== undefined) conds.push(sql`queue = ${queue}`);
      if (states) conds.push(sql`state = ANY(${states as string[]})`);
      if (search !== undefined && search !== "") {
        // ILIKE ignores case; `\` escapes the user's own % and _.
        const pattern = `%${search.replace(/[\\%_]/g, (c) => "\\" + c)}%`;
        conds.push(
          sql`(id ILIKE ${pattern} OR command ILIKE ${pattern} OR error ILIKE ${pattern})`,
        );
      }
      const where = conds.length === 0
        ? sql``
        : conds.reduce((acc, c, k) => k === 0 ? sql`WHERE ${c}` : sql`${acc} AND ${c}`, sql``);
      return newestFirst
        ? sql`SELECT * FROM jobs ${where} ORDER BY seq DESC LIMIT ${limit} OFFSET ${offset}`
        : sql`SELECT * FROM jobs ${where} ORDER BY seq LIMIT ${limit} OFFSET ${offset}`;
    });
    return rows.map(toJob);
  }

  async countJobs(state?: JobState | readonly JobState[]): Promise<number> {
    const states = state === undefined ? null : typeof state === "string" ? [state] : [...state];
    const [r] = await this.#do((sql) =>
      states
        ? sql`SELECT coalesce(sum(n), 0)::bigint AS n FROM job_counts WHERE state = ANY(${states})`
        : sql`SELECT coalesce(sum(n), 0)::bigint AS n FROM job_counts`
    );
    return Number(r.n);
  }

  async listAttempts(jobId: string): Promise<Attempt[]> {
    const rows = await this.#do((sql) =>
      sql`SELECT * FROM attempts WHERE job_id = ${jobId} ORDER BY finished_at, n`
    );
    return rows.map(toAttempt);
  }

  async listRetries(jobId: string): Promise<RetryMark[]> {
    const rows = await this.#do((sql) =>
      sql`SELECT * FROM retries WHERE job_id = ${jobId} ORDER BY retried_at, n`
    );
    return rows.map(toRetryMark);
  }

  async counts(now: number): Promise<JobCounts> {
    const c = Object.fromEntries(
      [...JOB_STATES, "scheduled", "waiting"].map((s) => [s, 0]),
    ) as JobCounts;
    const [rows, [scheduled], [waiting]] = await this.#do((sql) =>
      Promise.all([
        sql`SELECT state, sum(n)::bigint AS n FROM job_counts GROUP BY state`,
        // Only the waiting jobs are walked: a range of the ready index for each priority.
        sql`${sql.unsafe(READY_PRIORITIES)} SELECT coalesce(sum((SELECT count(*) FROM jobs
              WHERE state IN ('pending','failed') AND waiting_on = 0 AND priority = p.pri
                AND run_at > ${now})), 0)::bigint AS n
            FROM p WHERE pri IS NOT NULL`,
        sql`SELECT count(*)::bigint AS n FROM jobs WHERE state = 'pending' AND waiting_on > 0`,
      ])
    );
    for (const r of rows) c[r.state as JobState] = Number(r.n);
    c.scheduled = Number(scheduled.n);
    c.waiting = Number(waiting.n);
    return c;
  }

  async drainBacklog(dueBy: number, queues?: readonly string[]): Promise<DrainBacklog[]> {
    const served = queues ? [...queues] : null;
    const rows = await this.#do((sql) =>
      sql`SELECT j.queue, coalesce(q.paused, false) AS paused,
            CASE
              WHEN j.state = 'processing' THEN 'processing'
              WHEN j.waiting_on > 0 THEN
                CASE WHEN EXISTS (SELECT 1 FROM job_deps d JOIN jobs p ON p.id = d.dep_id
                    LEFT JOIN queues pq ON pq.name = p.queue
                    WHERE d.job_id = j.id AND (p.state = 'processing'
                      OR (p.state IN ('pending','failed') AND p.waiting_on = 0
                        AND p.run_at <= ${dueBy} AND NOT coalesce(pq.paused, false)
                        AND (${served}::text[] IS NULL OR p.queue = ANY(${served}::text[])))))
                  THEN 'waiting_live' ELSE 'waiting_stuck' END
              WHEN j.run_at <= ${dueBy} THEN 'ready_' || j.state
              ELSE 'later_' || j.state
            END AS kind,
            count(*)::bigint AS n
          FROM jobs j LEFT JOIN queues q ON q.name = j.queue
          WHERE j.state IN ('pending','failed','processing')
          GROUP BY 1, 2, 3 ORDER BY 1, 3`
    );
    return rows.map((r) => ({
      queue: r.queue as string,
      paused: r.paused as boolean,
      kind: r.kind as DrainKind,
      n: Number(r.n),
    }));
  }

  async claimNext(
    workerId: string,
    now: number,
    limit = 1,
    queues?: readonly string[],
  ): Promise<Job[]> {
    if (queues === undefined) {
      // The common case, one statement outside any transaction; an idle poll adds one read of
      // the (empty) rules.
      const tried = this.#noQueueRules;
      if (tried) {
        const jobs = await this.#do((sql) => this.#claimAny(sql, workerId, now, limit));
        if (jobs.length > 0) return jobs;
      }
      if (!(await this.#do((sql) => this.#hasQueueRules(sql)))) {
        return tried ? [] : await this.#do((sql) => this.#claimAny(sql, workerId, now, limit));
      }
    }
    return await this.#tx((sql) => this.#claimByQueue(sql, workerId, now, limit, queues ?? null));
  }

  /**
   * Whether the last claim saw no queue rules (no pause, no limit): then claims from every queue
   * try the one-statement claim first. Only a hint: that statement checks it again itself.
   */
  #noQueueRules = false;

  /** Whether some queue is paused or limited now; keeps the answer as the hint above. */
  async #hasQueueRules(sql: Sql): Promise<boolean> {
    const [r] = await sql`
      SELECT EXISTS (SELECT 1 FROM queues WHERE paused OR concurrency > 0) AS any`;
    this.#noQueueRules = !r.any;
    return Boolean(r.any);
  }

  /**
   * The claim inside the caller's transaction: one statement while no queue has a rule and every
   * queue is wanted, else `#claimByQueue`. Mirrors transition(claim).
   */
  async #claim(
    sql: Sql,
    workerId: string,
    now: number,
    limit: number,
    queues: readonly string[] | null,
  ): Promise<Job[]> {
    if (queues === null && this.#noQueueRules) {
      const jobs = await this.#claimAny(sql, workerId, now, limit);
      if (jobs.length > 0 || !(await this.#hasQueueRules(sql))) return jobs;
    } else if (queues === null && !(await this.#hasQueueRules(sql))) {
      return await this.#claimAny(sql, workerId, now, limit);
    }
    return await this.#claimByQueue(sql, workerId, now, limit, queues);
  }

  /**
   * One statement, when no queue has a rule (checked by the statement itself): the subquery locks
   * the chosen rows and skips rows other claimers hold, so two workers never get the same job
   * and never wait for each other. The claim of `finish_runs`, with no results.
   */
  async #claimAny(sql: Sql, workerId: string, now: number, limit: number): Promise<Job[]> {
    return (await this.#finishRuns(sql, workerId, [], now, limit)).claimed;
  }

  /**
   * The claim under queue rules; call inside a transaction. The rows of the limited queues it may
   * draw from are locked (in name order) before their running jobs are counted, so claimers of a
   * limited queue on any host take turns and each counts what the one before claimed. Each
   * allowed queue gives its first ready jobs (up to its free slots) from its own range of the
   * ready index; the best of them are claimed.
   */
  async #claimByQueue(
    sql: Sql,
    workerId: string,
    now: number,
    limit: number,
    queues: readonly string[] | null,
  ): Promise<Job[]> {
    const rules = await sql`
      SELECT name, paused, concurrency FROM queues WHERE paused OR concurrency > 0`;
    const paused = new Set(rules.filter((r) => r.paused).map((r) => r.name as string));
    const names = queues
      ? [...new Set(queues)]
      : (await sql.unsafe(READY_QUEUES)).map((r) => r.name as string);
    const wanted = names.filter((n) => !paused.has(n));
    const limited = rules.filter((r) => !r.paused && wanted.includes(r.name as string))
      .map((r) => r.name as string);
    const max = new Map<string, number>();
    const running = new Map<string, number>();
    if (limited.length > 0) {
      // Locked, then read again: a limit changed meanwhile is the one that counts.
      for (
        const r of await sql`
          SELECT name, paused, concurrency FROM queues WHERE name = ANY(${limited})
          ORDER BY name FOR UPDATE`
      ) {
        max.set(r.name as string, r.paused ? -1 : Number(r.concurrency));
      }
      for (
        const r of await sql`
          SELECT queue, count(*)::integer AS n FROM jobs
          WHERE state = 'processing' AND queue = ANY(${limited}) GROUP BY queue`
      ) {
        running.set(r.queue as string, Number(r.n));
      }
    }
    const caps = wanted.map((n) => {
      const m = max.get(n) ?? 0;
      return m < 0 ? 0 : m > 0 ? Math.min(limit, m - (running.get(n) ?? 0)) : limit;
    });
    const queued = wanted.filter((_, i) => caps[i] > 0);
    if (queued.length === 0) return [];
    const rows = await sql`
      UPDATE jobs SET state = 'processing', attempts = attempts + 1, worker_id = ${workerId},
        started_at = ${now}, finished_at = NULL, updated_at = ${now},
        output_key = substr(md5(random()::text || clock_timestamp()::text), 1, 16)
      WHERE seq IN (
        SELECT c.seq FROM unnest(${queued}::text[], ${caps.filter((c) => c > 0)}::integer[])
          AS a(queue, cap)
        CROSS JOIN LATERAL (
          SELECT seq, priority, run_at FROM jobs
          WHERE queue = a.queue AND state IN ('pending','failed') AND waiting_on = 0
            AND run_at <= ${now}
          ORDER BY priority DESC, run_at, seq LIMIT a.cap
          FOR UPDATE SKIP LOCKED) c
        ORDER BY c.priority DESC, c.run_at, c.seq LIMIT ${limit})
      RETURNING *`;
    return rows.map(toJob).sort(claimOrder);
  }

  async listQueues(): Promise<QueueInfo[]> {
    // One snapshot: the totals and the other queues' counts agree. Each other queue is counted on
    // its own range of the index of non-default jobs: one `queue <> 'default'` count would be
    // planned as a walk of every job until the table has statistics.
    return await this.#do(
      async (tx) => {
        const [totals, names, rules] = await Promise.all([
          tx`SELECT state, sum(n)::bigint AS n FROM job_counts GROUP BY state`,
          tx.unsafe(OTHER_QUEUES),
          tx`SELECT name, paused, concurrency FROM queues`,
        ]);
        const others = (await Promise.all(
          names.map((r) =>
            tx`SELECT ${r.name as string}::text AS queue, state, count(*)::bigint AS n FROM jobs
             WHERE queue = ${r.name as string} AND queue <> 'default' GROUP BY state`
          ),
        )).flat();
        return queueInfos(totals, others, rules);
      },
      "isolation level repeatable read read only",
    );
  }

  async setQueue(name: string, rules: { paused?: boolean; concurrency?: number }): Promise<void> {
    const paused = rules.paused ?? null;
    const concurrency = rules.concurrency ?? null;
    await this.#tx(async (sql) => {
      await sql`
        INSERT INTO queues AS q (name, paused, concurrency)
        VALUES (${name}, coalesce(${paused}::boolean, false), coalesce(${concurrency}::integer, 0))
        ON CONFLICT (name) DO UPDATE SET paused = coalesce(${paused}::boolean, q.paused),
          concurrency = coalesce(${concurrency}::integer, q.concurrency)`;
      // Rules back to none keep no row: a mistyped name resumed again leaves nothing behind.
      await sql`DELETE FROM queues WHERE name = ${name} AND NOT paused AND concurrency = 0`;
      // A resumed queue or a raised limit may free jobs for idle workers.
      await this.#notify(sql);
    });
  }

  finishAttempt(
    jobId: string,
    workerId: string,
    next: Transition,
    result: AttemptResult,
    now: number,
  ): Promise<Job | null> {
    return this.finishAndClaim(workerId, [{ jobId, next, result }], 0, now).then((r) =>
      r.finished[0]
    );
  }

  async finishAndClaim(
    workerId: string,
    ends: readonly RunEnd[],
    claimLimit: number,
    now: number,
    queues?: readonly string[],
  ): Promise<{ finished: (Job | null)[]; claimed: Job[] }> {
    // The busy worker's path: one call, one round trip, while no queue has a rule and no job
    // dies (a dying job's dependants are followed in a transaction below).
    const oneCall = (claimLimit === 0 || (queues === undefined && this.#noQueueRules)) &&
      ends.every((e) => !isIn(e.next.state, FINISHED_STATES) || e.next.state === "completed");
    if (oneCall) {
      const done = await this.#do((sql) => this.#finishRuns(sql, workerId, ends, now, claimLimit));
      if (
        done.claimed.length > 0 || claimLimit === 0 ||
        !(await this.#do((sql) => this.#hasQueueRules(sql)))
      ) {
        return { finished: done.finished, claimed: done.claimed };
      }
      // A queue got a rule meanwhile: claim under it.
      const claimed = await this.#tx((sql) =>
        this.#claimByQueue(sql, workerId, now, claimLimit, null)
      );
      return { finished: done.finished, claimed };
    }
    return await this.#tx(async (sql) => {
      const finished = await this.#finishMany(sql, workerId, ends, now);
      const claimed = claimLimit > 0
        ? await this.#claim(sql, workerId, now, claimLimit, queues ?? null)
        : [];
      return { finished, claimed };
    });
  }

  /**
   * `finish_runs` (see its migration): the guarded ends of several runs of `workerId` with their
   * attempt rows and output, then up to `claimLimit` claims from every queue. A run this worker
   * no longer holds (or, with `attempt`, a job on another run) gives null.
   */
  async #finishRuns(
    sql: Sql,
    workerId: string,
    ends: readonly RunEnd[],
    now: number,
    claimLimit: number,
    attempt: number | null = null,
  ): Promise<{ finished: (Job | null)[]; claimed: Job[]; rows: Record<string, unknown>[] }> {
    const column = <T>(f: (e: RunEnd) => T) => ends.map(f);
    const outputs = ends.map((e) => e.result.output?.data.length ? e.result.output : null);
    const starts: number[] = [];
    let size = 0;
    for (const o of outputs) {
      starts.push(size);
      size += o?.data.length ?? 0;
    }
    let blob: Uint8Array | null = null;
    if (size > 0) {
      blob = new Uint8Array(size);
      outputs.forEach((o, i) => o && blob!.set(o.data, starts[i]));
    }
    const rows = await sql`
      SELECT * FROM finish_runs(${workerId}, ${now}, ${claimLimit},
        ${wakeChannel(this.#url.schema)}, ${attempt}::integer, ${column((e) => e.jobId)}::text[],
        ${column((e) => e.next.state)}::text[], ${column((e) => e.next.attempts)}::integer[],
        ${column((e) => e.next.runAt)}::bigint[],
        ${column((e) => e.next.retryBase ?? null)}::integer[],
        ${column((e) => e.result.outcome)}::text[], ${column((e) => e.result.exitCode)}::integer[],
        ${column((e) => e.result.signal)}::text[], ${column((e) => e.result.error)}::text[],
        ${column((e) => e.result.note ?? null)}::text[],
        ${outputs.map((o) => o?.offset ?? 0)}::bigint[], ${starts}::integer[],
        ${outputs.map((o) => o?.data.length ?? 0)}::integer[],
        ${outputs.map((o) => o?.capBytes ?? 0)}::bigint[], ${blob}::bytea)`;
    const byId = new Map<string, Record<string, unknown>>();
    const claimed: Job[] = [];
    for (const r of rows) {
      if (r.state === "processing") claimed.push(toJob(r));
      else byId.set(r.id as string, r);
    }
    const finished = ends.map((e) => {
      const r = byId.get(e.jobId);
      return r ? toJob(r) : null;
    });
    return { finished, claimed: claimed.sort(claimOrder), rows: [...byId.values()] };
  }

  /**
   * The guarded ends of several runs (`#finishRuns`, no claim), and the jobs waiting for one that
   * died or was cancelled die down the chain; call inside a transaction.
   */
  async #finishMany(
    sql: Sql,
    workerId: string,
    ends: readonly RunEnd[],
    now: number,
    attempt: number | null = null,
  ): Promise<(Job | null)[]> {
    if (ends.length === 0) return [];
    const { finished, rows } = await this.#finishRuns(sql, workerId, ends, now, 0, attempt);
    for (const r of rows) {
      const state = r.state as JobState;
      if (r.has_dependants && state !== "completed" && isIn(state, FINISHED_STATES)) {
        await this.#followDependency(sql, r.id as string, state, now);
      }
    }
    return finished;
  }

  async applyTransition(
    jobId: string,
    expected: Pick<Job, "state" | "attempts">,
    next: Transition,
    now: number,
  ): Promise<Job | null> {
    try {
      return await this.#applyTransition(jobId, expected, next, now);
    } catch (e) {
      if ((e as { constraint_name?: string }).constraint_name !== "jobs_unique_key") throw e;
      const [job] = await this.#do((sql) => sql`SELECT unique_key FROM jobs WHERE id = ${jobId}`);
      const key = (job?.unique_key ?? null) as string | null;
      const [holder] = await this.#do((sql) =>
        sql.unsafe(
          `SELECT id, state FROM jobs WHERE unique_key = $1 AND ${KEY_HELD} AND id <> $2`,
          [
            key,
            jobId,
          ],
        )
      );
      throw heldKeyError(jobId, String(key), holder);
    }
  }

  #applyTransition(
    jobId: string,
    expected: Pick<Job, "state" | "attempts">,
    next: Transition,
    now: number,
  ): Promise<Job | null> {
    return this.#tx(async (sql) => {
      const [r] = await sql`
        UPDATE jobs SET state = ${next.state}, attempts = ${next.attempts},
          run_at = coalesce(${next.runAt}::bigint, run_at),
          retry_base = coalesce(${next.retryBase ?? null}::integer, retry_base),
          updated_at = ${now}
        WHERE id = ${jobId} AND state = ${expected.state} AND attempts = ${expected.attempts}
          -- Never pending while a job it waits for is dead or cancelled: nothing would free it.
          AND (${next.state}::text <> 'pending' OR waiting_on = 0 OR NOT EXISTS (
            SELECT 1 FROM job_deps d JOIN jobs x ON x.id = d.dep_id
            WHERE d.job_id = jobs.id AND x.state IN ('dead','cancelled')))
        RETURNING *`;
      if (r?.has_dependants && next.state !== expected.state) {
        await this.#followDependency(sql, jobId, next.state, now);
      }
      if (r && next.retryBase !== undefined) {
        await sql`
          INSERT INTO retries (job_id, after_attempt, from_state, retried_at)
          VALUES (${jobId}, ${next.retryBase}, ${expected.state}, ${now})`;
      }
      if (r && (next.state === "pending" || next.state === "failed")) await this.#notify(sql);
      return r ? toJob(r) : null;
    });
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
    return this.#tx(async (sql) =>
      (await this.#finishMany(sql, workerId, [{ jobId, next, result }], now, attempt))[0]
    );
  }

  removeJob(jobId: string, states: readonly JobState[]): Promise<Job | null> {
    if (states.length === 0) return Promise.resolve(null);
    return this.#tx(async (sql) => {
      const [r] = await sql`
        DELETE FROM jobs WHERE id = ${jobId} AND state = ANY(${states as string[]})
        RETURNING *`;
      if (!r) return null;
      await this.#unlinkDeleted(sql, [r]);
      await sql`DELETE FROM attempts WHERE job_id = ${jobId}`;
      await sql`DELETE FROM retries WHERE job_id = ${jobId}`;
      await sql`DELETE FROM outputs WHERE job_id = ${jobId}`;
      await this.#countAdd(sql, r.state as JobState, -1);
      return toJob(r);
    });
  }

  async countPurgeable(state: JobState, finishedBefore: number): Promise<number> {
    const [r] = await this.#do((sql) =>
      sql`SELECT count(*)::bigint AS n FROM jobs
          WHERE state = ${state} AND coalesce(finished_at, updated_at) < ${finishedBefore}`
    );
    return Number(r.n);
  }

  async nextRunAt(): Promise<number | null> {
    const [r] = await this.#do((sql) =>
      sql`SELECT min(run_at) AS t FROM jobs
          WHERE state IN ('pending','failed') AND waiting_on = 0`
    );
    return r.t === null ? null : Number(r.t);
  }

  async findStaleJobs(now: number, leaseMs: number): Promise<StaleJob[]> {
    const rows = await this.#do((sql) =>
      sql`SELECT j.* FROM jobs j LEFT JOIN workers w ON w.id = j.worker_id
          WHERE j.state = 'processing'
            AND (w.id IS NULL OR w.stopped_at IS NOT NULL OR w.heartbeat_at < ${now - leaseMs})`
    );
    return rows.map((r) => ({ job: toJob(r), workerId: r.worker_id as string }));
  }

  async jobsHeldBy(workerId: string): Promise<Job[]> {
    const rows = await this.#do((sql) =>
      sql`SELECT * FROM jobs WHERE state = 'processing' AND worker_id = ${workerId}`
    );
    return rows.map(toJob);
  }

  purge(state: JobState, finishedBefore: number): Promise<DeletedJob[]> {
    return this.#tx(async (sql) => {
      const rows = await sql`
        DELETE FROM jobs WHERE state = ${state}
          AND coalesce(finished_at, updated_at) < ${finishedBefore}
        RETURNING id, state, output_key, has_dependants`;
      if (rows.length === 0) return [];
      await this.#unlinkDeleted(sql, rows);
      const ids = rows.map((r) => r.id as string);
      const keys = new Map<string, Set<string>>(ids.map((id) => [id, new Set<string>()]));
      await sql`DELETE FROM retries WHERE job_id = ANY(${ids})`;
      await sql`DELETE FROM outputs WHERE job_id = ANY(${ids})`;
      for (
        const a of await sql`DELETE FROM attempts WHERE job_id = ANY(${ids})
          RETURNING job_id, output_key`
      ) {
        if (a.output_key !== null) keys.get(a.job_id as string)!.add(a.output_key as string);
      }
      for (const r of rows) {
        if (r.output_key !== null) keys.get(r.id as string)!.add(r.output_key as string);
      }
      await this.#countAdd(sql, state, -rows.length);
      return ids.map((id) => ({ id, outputKeys: [...keys.get(id)!] }));
    });
  }

  async outputKeys(jobId: string): Promise<Array<{ attempt: number; key: string }>> {
    const [attempts, [job]] = await this.#do((sql) =>
      Promise.all([
        sql`SELECT attempt, output_key FROM attempts
            WHERE job_id = ${jobId} AND output_key IS NOT NULL ORDER BY finished_at, n`,
        sql`SELECT attempts, output_key FROM jobs WHERE id = ${jobId} AND output_key IS NOT NULL`,
      ])
    );
    const out: Array<{ attempt: number; key: string }> = [];
    const seen = new Set<string>();
    for (const r of attempts) {
      if (seen.has(r.output_key as string)) continue;
      seen.add(r.output_key as string);
      out.push({ attempt: r.attempt as number, key: r.output_key as string });
    }
    if (job && !seen.has(job.output_key as string)) {
      out.push({ attempt: job.attempts as number, key: job.output_key as string });
    }
    return out;
  }

  async registerWorker(
    w: Omit<WorkerInfo, "currentJob" | "runningJobs" | "stoppingAt" | "stoppedAt">,
  ): Promise<void> {
    await this.#do((sql) =>
      sql`INSERT INTO workers (id, pid, host, supervisor_pid, started_at, heartbeat_at)
          VALUES (${w.id}, ${w.pid}, ${w.host}, ${w.supervisorPid}, ${w.startedAt},
            ${w.heartbeatAt})
          ON CONFLICT (id) DO UPDATE SET pid = excluded.pid, host = excluded.host,
            supervisor_pid = excluded.supervisor_pid, started_at = excluded.started_at,
            heartbeat_at = excluded.heartbeat_at, stopping_at = NULL, stopped_at = NULL,
            stop_request = NULL`
    );
  }

  async exportJobs(afterSeq: number, limit: number): Promise<JobRecord[]> {
    return await this.#do(async (sql) => {
      const jobs = (await sql`
        SELECT * FROM jobs WHERE seq > ${afterSeq} ORDER BY seq LIMIT ${limit}`).map(toJob);
      if (jobs.length === 0) return [];
      const ids = jobs.map((j) => j.id);
      const [attempts, retries, outputs, deps] = await Promise.all([
        sql`SELECT * FROM attempts WHERE job_id = ANY(${ids}) ORDER BY finished_at, n`,
        sql`SELECT * FROM retries WHERE job_id = ANY(${ids}) ORDER BY retried_at, n`,
        sql`SELECT key, byte_offset, job_id, data FROM outputs WHERE job_id = ANY(${ids})
            ORDER BY key, byte_offset`,
        sql`SELECT job_id, dep_id FROM job_deps WHERE job_id = ANY(${ids})`,
      ]);
      const of = <T>(rows: T[], id: (r: T) => string, jobId: string) =>
        rows.filter((r) => id(r) === jobId);
      return jobs.map((job) => ({
        job,
        attempts: of(attempts, (r) => r.job_id as string, job.id).map(toAttempt),
        retries: of(retries, (r) => r.job_id as string, job.id).map(toRetryMark),
        after: of(deps, (r) => r.job_id as string, job.id).map((r) => r.dep_id as string),
        output: of(outputs, (r) => r.job_id as string, job.id).map((x) => ({
          key: x.key as string,
          offset: Number(x.byte_offset),
          data: new Uint8Array(x.data as Uint8Array),
        })),
      }));
    });
  }

  importJobs(records: JobRecord[]): Promise<void> {
    return this.#tx(async (sql) => {
      const counts = new Map<JobState, number>();
      for (const { job: j, attempts, retries, output, after } of records) {
        await sql`
          INSERT INTO jobs (id, command, state, attempts, max_retries, priority, run_at, timeout_ms, cwd, env, created_at, updated_at, started_at, finished_at, exit_code, error, worker_id, output_key, retry_base, unique_key, waiting_on, queue)
          VALUES (${j.id}, ${j.command}, ${j.state}, ${j.attempts}, ${j.maxRetries},
            ${j.priority}, ${j.runAt}, ${j.timeoutMs}, ${j.cwd},
            ${j.env === null ? null : JSON.stringify(j.env)}, ${j.createdAt}, ${j.updatedAt},
            ${j.startedAt}, ${j.finishedAt}, ${j.exitCode}, ${j.error}, ${j.workerId},
            ${j.outputKey}, ${j.retryBase}, ${j.uniqueKey ?? null}, ${j.waitingOn ?? 0}, ${
          j.queue ?? DEFAULT_QUEUE
        })`;
        for (const dep of after ?? []) {
          await sql`INSERT INTO job_deps (job_id, dep_id) VALUES (${j.id}, ${dep})`;
          await sql`UPDATE jobs SET has_dependants = true WHERE id = ${dep}`;
        }
        counts.set(j.state, (counts.get(j.state) ?? 0) + 1);
        for (const a of attempts) {
          await sql`
            INSERT INTO attempts (job_id, attempt, worker_id, started_at, finished_at, outcome,
              exit_code, signal, error, output_key, note)
            VALUES (${a.jobId}, ${a.attempt}, ${a.workerId}, ${a.startedAt}, ${a.finishedAt},
              ${a.outcome}, ${a.exitCode}, ${a.signal}, ${a.error}, ${a.outputKey}, ${a.note})`;
        }
        for (const r of retries) {
          await sql`
            INSERT INTO retries (job_id, after_attempt, from_state, retried_at)
            VALUES (${r.jobId}, ${r.afterAttempt}, ${r.fromState}, ${r.retriedAt})`;
        }
        for (const p of output) {
          await sql`
            INSERT INTO outputs (key, byte_offset, job_id, data)
            VALUES (${p.key}, ${p.offset}, ${j.id}, ${p.data})`;
        }
      }
      for (const [state, n] of counts) await this.#countAdd(sql, state, n);
    });
  }

  async addSchedule(s: NewSchedule, now: number): Promise<boolean> {
    const rows = await this.#do((sql) =>
      sql`${insertSchedule(sql, newSchedule(s, now))} ON CONFLICT (name) DO NOTHING RETURNING name`
    );
    return rows.length === 1;
  }

  importSchedules(schedules: readonly Schedule[]): Promise<void> {
    return this.#tx(async (sql) => {
      for (const s of schedules) await insertSchedule(sql, s);
    });
  }

  async getSchedule(name: string): Promise<Schedule | null> {
    const [r] = await this.#do((sql) => sql`${sql.unsafe(SCHEDULE_SELECT)} WHERE s.name = ${name}`);
    return r ? toSchedule(r) : null;
  }

  async listSchedules(): Promise<Schedule[]> {
    const rows = await this.#do((sql) => sql`${sql.unsafe(SCHEDULE_SELECT)} ORDER BY s.name`);
    return rows.map(toSchedule);
  }

  async removeSchedule(name: string): Promise<boolean> {
    const rows = await this.#do((sql) =>
      sql`DELETE FROM schedules WHERE name = ${name} RETURNING name`
    );
    return rows.length === 1;
  }

  async setSchedulePaused(
    name: string,
    paused: boolean,
    nextRunAt: number | null,
    now: number,
  ): Promise<Schedule | null> {
    await this.#do((sql) =>
      paused
        ? sql`UPDATE schedules SET paused = true, updated_at = ${now}
              WHERE name = ${name} AND NOT paused`
        : sql`UPDATE schedules SET paused = false, next_run_at = ${nextRunAt}::bigint,
                updated_at = ${now}
              WHERE name = ${name} AND paused`
    );
    return await this.getSchedule(name);
  }

  async dueSchedules(now: number): Promise<Schedule[]> {
    const rows = await this.#do((sql) =>
      sql`${sql.unsafe(SCHEDULE_SELECT)} WHERE NOT s.paused AND s.next_run_at <= ${now}
          ORDER BY s.next_run_at`
    );
    return rows.map(toSchedule);
  }

  fireSchedule(
    name: string,
    dueAt: number,
    job: NewJob | null,
    nextRunAt: number | null,
    now: number,
  ): Promise<boolean> {
    // Read committed: a second firer's UPDATE waits for the first one's row lock, then finds
    // next_run_at moved and matches nothing.
    return this.#tx(async (sql) => {
      const won = await sql`
        UPDATE schedules SET next_run_at = ${nextRunAt}::bigint, updated_at = ${now}
        WHERE name = ${name} AND next_run_at = ${dueAt} AND NOT paused
        RETURNING name`;
      if (won.length === 0) return false;
      if (!job) return true;
      // Not stored when the id exists, or when its unique key is held by an earlier tick's job.
      const inserted = await sql`
        INSERT INTO jobs (id, command, state, attempts, max_retries, priority, run_at,
          timeout_ms, cwd, env, queue, unique_key, created_at, updated_at)
        VALUES (${job.id}, ${job.command}, 'pending', 0, ${job.maxRetries}, ${job.priority},
          ${job.runAt}, ${job.timeoutMs}, ${job.cwd},
          ${job.env === null ? null : JSON.stringify(job.env)}, ${job.queue ?? DEFAULT_QUEUE},
          ${job.uniqueKey ?? null}, ${now}, ${now})
        ON CONFLICT DO NOTHING RETURNING id`;
      if (inserted.length > 0) {
        await this.#countAdd(sql, "pending", inserted.length);
        await this.#notify(sql);
      }
      await sql`
        UPDATE schedules SET last_run_at = ${job.runAt}, last_job_id = ${job.id}
        WHERE name = ${name} AND EXISTS (SELECT 1 FROM jobs WHERE id = ${job.id})`;
      return true;
    });
  }

  async now(): Promise<number> {
    const [r] = await this.#do((sql) =>
      sql`SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint AS t`
    );
    return Number(r.t);
  }

  requestStop(target: { host?: string }, mode: StopMode, _now: number): Promise<WorkerInfo[]> {
    const host = target.host ?? null;
    return this.#tx(async (sql) => {
      await sql`
        UPDATE workers SET stop_request = ${mode}
        WHERE stopped_at IS NULL AND (${host}::text IS NULL OR host = ${host})
          AND (stop_request IS NULL OR ${mode} = 'now')`;
      const rows = await sql`
        SELECT w.*, (SELECT j.id FROM jobs j WHERE j.state = 'processing'
          AND j.worker_id = w.id ORDER BY j.started_at, j.seq LIMIT 1) AS current_job,
        (SELECT count(*) FROM jobs j WHERE j.state = 'processing'
          AND j.worker_id = w.id) AS running_jobs
        FROM workers w WHERE stopped_at IS NULL AND (${host}::text IS NULL OR host = ${host})
        ORDER BY started_at, id`;
      return rows.map(toWorker);
    });
  }

  async stopRequestFor(host: string, supervisorPid: number): Promise<StopMode | null> {
    const [r] = await this.#do((sql) =>
      sql`SELECT max(stop_request) AS r FROM workers
          WHERE host = ${host} AND supervisor_pid = ${supervisorPid} AND stopped_at IS NULL`
    );
    return (r.r as StopMode | null) ?? null;
  }

  async heartbeat(workerId: string, now: number): Promise<void> {
    await this.#do((sql) => sql`UPDATE workers SET heartbeat_at = ${now} WHERE id = ${workerId}`);
  }

  async markWorkerStopping(workerId: string, now: number): Promise<void> {
    await this.#do((sql) =>
      sql`UPDATE workers SET stopping_at = ${now}
          WHERE id = ${workerId} AND stopping_at IS NULL AND stopped_at IS NULL`
    );
  }

  async markWorkerStopped(workerId: string, now: number): Promise<void> {
    await this.#do((sql) =>
      sql`UPDATE workers SET stopped_at = ${now} WHERE id = ${workerId} AND stopped_at IS NULL`
    );
  }

  async listWorkers(options: { all?: boolean } = {}): Promise<WorkerInfo[]> {
    const rows = await this.#do((sql) =>
      sql`SELECT w.*, (SELECT j.id FROM jobs j WHERE j.state = 'processing'
            AND j.worker_id = w.id ORDER BY j.started_at, j.seq LIMIT 1) AS current_job,
          (SELECT count(*) FROM jobs j WHERE j.state = 'processing'
            AND j.worker_id = w.id) AS running_jobs
          FROM workers w WHERE ${options.all ?? false} OR w.stopped_at IS NULL
          ORDER BY w.started_at, w.id`
    );
    return rows.map(toWorker);
  }

  async getConfig(): Promise<Record<string, string>> {
    const rows = await this.#do((sql) => sql`SELECT key, value FROM config`);
    return Object.fromEntries(rows.map((r) => [r.key as string, r.value as string]));
  }

  async setConfig(key: string, value: string | null): Promise<void> {
    await this.#do((sql) =>
      value === null
        ? sql`DELETE FROM config WHERE key = ${key}`
        : sql`INSERT INTO config (key, value) VALUES (${key}, ${value})
              ON CONFLICT (key) DO UPDATE SET value = excluded.value`
    );
  }

  /**
   * Resolves on a NOTIFY from an enqueue, a retry or a finished attempt that left a job ready, or
   * after `maxWaitMs` (the fallback when LISTEN is not available, e.g. behind a pooler).
   */
  async waitForChange(maxWaitMs: number, signal?: AbortSignal): Promise<void> {
    if (!this.#url.listen) {
      // Poll-only: the caller's wait is the polling interval.
      return await sleep(maxWaitMs, signal);
    }
    if (!this.#listening) {
      this.#listening = this.#sql.listen(wakeChannel(this.#url.schema), () => {
        // A commit seen while nobody waits makes the next wait return at once.
        if (this.#waiters.size === 0) this.#changed = true;
        for (const w of [...this.#waiters]) w();
      }).then(() => {}, () => {});
    }
    // LISTEN is set up by the first wait. One that cannot connect (its database dropped, the
    // server gone) keeps retrying: it must not hold the caller past its wait or its stop.
    const started = performance.now();
    await within(this.#listening, maxWaitMs, signal);
    if (this.#changed || signal?.aborted) {
      this.#changed = false;
      return;
    }
    const left = maxWaitMs - (performance.now() - started);
    if (left <= 0) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#waiters.delete(done);
        signal?.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, left);
      this.#waiters.add(done);
      signal?.addEventListener("abort", done);
    });
  }

  appendOutput(jobId: string, key: string, output: OutputAppend): Promise<void> {
    return this.#tx((sql) => this.#appendOutput(sql, jobId, key, output));
  }

  /** Inserts a piece and trims the run to its cap; call inside a transaction. */
  async #appendOutput(sql: Sql, jobId: string, key: string, output: OutputAppend) {
    const { offset, data, capBytes } = output;
    if (data.length === 0) return;
    await sql`
      INSERT INTO outputs (key, byte_offset, job_id, data)
      VALUES (${key}, ${offset}, ${jobId}, ${data})
      ON CONFLICT (key, byte_offset) DO UPDATE SET data = excluded.data`;
    await sql`
      DELETE FROM outputs
      WHERE key = ${key} AND byte_offset + length(data) <= ${offset + data.length - capBytes}`;
  }

  async readOutput(key: string, fromOffset = 0): Promise<OutputPiece[]> {
    const rows = await this.#do((sql) =>
      sql`SELECT byte_offset, data FROM outputs
          WHERE key = ${key} AND byte_offset + length(data) > ${fromOffset}
          ORDER BY byte_offset`
    );
    return rows.map((r) => ({
      offset: Number(r.byte_offset),
      data: new Uint8Array(r.data as Uint8Array),
    }));
  }

  async assertSameStore(): Promise<void> {
    let now: string | null;
    try {
      now = await this.#readInstance();
    } catch (e) {
      if (queueGone(e)) now = null;
      else {
        const err = describePgError(e, this.#url);
        // A server that cannot be reached right now says nothing about which queue it holds:
        // the caller's next calls retry until it answers (or are refused by the guard).
        if (err instanceof StoreError && err.transient) return;
        throw err;
      }
    }
    if (now !== this.#instance) throw this.#replaced();
  }

  async assertWritable(): Promise<void> {
    try {
      await this.#tx(async (tx) => {
        await tx`UPDATE meta SET value = value WHERE key = 'schema_version'`;
        throw new RollbackOnPurpose();
      });
    } catch (e) {
      if (!(e instanceof RollbackOnPurpose)) throw e;
    }
  }

  async close(): Promise<void> {
    for (const w of [...this.#waiters]) w();
    // A LISTEN still being set up settles once connected (or never, with its database gone).
    if (this.#listening) await within(this.#listening, 1000);
    await this.#sql.end({ timeout: 2 });
  }

  async metricTotals(): Promise<MetricTotals> {
    // One statement, so one snapshot.
    const rows = await this.#do((sql) =>
      sql`
        SELECT name, label, bucket, sum(n)::bigint AS n, sum(sum) AS sum FROM metric_totals
        GROUP BY name, label, bucket
        UNION ALL
        SELECT 'present', '', 0, coalesce(sum(n), 0)::bigint, 0 FROM job_counts`
    );
    return metricTotalsFrom(rows as unknown as MetricRow[]);
  }

  async finishedPerMinute(since: number): Promise<MinuteCount[]> {
    const rows = await this.#do((sql) =>
      sql`SELECT finished_at / 60000 * 60000 AS minute, state, count(*)::bigint AS n FROM jobs
          WHERE state IN ('completed','failed','dead')
            AND finished_at >= ${Math.ceil(since / 60000) * 60000}
          GROUP BY 1, 2 ORDER BY 1, 2`
    );
    return rows.map((r) => ({
      minute: Number(r.minute),
      state: r.state as JobState,
      n: Number(r.n),
    }));
  }

  async pageJobs({ sort = "newest", limit, ...filter }: JobPageOptions): Promise<Job[]> {
    const rows = await this.#do((sql) =>
      sql`SELECT * FROM jobs ${pageFilter(sql, filter)}
          ORDER BY seq ${sort === "oldest" ? sql`ASC` : sql`DESC`} LIMIT ${limit}`
    );
    return rows.map(toJob);
  }

  async countPage(filter: JobCountOptions): Promise<number> {
    const { state, states, search, afterSeq, beforeSeq, queue } = filter;
    if (!search && afterSeq === undefined && beforeSeq === undefined && queue === undefined) {
      if (!state && !states) return await this.countJobs();
      return await this.countJobs(
        state ? (!states || states.includes(state) ? [state] : []) : states!,
      );
    }
    const [r] = await this.#do((sql) =>
      sql`SELECT count(*)::bigint AS n FROM jobs ${pageFilter(sql, filter)}`
    );
    return Number(r.n);
  }

  async readyLatencyMs(now: number): Promise<number> {
    // The ready index is ordered by priority first: its first entry of each priority holds that
    // priority's earliest run_at, found by one seek each (no walk over the waiting jobs).
    const [r] = await this.#do((sql) =>
      sql`${sql.unsafe(READY_PRIORITIES)} SELECT min((SELECT run_at FROM jobs
            WHERE state IN ('pending','failed') AND waiting_on = 0 AND priority = p.pri
            ORDER BY run_at LIMIT 1)) AS t
          FROM p WHERE pri IS NOT NULL`
    );
    return r.t === null ? 0 : Math.max(now - Number(r.t), 0);
  }
}

class RollbackOnPurpose extends Error {}

/** The distinct queues other than `default` of any job: one seek of their index per queue. */
const OTHER_QUEUES = `WITH RECURSIVE q(name) AS (
   SELECT (SELECT min(queue) FROM jobs WHERE queue <> 'default')
   UNION ALL
   SELECT (SELECT min(queue) FROM jobs WHERE queue <> 'default' AND queue > q.name)
   FROM q WHERE q.name IS NOT NULL)
   SELECT name FROM q WHERE name IS NOT NULL`;

/** Claimed jobs in the order they were chosen (RETURNING gives them in table order). */
function claimOrder(a: Job, b: Job): number {
  return b.priority - a.priority || a.runAt - b.runAt || a.seq - b.seq;
}

/**
 * The distinct queues of pending and failed jobs, as rows `name`: one seek of the ready index by
 * queue per queue, however many jobs wait.
 */
const READY_QUEUES = `WITH RECURSIVE q(name) AS (
   SELECT (SELECT queue FROM jobs WHERE state IN ('pending','failed') AND waiting_on = 0
     ORDER BY queue LIMIT 1)
   UNION ALL
   SELECT (SELECT queue FROM jobs WHERE state IN ('pending','failed') AND waiting_on = 0
     AND queue > q.name ORDER BY queue LIMIT 1) FROM q WHERE q.name IS NOT NULL)
   SELECT name FROM q WHERE name IS NOT NULL`;

/**
 * The distinct priorities of pending and failed jobs, highest first, as the table `p(pri)` (with a
 * final NULL row): one seek of the ready index per priority, however many jobs wait.
 */
const READY_PRIORITIES = `WITH RECURSIVE p(pri) AS (
   SELECT (SELECT priority FROM jobs WHERE state IN ('pending','failed') AND waiting_on = 0
     ORDER BY priority DESC LIMIT 1)
   UNION ALL
   SELECT (SELECT priority FROM jobs WHERE state IN ('pending','failed') AND waiting_on = 0
     AND priority < p.pri ORDER BY priority DESC LIMIT 1) FROM p WHERE p.pri IS NOT NULL)`;

/** The WHERE clause of `pageJobs` and `countPage`. */
function pageFilter(
  sql: Sql,
  { state, states, search, beforeSeq, afterSeq, queue }: JobCountOptions,
) {
  const conds = [];
  if (queue !== undefined) conds.push(sql`queue = ${queue}`);
  if (beforeSeq !== undefined) conds.push(sql`seq < ${beforeSeq}`);
  if (afterSeq !== undefined) conds.push(sql`seq > ${afterSeq}`);
  if (state) conds.push(sql`state = ${state}`);
  if (states) conds.push(states.length ? sql`state IN ${sql(states as JobState[])}` : sql`FALSE`);
  if (search) {
    // ILIKE ignores case; `\` escapes the user's own % and _.
    const pattern = `%${search.replace(/[\\%_]/g, (c) => "\\" + c)}%`;
    conds.push(sql`(id ILIKE ${pattern} OR command ILIKE ${pattern})`);
  }
  return conds.length === 0
    ? sql``
    : conds.reduce((acc, c, k) => k === 0 ? sql`WHERE ${c}` : sql`${acc} AND ${c}`, sql``);
}
