/**
 * `deno task bench`: queuectl's performance figures (issue 5), each the median of several
 * repetitions, each ratio taken against a baseline measured in the same repetition. Prints a table,
 * or with `--json` one object of numbers. Progress goes to stderr.
 *
 *   deno task bench [--reps N] [--only NAME] [--json]
 *   deno task bench:quick          small counts, one repetition: shows the benchmark still works
 *
 * NAME is one of drain, cycles, enqueue, batch, pickup, depth, memory (or its number 1-7). Memory
 * is measured during the 4-worker drain; `--only memory` runs that drain alone.
 *
 *   deno task bench --db postgres://USER@HOST:5432/DB [--reps N] [--only NAME] [--json]
 *
 * measures every figure on SQLite and, in the same repetition, on PostgreSQL (keys prefixed
 * `pg_`, table rows marked `pg`); each PostgreSQL run gets a fresh schema, dropped after it.
 *
 * Everything runs in one temp directory, removed at the end (the per-host state of PostgreSQL
 * queues too: XDG_STATE_HOME points into it); every child process is awaited, and killed if the
 * bench is interrupted.
 */
import { cycles } from "./cycles.ts";
import { depth } from "./depth.ts";
import { drain, memory } from "./drain.ts";
import { batch, enqueueCall } from "./enqueue.ts";
import { pickup } from "./pickup.ts";
import {
  cleanupAll,
  dropSchemas,
  type Figures,
  loadavg,
  median,
  onCleanup,
  progress,
  type RunOptions,
} from "./common.ts";

/** Keys of `f` with `pg_` in front. */
const pgKeys = (f: Figures): Figures =>
  Object.fromEntries(Object.entries(f).map(([k, v]) => [`pg_${k}`, v]));

const FIGURES: Record<string, (o: RunOptions) => Promise<Figures[]>> = {
  drain: (o) => drain(o),
  // cycles.ts measures one store: SQLite files, or the `pg` database when given.
  cycles: async (o) => {
    const lite = await cycles({ ...o, pg: undefined });
    if (!o.pg) return lite;
    const pg = await cycles(o);
    return lite.map((f, i) => ({ ...f, ...pgKeys(pg[i]) }));
  },
  enqueue: enqueueCall,
  batch,
  pickup,
  depth,
  memory,
};
const NAMES = Object.keys(FIGURES);

interface Row {
  fig: number;
  what: string;
  key: string;
  unit: string;
  /** The baseline's label and key. */
  base?: [string, string];
  ratio?: string;
  target?: string;
  /**
   * The PostgreSQL row under this one (when its `pg_` key was measured): by default the same row
   * with `pg_` keys (the baseline's own `pg_` key when there is one, else the shared one); these
   * fields replace the defaults. Rows whose key starts with `pg_` are PostgreSQL rows themselves.
   */
  pg?: Partial<Omit<Row, "pg">>;
}

