/**
 * Figure 6: cost at depth. Two fixture databases, one with 1,000 jobs and one with 1,000,000
 * (20,000 with `--quick`), each with the same few hundred pending jobs and the rest completed
 * (each with its attempt row). The fixtures are written straight through `node:sqlite` after
 * `SqliteStore.open` created the schema; everything measured goes through the real code:
 * `claimNext` (+ `finishAttempt`, as a worker does) in this process, `store.counts()`, and the wall
 * time of the `queuectl status` CLI. Each repetition first sets the pending jobs again. A last
 * measurement claims from the big table with a deep backlog (100,000 pending; 5,000 quick).
 *
 * With `--db postgres://…` the same fixtures are built in two fresh PostgreSQL schemas (after
 * `PostgresStore.open` created the tables; the per-state counts the store keeps are set to match,
 * and `VACUUM ANALYZE` runs after each rewrite, as autovacuum would), and every repetition measures
 * them too, through `PostgresStore` and the CLI; keys `pg_…`.
 */
import { DatabaseSync } from "node:sqlite";
import { transition } from "../lib/job.ts";
import { openStore } from "../lib/store/open.ts";
import { SqliteStore } from "../lib/store/sqlite.ts";
import {
  cli,
  type Figures,
  median,
  type PgSchema,
  pgSchema,
  progress,
  type RunOptions,
} from "./common.ts";

const BASE_AT = Date.UTC(2026, 0, 1);

/** Writes `total` completed jobs (`resetPending` turns the last few back to pending). */
function buildFixture(db: string, total: number, cwd: string) {
  SqliteStore.open(db).close();
  const conn = new DatabaseSync(db);
  try {
    conn.exec("PRAGMA journal_mode=DELETE; PRAGMA synchronous=OFF; BEGIN");
    conn.prepare(
      `WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?1)
       INSERT INTO jobs (id, command, state, attempts, max_retries, priority, run_at, timeout_ms,
         cwd, env, created_at, updated_at, started_at, finished_at, exit_code, worker_id)
       SELECT 'j' || x, 'echo ' || x, 'completed', 1, 3, 0, ?2 + x, 0,
         ?3, NULL, ?2 + x, ?2 + x + 9, ?2 + x + 1, ?2 + x + 9, 0, 'bench:1'
       FROM c`,
    ).run(total, BASE_AT, cwd);
    conn.prepare(
      `INSERT INTO attempts (job_id, attempt, worker_id, started_at, finished_at, outcome,
         exit_code)
       SELECT id, 1, worker_id, started_at, finished_at, 'completed', 0 FROM jobs`,
    ).run();
    conn.exec("COMMIT; PRAGMA journal_mode=WAL");
  } finally {
    conn.close();
  }
}

/** Makes the last `pending` jobs pending again, as new, and every other job completed. */
function setPending(db: string, total: number, pending: number) {
  const conn = new DatabaseSync(db, { timeout: 10_000 });
  try {
    conn.exec("BEGIN IMMEDIATE");
    conn.prepare("DELETE FROM attempts WHERE job_id IN (SELECT id FROM jobs WHERE seq > ?)")
      .run(total - pending);
    conn.prepare(
      `UPDATE jobs SET state = 'pending', attempts = 0, run_at = ?, started_at = NULL,
         finished_at = NULL, exit_code = NULL, error = NULL, worker_id = NULL WHERE seq > ?`,
    ).run(BASE_AT, total - pending);
    conn.prepare(
      `UPDATE jobs SET state = 'completed', attempts = 1, started_at = ?2 + seq + 1,
         finished_at = ?2 + seq + 9, exit_code = 0, worker_id = 'bench:1'
       WHERE state IN ('pending', 'processing') AND seq <= ?1`,
    ).run(total - pending, BASE_AT);
    conn.exec("COMMIT; PRAGMA wal_checkpoint(TRUNCATE)");
  } finally {
    conn.close();
  }
}

/** The same fixture in a PostgreSQL schema. */
async function buildPgFixture(schema: PgSchema, total: number, cwd: string) {
  await (await openStore(schema.url)).close();
  const { sql } = schema;
  await sql.begin(async (tx) => {
    await tx`
      INSERT INTO jobs (id, command, state, attempts, max_retries, priority, run_at, timeout_ms,
        cwd, env, created_at, updated_at, started_at, finished_at, exit_code, worker_id)
      SELECT 'j' || x, 'echo ' || x, 'completed', 1, 3, 0, ${BASE_AT}::bigint + x, 0,
        ${cwd}, NULL, ${BASE_AT}::bigint + x, ${BASE_AT}::bigint + x + 9,
        ${BASE_AT}::bigint + x + 1, ${BASE_AT}::bigint + x + 9, 0, 'bench:1'
      FROM generate_series(1, ${total}::bigint) x`;
    await tx`
      INSERT INTO attempts (job_id, attempt, worker_id, started_at, finished_at, outcome,
        exit_code)
      SELECT id, 1, worker_id, started_at, finished_at, 'completed', 0 FROM jobs`;
    await recount(tx as unknown as PgSchema["sql"]);
  });
  await sql`VACUUM ANALYZE jobs`;
  await sql`VACUUM ANALYZE attempts`;
}

/** Sets the store's per-state counts to what the jobs table holds. */
async function recount(sql: PgSchema["sql"]) {
  await sql`DELETE FROM job_counts`;
  await sql`
    INSERT INTO job_counts (state, slot, n)
    SELECT s, 0, (SELECT count(*) FROM jobs WHERE state = s)
    FROM unnest(ARRAY['pending','processing','completed','failed','dead','cancelled']) s`;
}

