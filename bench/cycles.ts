/**
 * Figure 2: bookkeeping rate. Claim + complete cycles per second through the real store code
 * (`SqliteStore.claimNext` + `finishAttempt` with `transition(job, {type: "succeed"})`), no job
 * process spawned, with 1 and with 4 processes on one database file; then the same through
 * `finishAndClaim`, the busy worker's one-commit path (`cycles_combined_*`), and with 16 results and
 * 16 claims per commit, as a worker with `--concurrency 16` does under load (`cycles_batch_*`). Each process is a
 * `cycles_child.ts`; all start together after they have opened the store, and the rate is the jobs
 * done over the wall time from the start signal to the last result. CPU µs per job is the
 * children's own CPU (user + system) over the jobs they did. `busy_timeouts_*` counts the store
 * calls that gave up waiting for the write lock (10 s busy timeout) and were retried.
 */
import { fileURLToPath } from "node:url";
import { netAddressOf, openStore } from "../lib/store/open.ts";
import type { NewJob } from "../lib/store/store.ts";
import postgres from "postgres";
import { type Figures, progress, type RunOptions, spawnTracked } from "./common.ts";

const CHILD = fileURLToPath(new URL("./cycles_child.ts", import.meta.url));

/** Stores n ready `true` jobs in one transaction. */
export async function fillJobs(db: string, n: number, cwd: string, prefix = "j") {
  const now = Date.now();
  const jobs: NewJob[] = Array.from({ length: n }, (_, i) => ({
    id: `${prefix}${i}`,
    command: "true",
    maxRetries: 0,
    priority: 0,
    runAt: now,
    timeoutMs: 0,
    cwd,
    env: null,
  }));
  const store = await openStore(db);
  try {
    await store.enqueue(jobs, now);
  } finally {
    await store.close();
  }
}

/** Reads a child's stdout until `marker` has arrived; returns what came so far. */
async function readUntil(r: ReadableStreamDefaultReader<Uint8Array>, marker: string | null) {
  const dec = new TextDecoder();
  let text = "";
  for (;;) {
    if (marker !== null && text.includes(marker)) return text;
    const { value, done } = await r.read();
    if (done) return text;
    text += dec.decode(value, { stream: true });
  }
}

/** A fresh PostgreSQL schema in `base` for one run, and how to drop it afterwards. */
function pgSchema(base: string) {
  const schema = `bench_${crypto.randomUUID().replaceAll("-", "").slice(0, 10)}`;
  const u = new URL(base);
  u.searchParams.set("schema", schema);
  return {
    url: u.toString(),
    async drop() {
      u.searchParams.delete("schema");
      const sql = postgres(u.toString(), { max: 1, onnotice: () => {} });
      try {
        await sql.unsafe(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      } finally {
        await sql.end({ timeout: 1 });
      }
    },
  };
}

async function cyclesRun(
  dir: string,
  n: number,
  procs: number,
  mode: string,
  pg?: string,
) {
  await Deno.mkdir(dir, { recursive: true });
  const schema = pg ? pgSchema(pg) : null;
  const db = schema ? schema.url : `${dir}/queue.db`;
  await fillJobs(db, n, dir);
  const net = netAddressOf(db);
  const perms = [`--allow-read=${dir}`, `--allow-write=${dir}`];
  if (net) perms.push(`--allow-net=${net}`, "--allow-env", "--allow-read");
  const children = Array.from({ length: procs }, () =>
    spawnTracked(Deno.execPath(), {
      args: ["run", "--quiet", ...perms, CHILD, db, mode],
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }));
  const readers = children.map((c) => c.stdout.getReader());
  for (const r of readers) {
    if (!(await readUntil(r, "ready\n")).includes("ready")) throw new Error("cycles child failed");
  }
  const t0 = performance.now();
  await Promise.all(children.map((c) => c.stdin.close()));
  const outs = await Promise.all(readers.map((r) => readUntil(r, null)));
  const wallS = (performance.now() - t0) / 1000;
  for (const c of children) {
    const s = await c.status;
    if (!s.success) throw new Error(`cycles child exited ${s.code}`);
  }
  const results = outs.map((o) => JSON.parse(o.trim().split("\n").at(-1)!));
  const jobs = results.reduce((a, r) => a + r.jobs, 0);
  if (jobs !== n) throw new Error(`cycles: ${jobs} of ${n} jobs done`);
  const cpuUs = results.reduce((a, r) => a + r.cpuUs, 0);
  const busy = results.reduce((a, r) => a + r.busy, 0);
  await Deno.remove(dir, { recursive: true });
  await schema?.drop();
  return { rate: n / wallS, cpuUsPerJob: cpuUs / n, busy };
}

export async function cycles(opts: RunOptions): Promise<Figures[]> {
  const n = opts.quick ? 2_000 : 10_000;
  const reps: Figures[] = [];
  for (let rep = 1; rep <= opts.reps; rep++) {
    const f: Figures = {};
    for (const mode of ["separate", "combined", "batch"]) {
      for (const procs of [1, 4]) {
        progress(`cycles: ${n} jobs, ${mode}, ${procs} process(es), rep ${rep}/${opts.reps}`);
        const r = await cyclesRun(`${opts.dir}/cycles-${procs}-${rep}`, n, procs, mode, opts.pg);
        const tag = mode === "separate" ? "" : `${mode}_`;
        f[`cycles_${tag}per_s_${procs}`] = r.rate;
        f[`cpu_us_per_job_${tag}${procs}`] = r.cpuUsPerJob;
        f[`busy_timeouts_${tag}${procs}`] = r.busy;
      }
    }
    f.cpu_us_per_job = f.cpu_us_per_job_1;
    reps.push(f);
  }
  return reps;
}