const ROWS: Row[] = [
  {
    fig: 1,
    what: "drain `true` jobs, 4 workers",
    key: "drain_jobs_per_s_4",
    unit: "jobs/s",
    base: ["xargs -P4", "xargs_jobs_per_s_4"],
    ratio: "drain_ratio_4",
    target: "ratio ≥ 1.0",
    pg: { target: "" },
  },
  {
    fig: 1,
    what: "drain `true` jobs, 4 workers",
    key: "pg_drain_jobs_per_s_4",
    unit: "jobs/s",
    base: ["SQLite", "drain_jobs_per_s_4"],
    ratio: "pg_drain_vs_sqlite_4",
    target: "ratio ≥ 0.90",
  },
  {
    fig: 1,
    what: "drain `true` jobs, 1 worker",
    key: "drain_jobs_per_s_1",
    unit: "jobs/s",
    base: ["xargs -P1", "xargs_jobs_per_s_1"],
    ratio: "drain_ratio_1",
    target: "ratio ≥ 1.0",
  },
  {
    fig: 1,
    what: "drain `true` jobs, 1 worker × 4 slots",
    key: "drain_jobs_per_s_1x4",
    unit: "jobs/s",
    base: ["xargs -P4", "xargs_jobs_per_s_4"],
    ratio: "drain_ratio_1x4",
  },
  { fig: 1, what: "CPU per job, 1 worker × 4 slots", key: "drain_cpu_us_per_job_1x4", unit: "µs" },
  { fig: 7, what: "peak RSS, the 1 × 4 worker", key: "worker_rss_mb_1x4", unit: "MB" },

  {
    fig: 1,
    what: "bare Deno.Command spawns, 4 loops",
    key: "deno_spawn_jobs_per_s_4",
    unit: "jobs/s",
    base: ["xargs -P4", "xargs_jobs_per_s_4"],
    ratio: "deno_spawn_ratio_4",
  },
  {
    fig: 1,
    what: "bare Deno.Command spawns, 1 loop",
    key: "deno_spawn_jobs_per_s_1",
    unit: "jobs/s",
    base: ["xargs -P1", "xargs_jobs_per_s_1"],
    ratio: "deno_spawn_ratio_1",
  },
  {
    fig: 1,
    what: "CPU per shell job, 4 workers",
    key: "drain_cpu_us_per_job_4",
    unit: "µs",
    base: ["xargs -P4", "xargs_cpu_us_per_job_4"],
  },
  { fig: 1, what: "  of which worker processes", key: "drain_cpu_us_workers_4", unit: "µs" },
  { fig: 1, what: "  of which jobs (sh)", key: "drain_cpu_us_jobs_4", unit: "µs" },
  { fig: 1, what: "  of which supervisor", key: "drain_cpu_us_supervisor_4", unit: "µs" },
  {
    fig: 1,
    what: "  beside it, PostgreSQL server (all clients)",
    key: "pg_drain_cpu_us_server_4",
    unit: "µs",
  },
  {
    fig: 1,
    what: "CPU per bare Deno.Command spawn, 4 loops",
    key: "deno_spawn_cpu_us_per_job_4",
    unit: "µs",
  },
  {
    fig: 2,
    what: "claim + complete, 1 process",
    key: "cycles_per_s_1",
    unit: "/s",
    target: "",
    pg: { target: "" },
  },
  {
    fig: 2,
    what: "claim + complete, 4 processes",
    key: "cycles_per_s_4",
    unit: "/s",
    target: "",
    pg: { target: "" },
  },
  { fig: 2, what: "CPU per cycle, 1 process", key: "cpu_us_per_job_1", unit: "µs" },
  { fig: 2, what: "CPU per cycle, 4 processes", key: "cpu_us_per_job_4", unit: "µs" },
  {
    fig: 2,
    what: "store calls that timed out on the lock, 4 proc",
    key: "busy_timeouts_4",
    unit: "calls",
  },
  { fig: 2, what: "finishAndClaim, 1 process", key: "cycles_combined_per_s_1", unit: "/s" },
  { fig: 2, what: "finishAndClaim, 4 processes", key: "cycles_combined_per_s_4", unit: "/s" },
  {
    fig: 2,
    what: "CPU per finishAndClaim, 1 process",
    key: "cpu_us_per_job_combined_1",
    unit: "µs",
  },
  { fig: 2, what: "16 per commit, 1 process", key: "cycles_batch_per_s_1", unit: "/s" },
  {
    fig: 2,
    what: "16 per commit, 4 processes",
    key: "cycles_batch_per_s_4",
    unit: "/s",
    target: "≥ 20,000/s",
    pg: { target: "≥ 10,000/s" },
  },
  { fig: 2, what: "CPU per job, 16 per commit, 1 proc", key: "cpu_us_per_job_batch_1", unit: "µs" },
  {
    fig: 3,
    what: "one `enqueue` call",
    key: "enqueue_ms",
    unit: "ms",
    base: ["empty deno run", "empty_deno_ms"],
    ratio: "enqueue_ratio",
    target: "ratio ≤ 1.3",
    pg: { target: "" },
  },
  {
    fig: 4,
    what: "batch enqueue, CLI --file",
    key: "batch_jobs_per_s",
    unit: "jobs/s",
    target: "≥ 250,000/s",
    pg: { target: "" },
  },
  { fig: 4, what: "batch: parseNdjson in-process", key: "batch_parse_ms", unit: "ms" },
  {
    fig: 4,
    what: "batch: store.enqueue in-process",
    key: "batch_store_jobs_per_s",
    unit: "jobs/s",
  },
  {
    fig: 5,
    what: "pickup latency p50",
    key: "pickup_p50_ms",
    unit: "ms",
    base: ["direct spawn", "pickup_floor_ms"],
    target: "≤ 5 ms",
    pg: { what: "pickup latency p50 (NOTIFY)", target: "≤ 10 ms" },
  },
  {
    fig: 5,
    what: "pickup latency p99",
    key: "pickup_p99_ms",
    unit: "ms",
    target: "≤ 25 ms",
    pg: { what: "pickup latency p99 (NOTIFY)", target: "≤ 50 ms" },
  },
  {
    fig: 5,
    what: "idle CPU, supervisor + 2 workers",
    key: "idle_cpu_percent",
    unit: "% core",
    target: "< 1%",
  },
  {
    fig: 6,
    what: "claimNext at depth (big)",
    key: "claim_us_1m",
    unit: "µs",
    base: ["1k jobs", "claim_us_1k"],
    ratio: "depth_claim_ratio",
    target: "ratio ≤ 1.5",
  },
  {
    fig: 6,
    what: "claimNext, big table + deep backlog",
    key: "claim_us_backlog",
    unit: "µs",
    base: ["1k jobs", "claim_us_1k"],
    ratio: "backlog_claim_ratio",
  },
  {
    fig: 6,
    what: "finishAttempt at depth (big)",
    key: "finish_us_1m",
    unit: "µs",
    base: ["1k jobs", "finish_us_1k"],
    ratio: "depth_finish_ratio",
  },
  {
    fig: 6,
    what: "`status` CLI at depth (big)",
    key: "status_ms_1m",
    unit: "ms",
    base: ["1k jobs", "status_ms_1k"],
    ratio: "depth_status_ratio",
    target: "≤ 50 ms",
  },
  {
    fig: 6,
    what: "store.counts() at depth (big)",
    key: "counts_ms_1m",
    unit: "ms",
    base: ["1k jobs", "counts_ms_1k"],
  },
  {
    fig: 6,
    what: "store.counts(), big table + deep backlog",
    key: "counts_ms_backlog",
    unit: "ms",
    base: ["1k jobs", "counts_ms_1k"],
  },
  {
    fig: 7,
    what: "peak RSS, largest worker",
    key: "worker_rss_mb",
    unit: "MB",
    target: "≤ 50 MB",
    pg: { target: "" },
  },
  { fig: 7, what: "peak RSS, supervisor", key: "supervisor_rss_mb", unit: "MB" },
];

