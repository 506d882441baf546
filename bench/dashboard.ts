/**
 * The dashboard's speed: how long each page's API call takes with a large store, and what an open
 * dashboard costs the workers.
 *
 *   deno run --quiet --allow-read --allow-write --allow-env --allow-run --allow-sys=hostname \
 *     --allow-net=127.0.0.1 bench/dashboard.ts [--db postgres://…] [--jobs N] [--reps R] \
 *     [--keep PATH] [--drain [--drain-jobs N] [--workers C]]
 *
 * API mode (default): fills a fresh store (an SQLite file in a temp directory, or a fresh schema
 * of `--db`) with N jobs (default 1,000,000): `queuectl enqueue --file` of NDJSON in batches of
 * 100,000 (pending jobs), and after each batch 20% more imported through the Store's
 * `importJobs` in other states (completed, dead, failed, cancelled, each with one attempt), so
 * every state is spread over the whole enqueue order. Then it serves the dashboard in this process
 * and times each API call the pages make (the median of R calls, after one warm-up call) and
 * prints a table. `--keep PATH` keeps (or reuses, when it holds the jobs already) the SQLite file.
 *
 * Drain mode (`--drain`): C workers drain N `true` jobs (default 3,000, 4 workers) with and
 * without a dashboard open in another process with a live server-sent-events client attached,
 * alternating, R times each; prints the medians and their ratio.
 *
 * Measures only; never changes anything outside its own temp directory or schema.
 */
import { parseArgs } from "node:util";
import postgres from "postgres";
import { cliCommand, cliOk } from "../tests/helpers.ts";
import { openStore } from "../lib/store/open.ts";
import type { JobRecord, Store } from "../lib/store/store.ts";
import type { JobState } from "../lib/job.ts";
import { startDashboard } from "../lib/dashboard/server.ts";
import { CLK_TCK, cpuTicks, loadavg } from "./common.ts";

const args = parseArgs({
  args: Deno.args,
  options: {
    db: { type: "string" },
    jobs: { type: "string" },
    reps: { type: "string" },
    keep: { type: "string" },
    drain: { type: "boolean", default: false },
    workers: { type: "string", default: "4" },
  },
});
const DRAIN = args.values.drain;
const N = Number(args.values.jobs ?? (DRAIN ? 3000 : 1_000_000));
const REPS = Number(args.values.reps ?? (DRAIN ? 3 : 9));
const WORKERS = Number(args.values.workers);
const PG = args.values.db;
if (PG !== undefined && !PG.startsWith("postgres")) {
  console.error("--db takes a postgres:// URL (SQLite files are made in a temp directory)");
  Deno.exit(2);
}
if (!(N > 0) || !(REPS > 0) || !(WORKERS > 0)) {
  console.error("--jobs, --reps and --workers take positive integers");
  Deno.exit(2);
}

const BATCH = 100_000;
const say = (m: string) => Deno.stderr.writeSync(new TextEncoder().encode(`bench: ${m}\n`));
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

const run = (db: string, argv: string[], stdin?: string) => cliOk(db, argv, { stdin });

/** A fresh schema in the `--db` database; dropped by the returned function. */
function freshSchema(base: string): { url: string; drop: () => Promise<void> } {
  const name = `bench_dash_${crypto.randomUUID().replaceAll("-", "").slice(0, 10)}`;
  const u = new URL(base);
  u.searchParams.set("schema", name);
  return {
    url: u.toString(),
    async drop() {
      const clean = new URL(base);
      clean.searchParams.delete("schema");
      const sql = postgres(clean.toString(), { max: 1, onnotice: () => {} });
      try {
        await sql.unsafe(`DROP SCHEMA IF EXISTS ${name} CASCADE`);
      } finally {
        await sql.end({ timeout: 1 });
      }
    },
  };
}

