/**
 * Figures 1 and 7: drain rate of shell jobs and memory while draining.
 *
 * N jobs running `true` go in with one `queuectl enqueue --file`; then `queuectl worker start
 * --count C` runs until a read-only poll of the database sees none left. The drain time runs from
 * the supervisor's spawn to the latest `finished_at` in the table, so the poll interval does not
 * blur it. The baseline, in the same repetition, is `xargs -P C -n1 sh -c true` over N lines;
 * beside it, C loops of bare `Deno.Command` spawns in the bench process show what any Deno runner
 * can reach.
 * Peak RSS (VmHWM) of the supervisor and of each worker is read just before the stop. CPU per job
 * is what the whole process tree used (the bench's reaped-children CPU before and after), split
 * into the worker processes' own CPU, their jobs' (`sh`, reaped by the workers) and the
 * supervisor's, read from /proc just before the stop.
 *
 * With `--db postgres://…` the 4-worker drain runs again in the same repetition on a fresh
 * PostgreSQL schema (the order of the two stores alternating between repetitions), read through a
 * client of its own; its ratio is taken both to xargs and to the SQLite drain just measured. The
 * server's CPU (all its processes, `pgServerCpuUs`) is shown beside the tree's, since it runs on the
 * same cores.
 */
import { cpuUsage } from "node:process";
import { DatabaseSync } from "node:sqlite";
import {
  childrenOf,
  cli,
  CLK_TCK,
  type CpuTicks,
  cpuTicks,
  type Figures,
  peakRssMb,
  type PgSchema,
  pgSchema,
  pgServerCpuUs,
  progress,
  reapedChildrenCpuUs,
  type RunOptions,
  sleep,
  spawnTracked,
  startSupervisor,
} from "./common.ts";

const POLL_MS = 100;
const STALL_MS = 60_000;

/** `xargs -P parallel` running `sh -c true` n times: jobs/s and CPU µs per job. */
async function xargsRun(n: number, parallel: number): Promise<{ rate: number; cpuUs: number }> {
  const cpu0 = await reapedChildrenCpuUs();
  const t0 = performance.now();
  const child = spawnTracked("xargs", {
    args: ["-P", String(parallel), "-n1", "sh", "-c", "true"],
    stdin: "piped",
    stdout: "null",
    stderr: "inherit",
  });
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode("x\n".repeat(n)));
  await w.close();
  const status = await child.status;
  const s = (performance.now() - t0) / 1000;
  if (!status.success) throw new Error(`xargs exited ${status.code}`);
  return { rate: n / s, cpuUs: ((await reapedChildrenCpuUs()) - cpu0) / n };
}

/**
 * The ceiling for any runner written in Deno: `parallel` loops in this process, each spawning
 * `sh -c true` with `Deno.Command` (stdio "null", no process group) and awaiting it, n in all.
 */
async function denoSpawnRun(n: number, parallel: number): Promise<{ rate: number; cpuUs: number }> {
  const kids0 = await reapedChildrenCpuUs();
  const self0 = cpuUsage();
  const t0 = performance.now();
  let left = n;
  const loop = async () => {
    while (left-- > 0) {
      const s = await new Deno.Command("sh", {
        args: ["-c", "true"],
        stdin: "null",
        stdout: "null",
        stderr: "null",
      }).spawn().status;
      if (!s.success) throw new Error(`sh -c true exited ${s.code}`);
    }
  };
  await Promise.all(Array.from({ length: parallel }, loop));
  const s = (performance.now() - t0) / 1000;
  const self = cpuUsage(self0);
  const kids = (await reapedChildrenCpuUs()) - kids0;
  return { rate: n / s, cpuUs: (self.user + self.system + kids) / n };
}

/** Reads the drain's progress without going through queuectl. */
interface Probe {
  /** Jobs per state. */
  counts(): Promise<Record<string, number>>;
  /** The latest `finished_at` (epoch ms). */
  lastFinishedAt(): Promise<number>;
  /** For a stall's diagnosis. */
  describe(): Promise<string>;
}

/** A fresh read-only connection per read of the SQLite file. */
function sqliteProbe(db: string): Probe {
  const read = <T>(fn: (conn: DatabaseSync) => T): T => {
    const conn = new DatabaseSync(db, { readOnly: true, timeout: 5_000 });
    try {
      return fn(conn);
    } finally {
      conn.close();
    }
  };
  return {
    counts: () =>
      Promise.resolve(read((conn) => {
        const rows = conn.prepare("SELECT state, count(*) AS n FROM jobs GROUP BY state").all();
        return Object.fromEntries(rows.map((r) => [r.state as string, r.n as number]));
      })),
    lastFinishedAt: () =>
      Promise.resolve(
        read((conn) => conn.prepare("SELECT max(finished_at) AS t FROM jobs").get()!.t as number),
      ),
    describe() {
      // Whether some connection holds the write lock right now.
      const conn = new DatabaseSync(db, { timeout: 0 });
      try {
        conn.exec("BEGIN IMMEDIATE; ROLLBACK");
        return Promise.resolve("write lock held: false");
      } catch {
        return Promise.resolve("write lock held: true");
      } finally {
        conn.close();
      }
    },
  };
}