function usage(msg: string): never {
  progress(
    `${msg}\nusage: bench.ts [--quick] [--reps N] [--only ${
      NAMES.join("|")
    }] [--json] [--db postgres://…]`,
  );
  Deno.exit(2);
}

function parseArgs(args: string[]) {
  const o = {
    quick: false,
    json: false,
    reps: 0,
    only: null as string | null,
    pg: undefined as string | undefined,
  };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--quick") o.quick = true;
    else if (a === "--json") o.json = true;
    else if (a === "--reps") {
      o.reps = Number(args[++i]);
      if (!Number.isInteger(o.reps) || o.reps < 1 || o.reps > 50) {
        usage("--reps takes an integer from 1 to 50");
      }
    } else if (a === "--only") {
      const v = args[++i] ?? "";
      o.only = /^[1-7]$/.test(v) ? NAMES[Number(v) - 1] : v;
      if (!NAMES.includes(o.only)) usage(`unknown figure "${v}"`);
    } else if (a === "--db") {
      o.pg = args[++i] ?? "";
      if (!/^postgres(ql)?:\/\//.test(o.pg)) usage("--db takes a postgres:// URL");
    } else usage(`unknown argument "${a}"`);
  }
  if (o.reps === 0) o.reps = o.quick ? 1 : 3;
  return o;
}

