/**
 * Figure 5: pickup latency and idle CPU.
 *
 * With `worker start --count 2` running on an empty queue, the bench enqueues one job at a time
 * in-process through `SqliteStore.enqueue` (a durable connection, as the CLI opens) and takes the
 * commit time right after `enqueue` returns. The job is `date +%s%N > FILE`: its start time is
 * when `date` ran, so each sample also holds one `date` exec. The floor, in the same repetition,
 * is the same command spawned directly by the bench (spawn + `sh` + `date`). Between samples the
 * bench waits until the job is completed and then 50-150 ms, so the workers are idle again.
 *
 * Idle CPU: utime + stime (/proc/PID/stat) of the supervisor and its workers over a quiet window
 * with an empty queue, as a percentage of one core.
 *
 * With `--db postgres://…` the same samples run again in each repetition on a fresh PostgreSQL
 * schema, enqueued through `PostgresStore.enqueue` (durable, as the CLI), with the workers waking on
 * LISTEN/NOTIFY; keys `pg_…`, against the same floor.
 */
import { openStore } from "../lib/store/open.ts";
import type { Store } from "../lib/store/store.ts";
import {
  calibrateClock,
  childrenOf,
  CLK_TCK,
  cpuTicks,
  type Figures,
  median,
  percentile,
  pgSchema,
  progress,
  type RunOptions,
  sleep,
  spawnTracked,
  startSupervisor,
  waitUntil,
} from "./common.ts";

/** The epoch ms that `date +%s%N` wrote to `file`, once it is complete. */
async function readStamp(file: string): Promise<number | null> {
  try {
    const t = await Deno.readTextFile(file);
    return /^\d+\n$/.test(t) ? Number(BigInt(t.trim()) / 1000n) / 1000 : null;
  } catch {
    return null;
  }
}

async function waitStamp(file: string): Promise<number> {
  let stamp: number | null = null;
  await waitUntil(async () => (stamp = await readStamp(file)) !== null, `${file}`, {
    timeoutMs: 30_000,
    intervalMs: 5,
  });
  return stamp!;
}

/** Spawn-to-start of `date` run directly by the bench: the floor under any pickup. */
async function floorMs(dir: string, samples: number): Promise<number> {
  const out: number[] = [];
  for (let i = 0; i < samples; i++) {
    const file = `${dir}/floor-${i}`;
    const clock = calibrateClock();
    const t0 = clock();
    const s = await spawnTracked("sh", {
      args: ["-c", `date +%s%N > ${file}`],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).status;
    if (!s.success) throw new Error("date failed");
    out.push((await waitStamp(file)) - t0);
  }
  return median(out);
}

/** CPU of `pids` over `ms`, in percent of one core. */
async function cpuPercent(pids: number[], ms: number): Promise<number> {
  const before = await cpuTicks(pids);
  const t0 = performance.now();
  await sleep(ms);
  const after = await cpuTicks(pids);
  const s = (performance.now() - t0) / 1000;
  let ticks = 0;
  for (const [pid, t] of after) ticks += t.own - (before.get(pid) ?? t).own;
  return (ticks / CLK_TCK / s) * 100;
}

/** Pickup samples and idle CPU against one store, `db`, opened as `store`. */
async function pickupRun(
  dir: string,
  db: string,
  store: Store,
  samples: number,
  idleMs: number,
): Promise<Figures> {
  const sup = startSupervisor(db, 2, `${dir}/supervisor.log`);
  try {
    await waitUntil(async () => (await store.listWorkers()).length === 2, "2 workers", {
      timeoutMs: 30_000,
    });
    await sleep(500);
    const lat: number[] = [];
    for (let i = 0; i < samples; i++) {
      const file = `${dir}/pick-${i}`;
      const clock = calibrateClock();
      const now = Date.now();
      await store.enqueue([{
        id: `p${i}`,
        command: `date +%s%N > ${file}`,
        maxRetries: 0,
        priority: 0,
        runAt: now,
        timeoutMs: 0,
        cwd: dir,
        env: null,
      }], now);
      const committed = clock();
      lat.push((await waitStamp(file)) - committed);
      await waitUntil(async () => (await store.getJob(`p${i}`))?.state === "completed", "job");
      await sleep(50 + Math.random() * 100);
    }
    await sleep(1_000);
    const idle = await cpuPercent([sup.pid, ...(await childrenOf(sup.pid))], idleMs);
    return {
      pickup_p50_ms: percentile(lat, 50),
      pickup_p99_ms: percentile(lat, 99),
      pickup_max_ms: Math.max(...lat),
      idle_cpu_percent: idle,
    };
  } finally {
    const code = await sup.stop();
    if (code !== 0) progress(`supervisor exited ${code}\n${await sup.diagnose()}`);
  }
}

export async function pickup(opts: RunOptions): Promise<Figures[]> {
  const samples = opts.quick ? 8 : 50;
  const idleMs = opts.quick ? 1_000 : 5_000;
  const reps: Figures[] = [];
  for (let rep = 1; rep <= opts.reps; rep++) {
    progress(`pickup: ${samples} samples + ${idleMs / 1000} s idle, rep ${rep}/${opts.reps}`);
    const dir = `${opts.dir}/pickup-${rep}`;
    await Deno.mkdir(dir, { recursive: true });
    const f: Figures = { pickup_floor_ms: await floorMs(dir, Math.min(samples, 20)) };
    const db = `${dir}/queue.db`;
    const store = await openStore(db);
    try {
      Object.assign(f, await pickupRun(dir, db, store, samples, idleMs));
    } finally {
      await store.close();
    }
    if (opts.pg) {
      const schema = pgSchema(opts.pg);
      progress(`pickup: the same on PostgreSQL (schema ${schema.name})`);
      const pgDir = `${dir}/pg`;
      await Deno.mkdir(pgDir);
      try {
        const pg = await openStore(schema.url);
        try {
          const r = await pickupRun(pgDir, schema.url, pg, samples, idleMs);
          for (const [k, v] of Object.entries(r)) f[`pg_${k}`] = v;
        } finally {
          await pg.close();
        }
      } finally {
        await schema.drop();
      }
    }
    reps.push(f);
    await Deno.remove(dir, { recursive: true });
  }
  return reps;
}
