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

/** Counts per state, read through a fresh read-only connection. */
function stateCounts(db: string): Record<string, number> {
  const conn = new DatabaseSync(db, { readOnly: true, timeout: 5_000 });
  try {
    const rows = conn.prepare("SELECT state, count(*) AS n FROM jobs GROUP BY state").all();
    return Object.fromEntries(rows.map((r) => [r.state as string, r.n as number]));
  } finally {
    conn.close();
  }
}

/** Whether some connection holds the write lock right now (for a stall's diagnosis). */
function writeLockHeld(db: string): boolean {
  const conn = new DatabaseSync(db, { timeout: 0 });
  try {
    conn.exec("BEGIN IMMEDIATE; ROLLBACK");
    return false;
  } catch {
    return true;
  } finally {
    conn.close();
  }
}

function lastFinishedAt(db: string): number {
  const conn = new DatabaseSync(db, { readOnly: true, timeout: 5_000 });
  try {
    return conn.prepare("SELECT max(finished_at) AS t FROM jobs").get()!.t as number;
  } finally {
    conn.close();
  }
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
}

/** Enqueues n `true` jobs and drains them with `worker start --count`; see the module doc. */
async function queuectlRun(dir: string, n: number, count: number): Promise<DrainResult> {
  await Deno.mkdir(dir, { recursive: true });
  const db = `${dir}/queue.db`;
  const file = `${dir}/jobs.ndjson`;
  await Deno.writeTextFile(file, '{"command":"true"}\n'.repeat(n));
  await cli(db, ["enqueue", "--file", file]);

  const cpu0 = await reapedChildrenCpuUs();
  const t0 = Date.now();
  const sup = startSupervisor(db, count, `${dir}/supervisor.log`);
  let extra = {
    supervisorRssMb: NaN,
    workerRssMb: NaN,
    supervisorCpuUs: NaN,
    workersCpuUs: NaN,
    jobsCpuUs: NaN,
  };
  try {
    let done = 0;
    let progressAt = Date.now();
    for (;;) {
      await sleep(POLL_MS);
      const c = stateCounts(db);
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
          `no job finished for ${STALL_MS} ms: ${JSON.stringify(c)}; write lock held: ` +
            `${writeLockHeld(db)}\n${await sup.diagnose()}`,
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
    };
  } finally {
    const code = await sup.stop();
    if (code !== 0) progress(`supervisor exited ${code}\n${await sup.diagnose()}`);
  }
  const s = (lastFinishedAt(db) - t0) / 1000;
  return { rate: n / s, cpuUs: ((await reapedChildrenCpuUs()) - cpu0) / n, ...extra };
}

/** Figure 1 (and 7 along with it): one record per repetition. */
export async function drain(
  opts: RunOptions,
  counts = [4, 1],
  baseline = true,
): Promise<Figures[]> {
  const n = opts.quick ? 300 : 10_000;
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
      const q = await queuectlRun(`${opts.dir}/drain-${count}-${rep}`, n, count);
      f[`drain_jobs_per_s_${count}`] = q.rate;
      f[`drain_cpu_us_per_job_${count}`] = q.cpuUs;
      f[`drain_cpu_us_workers_${count}`] = q.workersCpuUs;
      f[`drain_cpu_us_jobs_${count}`] = q.jobsCpuUs;
      f[`drain_cpu_us_supervisor_${count}`] = q.supervisorCpuUs;
      if (baseline) f[`drain_ratio_${count}`] = q.rate / f[`xargs_jobs_per_s_${count}`];
      if (count === Math.max(...counts)) {
        f.supervisor_rss_mb = q.supervisorRssMb;
        f.worker_rss_mb = q.workerRssMb;
      }
      await Deno.remove(`${opts.dir}/drain-${count}-${rep}`, { recursive: true });
    }
    reps.push(f);
  }
  return reps;
}

/** Figure 7 alone: a drain with 4 workers, memory only. */
export async function memory(opts: RunOptions): Promise<Figures[]> {
  return (await drain(opts, [4], false)).map((f) => ({
    supervisor_rss_mb: f.supervisor_rss_mb,
    worker_rss_mb: f.worker_rss_mb,
  }));
}