function fmt(v: number | undefined): string {
  if (v === undefined || Number.isNaN(v)) return "-";
  const a = Math.abs(v);
  const digits = a >= 100 || Number.isInteger(v) ? 0 : a >= 10 ? 1 : 2;
  return v.toLocaleString("en-US", {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

/** The rows to print: each SQLite row, then its PostgreSQL row when that was measured. */
function rowsOf(med: Figures): Row[] {
  const out: Row[] = [];
  for (const r of ROWS) {
    out.push(r);
    if (r.key.startsWith("pg_")) continue;
    const pgBase = r.base && `pg_${r.base[1]}` in med ? `pg_${r.base[1]}` : r.base?.[1];
    out.push({
      ...r,
      key: `pg_${r.key}`,
      base: r.base && [r.base[0], pgBase!],
      ratio: r.ratio && `pg_${r.ratio}`,
      ...r.pg,
    });
  }
  return out.filter((r) => r.key in med);
}

function table(med: Figures, reps: Figures[]): string {
  const both = Object.keys(med).some((k) => k.startsWith("pg_"));
  const head = ["#", "figure", "db", "median", "unit", "min-max", "baseline", "ratio", "target"];
  const rows = rowsOf(med).map((r) => {
    const xs = reps.map((f) => f[r.key]).filter((x) => x !== undefined);
    return [
      String(r.fig),
      r.what,
      r.key.startsWith("pg_") ? "pg" : "sqlite",
      fmt(med[r.key]),
      r.unit,
      xs.length > 1 ? `${fmt(Math.min(...xs))}-${fmt(Math.max(...xs))}` : "",
      r.base ? `${r.base[0]} ${fmt(med[r.base[1]])}` : "",
      r.ratio ? fmt(med[r.ratio]) : "",
      r.target ?? "",
    ];
  });
  // The store column only when there are two stores.
  const cols = head.map((_, i) => i).filter((i) => both || i !== 2);
  const all = [head, ...rows].map((r) => cols.map((i) => r[i]));
  const w = cols.map((_, j) => Math.max(...all.map((r) => r[j].length)));
  const right = new Set([3, 5, 7]);
  return all.map((r) =>
    r.map((c, j) => right.has(cols[j]) ? c.padStart(w[j]) : c.padEnd(w[j])).join("  ")
      .trimEnd()
  ).join("\n");
}

async function main(): Promise<number> {
  const args = parseArgs(Deno.args);
  const dir = await Deno.makeTempDir({ prefix: "queuectl-bench-" });
  onCleanup(() => Deno.removeSync(dir, { recursive: true }));
  // Supervisors of a PostgreSQL queue keep their pid files and logs under XDG_STATE_HOME.
  Deno.env.set("XDG_STATE_HOME", `${dir}/state`);
  const opts: RunOptions = { quick: args.quick, reps: args.reps, dir, pg: args.pg };
  const stop = (sig: Deno.Signal) => async () => {
    progress(`${sig}: stopping children, dropping bench schemas and removing ${dir}`);
    cleanupAll();
    await dropSchemas();
    Deno.exit(130);
  };
  Deno.addSignalListener("SIGINT", stop("SIGINT"));
  Deno.addSignalListener("SIGTERM", stop("SIGTERM"));

  const names = args.only ? [args.only] : NAMES.filter((n) => n !== "memory");
  const started = performance.now();
  const load0 = await loadavg();
  // One record per repetition, merged across figures.
  const reps: Figures[] = Array.from({ length: opts.reps }, () => ({}));
  const failed: string[] = [];
  try {
    for (const name of names) {
      try {
        const out = await FIGURES[name](opts);
        out.forEach((f, i) => Object.assign(reps[i], f));
      } catch (e) {
        failed.push(name);
        progress(`${name} failed: ${e instanceof Error ? e.stack : e}`);
      }
    }
  } finally {
    cleanupAll();
    await dropSchemas();
  }
  const keys = [...new Set(reps.flatMap((f) => Object.keys(f)))];
  const med: Figures = Object.fromEntries(
    keys.map((k) => [k, median(reps.map((f) => f[k]).filter((x) => x !== undefined))]),
  );
  const seconds = (performance.now() - started) / 1000;
  if (args.json) {
    console.log(JSON.stringify(
      { ...med, reps: opts.reps, quick: args.quick ? 1 : 0, seconds, failed: failed.length },
      null,
      2,
    ));
  } else {
    console.log(
      `queuectl bench: ${args.quick ? "quick, " : ""}median of ${opts.reps} rep(s); ` +
        `deno ${Deno.version.deno}, ${navigator.hardwareConcurrency} cores, ` +
        `load ${load0} → ${await loadavg()}, ${seconds.toFixed(0)} s`,
    );
    if (args.quick) console.log("(quick: small counts; the depth fixture is 20k, not 1M jobs)");
    console.log(table(med, reps));
  }
  if (failed.length > 0) progress(`failed: ${failed.join(", ")}`);
  return failed.length > 0 ? 1 : 0;
}

Deno.exit(await main());