/**
 * The bench's own client on the schema. Polls read the per-state counts the store keeps (a few
 * rows; counting the jobs ten times a second would load the server the drain shares); the last
 * read checks them against the jobs themselves.
 */
function pgProbe(schema: PgSchema): Probe {
  const { sql } = schema;
  return {
    async counts() {
      const rows = await sql`SELECT state, sum(n)::int AS n FROM job_counts GROUP BY state`;
      return Object.fromEntries(rows.map((r) => [r.state as string, r.n as number]));
    },
    async lastFinishedAt() {
      const [r] = await sql`
        SELECT max(finished_at)::float8 AS t, count(*) FILTER (WHERE state <> 'completed') AS left
        FROM jobs`;
      if (Number(r.left) > 0) throw new Error(`${r.left} jobs not completed after the drain`);
      return r.t as number;
    },
    async describe() {
      const rows = await sql`
        SELECT pid, state, wait_event_type, wait_event, left(query, 60) AS query
        FROM pg_stat_activity WHERE application_name = 'queuectl'`;
      return `server sessions: ${JSON.stringify(rows)}`;
    },
  };
}

interface DrainResult {
  rate: number;
  /** CPU of the whole tree per job, and its parts (from /proc just before the stop). */
  cpuUs: number;
  supervisorCpuUs: number;
  workersCpuUs: number;
  jobsCpuUs: number;
  supervisorRssMb: number;
  workerRssMb: number;
  /** PostgreSQL server CPU per job over the drain (NaN on SQLite). */
  serverCpuUs: number;
}

/**
 * Enqueues n `true` jobs and drains them with `worker start --count`; see the module doc. On
 * SQLite when `schema` is not given.
 */
async function queuectlRun(
  dir: string,
  n: number,
  count: number,
  schema?: PgSchema,
  concurrency = 1,
): Promise<DrainResult> {
  await Deno.mkdir(dir, { recursive: true });
  const db = schema ? schema.url : `${dir}/queue.db`;
  const probe = schema ? pgProbe(schema) : sqliteProbe(db);
  const file = `${dir}/jobs.ndjson`;
  await Deno.writeTextFile(file, '{"command":"true"}\n'.repeat(n));
  await cli(db, ["enqueue", "--file", file]);

  const server0 = schema ? await pgServerCpuUs() : NaN;
  const cpu0 = await reapedChildrenCpuUs();
  const t0 = Date.now();
  const sup = startSupervisor(db, count, `${dir}/supervisor.log`, concurrency);
  let extra = {
    supervisorRssMb: NaN,
    workerRssMb: NaN,
    supervisorCpuUs: NaN,
    workersCpuUs: NaN,
    jobsCpuUs: NaN,
    serverCpuUs: NaN,
  };
  try {
    let done = 0;
    let progressAt = Date.now();
    for (;;) {
      await sleep(POLL_MS);
      const c = await probe.counts();
      const finished = (c.completed ?? 0) + (c.dead ?? 0) + (c.failed ?? 0);
      if ((c.dead ?? 0) + (c.failed ?? 0) > 0) {
        throw new Error(
          `jobs failed while draining: ${JSON.stringify(c)}\n${await sup.diagnose()}`,
        );
      }
      if (finished > done) [done, progressAt] = [finished, Date.now()];
      if (done >= n) break;
      if (Date.now() - progressAt > STALL_MS) {
        throw new Error(
          `no job finished for ${STALL_MS} ms: ${JSON.stringify(c)}; ` +
            `${await probe.describe()}\n${await sup.diagnose()}`,
        );
      }
    }
    const workers = await childrenOf(sup.pid);
    const peak = await peakRssMb([sup.pid, ...workers]);
    const ticks = await cpuTicks([sup.pid, ...workers]);
    const us = (t: number) => (t * 1e6) / CLK_TCK / n;
    const sum = (f: (t: CpuTicks) => number) =>
      workers.reduce((a, p) => a + f(ticks.get(p) ?? { own: 0, reaped: 0 }), 0);
    extra = {
      supervisorRssMb: peak.get(sup.pid) ?? NaN,
      workerRssMb: Math.max(...workers.map((p) => peak.get(p) ?? NaN)),
      supervisorCpuUs: us(ticks.get(sup.pid)?.own ?? NaN),
      workersCpuUs: us(sum((t) => t.own)),
      jobsCpuUs: us(sum((t) => t.reaped)),
      serverCpuUs: schema ? ((await pgServerCpuUs()) - server0) / n : NaN,
    };
  } finally {
    const code = await sup.stop();
    if (code !== 0) progress(`supervisor exited ${code}\n${await sup.diagnose()}`);
  }
  const s = ((await probe.lastFinishedAt()) - t0) / 1000;
  return { rate: n / s, cpuUs: ((await reapedChildrenCpuUs()) - cpu0) / n, ...extra };
}