/** Imported jobs in finished states, `n` of them, for batch `b`. */
function mixed(b: number, n: number, now: number): JobRecord[] {
  const states: Array<[JobState, number]> = [
    ["completed", 0.7],
    ["dead", 0.1],
    ["failed", 0.1],
    ["cancelled", 0.1],
  ];
  const out: JobRecord[] = [];
  let i = 0;
  for (const [state, share] of states) {
    for (let k = 0; k < n * share; k++, i++) {
      const id = `m${b}-${i}`;
      const t = now - 3600_000 + i;
      const outcome = state === "completed" ? "completed" as const : "exited" as const;
      out.push({
        job: {
          seq: 0,
          id,
          command: `echo mixed ${b}-${i}`,
          state,
          attempts: state === "cancelled" ? 0 : 1,
          retryBase: 0,
          maxRetries: state === "failed" ? 3 : 0,
          priority: 0,
          runAt: state === "failed" ? now + 3600_000 : t - 10,
          timeoutMs: 0,
          cwd: "/tmp",
          env: null,
          createdAt: t - 10,
          updatedAt: t,
          startedAt: state === "cancelled" ? null : t - 5,
          finishedAt: t,
          exitCode: outcome === "completed" ? 0 : 3,
          error: outcome === "completed" ? null : `exited 3: boom ${b}-${i}`,
          workerId: state === "cancelled" ? null : "bench-worker",
          outputKey: null,
        },
        attempts: state === "cancelled" ? [] : [{
          jobId: id,
          attempt: 1,
          workerId: "bench-worker",
          startedAt: t - 5,
          finishedAt: t,
          outcome,
          exitCode: outcome === "completed" ? 0 : 3,
          signal: null,
          error: outcome === "completed" ? null : `exited 3: boom ${b}-${i}`,
          outputKey: null,
          note: null,
        }],
        retries: [],
        output: [],
      });
    }
  }
  return out;
}