/** `setPending` on PostgreSQL (the store's statement trigger keeps the counts). */
async function setPgPending(schema: PgSchema, total: number, pending: number) {
  const { sql } = schema;
  await sql.begin(async (tx) => {
    await tx`DELETE FROM attempts WHERE job_id IN (SELECT id FROM jobs WHERE seq > ${
      total - pending
    })`;
    await tx`
      UPDATE jobs SET state = 'pending', attempts = 0, run_at = ${BASE_AT}, started_at = NULL,
        finished_at = NULL, exit_code = NULL, error = NULL, worker_id = NULL
      WHERE seq > ${total - pending}`;
    await tx`
      UPDATE jobs SET state = 'completed', attempts = 1, started_at = ${BASE_AT}::bigint + seq + 1,
        finished_at = ${BASE_AT}::bigint + seq + 9, exit_code = 0, worker_id = 'bench:1'
      WHERE state IN ('pending', 'processing') AND seq <= ${total - pending}`;
  });
  await sql`VACUUM ANALYZE jobs`;
}

/** Median µs of `claimNext` (each followed by `finishAttempt`, as a worker does). */
async function claimCost(db: string, claims: number) {
  const store = await openStore(db, { durable: false });
  const claimUs: number[] = [];
  const finishUs: number[] = [];
  const done = { outcome: "completed", exitCode: 0, signal: null, error: null } as const;
  try {
    for (let i = 0; i < claims; i++) {
      const t0 = performance.now();
      const [job] = await store.claimNext("bench:2", Date.now());
      const t1 = performance.now();
      if (!job) throw new Error("depth: fixture ran out of pending jobs");
      const now = Date.now();
      const next = transition(job, { type: "succeed" }, now);
      await store.finishAttempt(job.id, "bench:2", next, done, now);
      finishUs.push((performance.now() - t1) * 1000);
      claimUs.push((t1 - t0) * 1000);
    }
  } finally {
    await store.close();
  }
  return { claimUs: median(claimUs), finishUs: median(finishUs) };
}

/** Median ms of `store.counts()` in-process and of the `queuectl status` CLI. */
async function statusCost(db: string, calls: number) {
  const store = await openStore(db);
  const countsMs: number[] = [];
  try {
    for (let i = 0; i < 3; i++) {
      const t0 = performance.now();
      await store.counts(Date.now());
      countsMs.push(performance.now() - t0);
    }
  } finally {
    await store.close();
  }
  const statusMs: number[] = [];
  for (let i = 0; i < calls; i++) statusMs.push((await cli(db, ["status"])).ms);
  return { countsMs: median(countsMs), statusMs: median(statusMs) };
}

export async function depth(opts: RunOptions): Promise<Figures[]> {
  const pending = opts.quick ? 50 : 200;
  const sizes = { "1k": 1_000, "1m": opts.quick ? 20_000 : 1_000_000 };
  // A deep backlog in the big table: the claim should not care how many jobs wait either.
  const backlog = opts.quick ? 5_000 : 100_000;
  const dir = `${opts.dir}/depth`;
  await Deno.mkdir(dir, { recursive: true });
  const schemas = new Map<string, PgSchema>();
  try {
    for (const [name, total] of Object.entries(sizes)) {
      progress(`depth: building the ${total}-job fixture`);
      const t0 = performance.now();
      buildFixture(`${dir}/${name}.db`, total, dir);
      if (opts.pg) {
        const schema = pgSchema(opts.pg);
        schemas.set(name, schema);
        await buildPgFixture(schema, total, dir);
      }
      progress(`depth: built in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    }
    const reps: Figures[] = [];
    for (let rep = 1; rep <= opts.reps; rep++) {
      progress(`depth: ${pending} claims and 5 status calls per size, rep ${rep}/${opts.reps}`);
      const f: Figures = { depth_jobs_big: sizes["1m"], depth_backlog: backlog };
      for (const tag of opts.pg ? ["", "pg_"] : [""]) {
        const at = (name: string) => tag ? schemas.get(name)!.url : `${dir}/${name}.db`;
        const reset = (name: string, total: number, n: number) =>
          tag ? setPgPending(schemas.get(name)!, total, n) : setPending(at(name), total, n);
        for (const [name, total] of Object.entries(sizes)) {
          await reset(name, total, pending);
          const c = await claimCost(at(name), pending);
          const s = await statusCost(at(name), 5);
          f[`${tag}claim_us_${name}`] = c.claimUs;
          f[`${tag}finish_us_${name}`] = c.finishUs;
          f[`${tag}counts_ms_${name}`] = s.countsMs;
          f[`${tag}status_ms_${name}`] = s.statusMs;
        }
        progress(`depth: ${pending} claims with ${backlog} jobs waiting${tag ? " (pg)" : ""}`);
        await reset("1m", sizes["1m"], backlog);
        f[`${tag}claim_us_backlog`] = (await claimCost(at("1m"), pending)).claimUs;
        f[`${tag}counts_ms_backlog`] = (await statusCost(at("1m"), 0)).countsMs;
        f[`${tag}depth_claim_ratio`] = f[`${tag}claim_us_1m`] / f[`${tag}claim_us_1k`];
        f[`${tag}depth_finish_ratio`] = f[`${tag}finish_us_1m`] / f[`${tag}finish_us_1k`];
        f[`${tag}depth_status_ratio`] = f[`${tag}status_ms_1m`] / f[`${tag}status_ms_1k`];
        f[`${tag}backlog_claim_ratio`] = f[`${tag}claim_us_backlog`] / f[`${tag}claim_us_1k`];
      }
      reps.push(f);
    }
    return reps;
  } finally {
    for (const s of schemas.values()) await s.drop();
    await Deno.remove(dir, { recursive: true });
  }
}