/** Figure 1 (and 7 along with it): one record per repetition. */
export async function drain(
  opts: RunOptions,
  counts = [4, 1],
  baseline = true,
): Promise<Figures[]> {
  const n = opts.quick ? 300 : 10_000;
  const pgCount = Math.max(...counts);
  const reps: Figures[] = [];
  for (let rep = 1; rep <= opts.reps; rep++) {
    const f: Figures = { drain_jobs: n };
    for (const count of counts) {
      progress(`drain: ${n} jobs, ${count} worker(s), rep ${rep}/${opts.reps}`);
      if (baseline) {
        const x = await xargsRun(n, count);
        f[`xargs_jobs_per_s_${count}`] = x.rate;
        f[`xargs_cpu_us_per_job_${count}`] = x.cpuUs;
        const d = await denoSpawnRun(n, count);
        f[`deno_spawn_jobs_per_s_${count}`] = d.rate;
        f[`deno_spawn_cpu_us_per_job_${count}`] = d.cpuUs;
        f[`deno_spawn_ratio_${count}`] = d.rate / x.rate;
      }
      // Both stores in this repetition, the first one alternating between repetitions.
      const stores = opts.pg && count === pgCount ? ["", "pg_"] : [""];
      if (rep % 2 === 0) stores.reverse();
      for (const tag of stores) {
        const dir = `${opts.dir}/drain-${tag}${count}-${rep}`;
        const schema = tag ? pgSchema(opts.pg!) : undefined;
        if (tag) progress(`drain: the same on PostgreSQL (schema ${schema!.name})`);
        let q: DrainResult;
        try {
          q = await queuectlRun(dir, n, count, schema);
        } finally {
          await schema?.drop();
        }
        f[`${tag}drain_jobs_per_s_${count}`] = q.rate;
        f[`${tag}drain_cpu_us_per_job_${count}`] = q.cpuUs;
        f[`${tag}drain_cpu_us_workers_${count}`] = q.workersCpuUs;
        f[`${tag}drain_cpu_us_jobs_${count}`] = q.jobsCpuUs;
        f[`${tag}drain_cpu_us_supervisor_${count}`] = q.supervisorCpuUs;
        if (tag) f[`${tag}drain_cpu_us_server_${count}`] = q.serverCpuUs;
        if (baseline) {
          f[`${tag}drain_ratio_${count}`] = q.rate / f[`xargs_jobs_per_s_${count}`];
        }
        if (count === pgCount) {
          f[`${tag}supervisor_rss_mb`] = q.supervisorRssMb;
          f[`${tag}worker_rss_mb`] = q.workerRssMb;
        }
        await Deno.remove(dir, { recursive: true });
      }
      if (stores.length === 2) {
        f[`pg_drain_vs_sqlite_${count}`] = f[`pg_drain_jobs_per_s_${count}`] /
          f[`drain_jobs_per_s_${count}`];
      }
    }
    if (baseline && counts.includes(4)) {
      // The same 4 executors as one worker process with 4 slots (`--count 1 --concurrency 4`).
      progress(`drain: ${n} jobs, 1 worker with --concurrency 4, rep ${rep}/${opts.reps}`);
      const dir = `${opts.dir}/drain-1x4-${rep}`;
      const q = await queuectlRun(dir, n, 1, undefined, 4);
      f.drain_jobs_per_s_1x4 = q.rate;
      f.drain_ratio_1x4 = q.rate / f.xargs_jobs_per_s_4;
      f.drain_cpu_us_per_job_1x4 = q.cpuUs;
      f.worker_rss_mb_1x4 = q.workerRssMb;
      await Deno.remove(dir, { recursive: true });
    }
    reps.push(f);
  }
  return reps;
}

/** Figure 7 alone: a drain with 4 workers, memory only. */
export async function memory(opts: RunOptions): Promise<Figures[]> {
  return (await drain(opts, [4], false)).map((f) =>
    Object.fromEntries(Object.entries(f).filter(([k]) => k.endsWith("rss_mb")))
  );
}