/** Fills `db` with `n` jobs (see the module doc), unless it holds them already. */
async function fill(db: string, n: number) {
  let store = await openStore(db);
  const have = await store.countJobs();
  await store.close();
  if (have >= n) return say(`${db} holds ${have} jobs already`);
  const t0 = performance.now();
  const batches = Math.ceil(n / (BATCH * 1.2));
  let made = 0;
  for (let b = 0; made < n; b++) {
    const pending = Math.min(BATCH, n - made);
    const lines: string[] = [];
    for (let i = 0; i < pending; i++) {
      // One job in the middle of the queue holds a rare word for the search.
      const needle = b === Math.floor(batches / 2) && i === Math.floor(pending / 2);
      lines.push(
        `{"id":"j${b}-${i}","command":"echo ${needle ? "needle-in-haystack" : "hay"} ${b}-${i}"}`,
      );
    }
    const file = await Deno.makeTempFile({ suffix: ".ndjson" });
    await Deno.writeTextFile(file, lines.join("\n") + "\n");
    await run(db, ["enqueue", "--file", file]);
    await Deno.remove(file);
    made += pending;
    const extra = Math.min(Math.round(pending * 0.2), n - made);
    if (extra > 0) {
      store = await openStore(db);
      const now = await store.now();
      const recs = mixed(b, extra, now);
      for (let i = 0; i < recs.length; i += 10_000) {
        await store.importJobs(recs.slice(i, i + 10_000));
      }
      await store.close();
      made += recs.length;
    }
    say(`filled ${made}/${n} (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
  }
}

async function timeCall(url: string, token: string, init?: RequestInit): Promise<number[]> {
  const once = async () => {
    const t = performance.now();
    const r = await fetch(url, {
      ...init,
      headers: { authorization: `Bearer ${token}`, ...(init?.headers ?? {}) },
    });
    await r.arrayBuffer();
    if (!r.ok) throw new Error(`${url} answered ${r.status}`);
    return performance.now() - t;
  };
  const ms: number[] = [await once()];
  for (let i = 0; i < REPS; i++) ms.push(await once());
  return ms;
}

async function apiBench(db: string, label: string) {
  const store: Store = await openStore(db);
  const token = "bench-token";
  const stop = new AbortController();
  const d = await startDashboard({
    store,
    hostname: "127.0.0.1",
    port: 0,
    readOnly: false,
    metricsPublic: false,
    token,
    signal: stop.signal,
  });
  try {
    const total = await store.countJobs();
    const counts = await store.counts(await store.now());
    // Seqs near the oldest end, for deep pages.
    const oldest = await store.listJobs({ limit: 1, offset: 1000 });
    const oldDead = await store.listJobs({ state: "dead", limit: 1, offset: 100 });
    const needle = (await store.pageJobs({ search: "needle-in", limit: 1 }))[0];
    const spans: string[] = [];
    const rows: Array<[string, string]> = [
      ["overview", "/api/overview"],
      ["jobs, first page", "/api/jobs"],
      ["jobs, deep page", `/api/jobs?before=${oldest[0].seq}`],
      ["jobs, oldest first", "/api/jobs?sort=oldest"],
      ["jobs, oldest first, deep", `/api/jobs?sort=oldest&after=${total - 1000}`],
      ["jobs, pending", "/api/jobs?state=pending"],
      ["jobs, completed, deep", `/api/jobs?state=completed&before=${oldest[0].seq}`],
      ["search, one match (first call)", "/api/jobs?q=needle-in"],
      ["search, many matches", "/api/jobs?q=hay"],
      ["search, dead, no match (first call)", "/api/jobs?state=dead&q=nothing-like-it"],
      ["job detail", `/api/jobs/${encodeURIComponent(needle.id)}`],
      ["dlq page (jobs)", "/api/jobs?state=dead"],
      ["dlq, deep page", `/api/jobs?state=dead&before=${oldDead[0].seq}`],
      ["bulk count, dead", "/api/jobs/count?action=retry&state=dead"],
      ["bulk count, search (first call)", "/api/jobs/count?action=retry&q=needle-in"],
      ["metrics", "/metrics"],
    ];
    // What the page waits for in all when a search or a count goes through every span.
    for (
      const [name, path, key] of [
        ["search, one match, every span", "/api/jobs?q=needle-in", "before"],
        ["bulk count, search, every span", "/api/jobs/count?action=retry&q=needle-in", "below"],
      ]
    ) {
      const walks: number[] = [];
      let calls = 0;
      for (let i = 0; i < Math.min(REPS, 5); i++) {
        const t = performance.now();
        calls = 0;
        let next: number | null = null;
        do {
          const r: Response = await fetch(
            d.origin + path + (next === null ? "" : `&${key}=${next}`),
            {
              headers: { authorization: `Bearer ${token}` },
            },
          );
          next = (await r.json()).next;
          calls++;
        } while (next !== null && !path.includes("?q=hay"));
        walks.push(performance.now() - t);
      }
      spans.push(
        `| ${name} (${calls} calls) | ${median(walks).toFixed(1)} | ${
          Math.max(...walks).toFixed(1)
        } |`,
      );
    }
    console.log(`\n${label}: ${total} jobs ${JSON.stringify(counts)}; median of ${REPS} calls`);
    console.log("| call | median ms | max ms | first call ms |");
    console.log("|---|---|---|---|");
    for (const [name, path] of rows) {
      let ms: number[];
      try {
        ms = await timeCall(d.origin + path, token);
      } catch (e) {
        console.log(`| ${name} | ${(e as Error).message} | | |`);
        continue;
      }
      const med = median(ms.slice(1));
      console.log(
        `| ${name} | ${med.toFixed(1)}${med > 100 ? " (over 100)" : ""} | ${
          Math.max(...ms.slice(1)).toFixed(1)
        } | ${ms[0].toFixed(1)} |`,
      );
    }
    for (const line of spans) console.log(line);
  } finally {
    stop.abort();
    await d.finished;
    await store.close();
  }
}

// ---- drain with and without an open dashboard ----

/** A `queuectl dashboard` process with an SSE client reading its live updates. */
async function openDashboard(db: string) {
  const cmd = cliCommand().map((a) => a.startsWith("--allow-net") ? "--allow-net=127.0.0.1" : a);
  const child = new Deno.Command(cmd[0], {
    args: [...cmd.slice(1), "dashboard", "--port", "0"],
    env: { QUEUECTL_DB: db, NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  let m: RegExpMatchArray | null = null;
  while (!(m = text.match(/(http:\/\/\S+)\/\?token=(\S+)/))) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`the dashboard exited: ${text}`);
    text += value;
  }
  reader.releaseLock();
  child.stdout.cancel().catch(() => {});
  const [, origin, token] = m;
  const abort = new AbortController();
  const res = await fetch(`${origin}/api/events`, {
    headers: { authorization: `Bearer ${token}` },
    signal: abort.signal,
  });
  let events = 0;
  const pump = (async () => {
    try {
      for await (const c of res.body!.pipeThrough(new TextDecoderStream())) {
        events += c.split("event: overview").length - 1;
      }
    } catch { /* aborted */ }
  })();
  return {
    events: () => events,
    /** CPU seconds the dashboard process used so far. */
    cpuSeconds: async () => {
      const t = (await cpuTicks([child.pid])).get(child.pid);
      return t ? t.own / CLK_TCK : NaN;
    },
    async close() {
      abort.abort();
      await pump;
      child.kill("SIGTERM");
      await child.status;
    },
  };
}

async function drainOnce(dir: string, withDashboard: boolean, pg?: string) {
  let db = `${dir}/drain-${crypto.randomUUID().slice(0, 8)}.db`;
  let drop = async () => {};
  if (pg) ({ url: db, drop } = freshSchema(pg));
  try {
    await run(db, ["enqueue", "--file", "-"], '{"command":"true"}\n'.repeat(N));
    const dash = withDashboard ? await openDashboard(db) : null;
    const store = await openStore(db);
    try {
      const cmd = cliCommand();
      const cpu0 = dash ? await dash.cpuSeconds() : 0;
      const t0 = Date.now();
      const sup = new Deno.Command(cmd[0], {
        args: [...cmd.slice(1), "worker", "start", "--count", String(WORKERS)],
        env: { QUEUECTL_DB: db, NO_COLOR: "1", QUEUECTL_LOG: "warn" },
        stdin: "null",
        stdout: "null",
        stderr: "null",
      }).spawn();
      try {
        const deadline = Date.now() + 600_000;
        for (;;) {
          await new Promise((r) => setTimeout(r, 100));
          const c = await store.counts(await store.now());
          if (c.completed === N) break;
          if (c.dead + c.failed > 0) throw new Error(`jobs failed: ${JSON.stringify(c)}`);
          if (Date.now() > deadline) throw new Error(`drain stalled: ${JSON.stringify(c)}`);
        }
      } finally {
        sup.kill("SIGTERM");
        await sup.status;
      }
      // Jobs are claimed in enqueue order: the last to finish is among the newest few.
      const newest = await store.pageJobs({ limit: 100 });
      const last = Math.max(...newest.map((j) => j.finishedAt ?? 0));
      const seconds = (last - t0) / 1000;
      const cpu = dash ? await dash.cpuSeconds() - cpu0 : 0;
      return { rate: N / seconds, events: dash?.events() ?? 0, cpuShare: cpu / seconds };
    } finally {
      await store.close();
      await dash?.close();
    }
  } finally {
    await drop();
    await Deno.remove(db).catch(() => {});
    for (const s of ["-wal", "-shm"]) await Deno.remove(db + s).catch(() => {});
    await Deno.remove(`${db}-run`, { recursive: true }).catch(() => {});
  }
}

async function drainBench(pg?: string) {
  const dir = await Deno.makeTempDir({ prefix: "queuectl-bench-dash-" });
  try {
    const plain: number[] = [];
    const open: number[] = [];
    const events: number[] = [];
    const cpuShares: number[] = [];
    for (let rep = 1; rep <= REPS; rep++) {
      // Alternate which goes first, so a trend in the machine's load hits both alike.
      for (const withDash of rep % 2 ? [false, true] : [true, false]) {
        say(
          `drain ${N} jobs, ${WORKERS} workers, ${withDash ? "with" : "without"} dashboard, ` +
            `rep ${rep}/${REPS}`,
        );
        const r = await drainOnce(dir, withDash, pg);
        (withDash ? open : plain).push(r.rate);
        if (withDash) events.push(r.events), cpuShares.push(r.cpuShare);
      }
    }
    const a = median(plain);
    const b = median(open);
    console.log(
      `\ndrain of ${N} \`true\` jobs, ${WORKERS} workers, ${pg ? "PostgreSQL" : "SQLite"}`,
    );
    console.log("| | jobs/s (median) | runs |");
    console.log("|---|---|---|");
    console.log(
      `| no dashboard | ${a.toFixed(0)} | ${plain.map((x) => x.toFixed(0)).join(", ")} |`,
    );
    console.log(
      `| dashboard + SSE client | ${b.toFixed(0)} | ${open.map((x) => x.toFixed(0)).join(", ")} |`,
    );
    console.log(
      `slower with the dashboard: ${((1 - b / a) * 100).toFixed(1)}% ` +
        `(SSE updates received per run: ${events.join(", ")})`,
    );
    console.log(
      `dashboard process CPU, share of one core over the drain: ` +
        `${(median(cpuShares) * 100).toFixed(1)}% (runs: ${
          cpuShares.map((x) => (x * 100).toFixed(1)).join(", ")
        }); load average at the end: ${await loadavg()}`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

if (DRAIN) {
  await drainBench(PG);
} else if (PG) {
  const { url, drop } = freshSchema(PG);
  try {
    await fill(url, N);
    await apiBench(url, "PostgreSQL");
  } finally {
    await drop();
  }
} else {
  const keep = args.values.keep;
  const dir = keep ? null : await Deno.makeTempDir({ prefix: "queuectl-bench-dash-" });
  const db = keep ?? `${dir}/queue.db`;
  try {
    await fill(db, N);
    await apiBench(db, "SQLite");
  } finally {
    if (dir) await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}
