/**
 * Figures 3 and 4: what enqueueing costs.
 *
 * 3. One `queuectl enqueue '{…}'` call against an existing database, wall time of the process,
 *    paired with `deno run` of an empty script (same flags, same working directory), the order
 *    alternating within each pair. The ratio is median CLI ÷ median empty script of the repetition.
 * 4. 100,000 jobs from an NDJSON file in one `enqueue --file` call (CLI wall time, into a fresh
 *    database), and the same file through `parseNdjson` + `SqliteStore.enqueue` in this process.
 *
 * With `--db postgres://…` each figure also runs on a fresh PostgreSQL schema (created before the
 * timing starts), keys `pg_…`: in 3 the PostgreSQL call joins each pair (the three in rotating
 * order), against the same empty script; in 4 the same file goes into a schema of its own per
 * repetition, by the CLI and in-process.
 */
import { parseNdjson } from "../lib/spec.ts";
import { openStore } from "../lib/store/open.ts";
import {
  cli,
  cliCommand,
  type Figures,
  median,
  pgSchema,
  progress,
  type RunOptions,
  timed,
} from "./common.ts";

/** `deno run` of an empty file, with the flags the CLI gets. */
function emptyScriptArgv(path: string): string[] {
  const argv = cliCommand();
  return argv[0] === Deno.execPath() ? [...argv.slice(0, -1), path] : [
    Deno.execPath(),
    "run",
    "--quiet",
    path,
  ];
}

export async function enqueueCall(opts: RunOptions): Promise<Figures[]> {
  const pairs = opts.quick ? 5 : 20;
  const dir = `${opts.dir}/enqueue`;
  await Deno.mkdir(dir, { recursive: true });
  const empty = `${dir}/empty.ts`;
  await Deno.writeTextFile(empty, "");
  const spec = JSON.stringify({ command: "true" });
  const schema = opts.pg ? pgSchema(opts.pg) : null;
  try {
    const runEmpty = async () => {
      const r = await timed(emptyScriptArgv(empty));
      if (r.code !== 0) throw new Error(`empty script exited ${r.code}: ${r.stderr}`);
      return r.ms;
    };
    const dbs = { "": `${dir}/queue.db`, ...(schema ? { pg_: schema.url } : {}) };
    const ms: Record<string, number[]> = { empty: [] };
    const calls: [string, () => Promise<number>][] = [["empty", runEmpty]];
    for (const [tag, db] of Object.entries(dbs)) {
      calls.push([tag, async () => (await cli(db, ["enqueue", spec])).ms]);
    }
    // Creates the databases and warms the file cache.
    for (const [, call] of calls) await call();
    const reps: Figures[] = [];
    for (let rep = 1; rep <= opts.reps; rep++) {
      progress(`enqueue: ${pairs} paired calls, rep ${rep}/${opts.reps}`);
      for (const k of ["empty", ...Object.keys(dbs)]) ms[k] = [];
      for (let i = 0; i < pairs; i++) {
        for (let j = 0; j < calls.length; j++) {
          const [k, call] = calls[(i + j) % calls.length];
          ms[k].push(await call());
        }
      }
      const e = median(ms.empty);
      const f: Figures = { empty_deno_ms: e };
      for (const tag of Object.keys(dbs)) {
        f[`${tag}enqueue_ms`] = median(ms[tag]);
        f[`${tag}enqueue_ratio`] = median(ms[tag]) / e;
      }
      reps.push(f);
    }
    return reps;
  } finally {
    await schema?.drop();
    await Deno.remove(dir, { recursive: true });
  }
}

export async function batch(opts: RunOptions): Promise<Figures[]> {
  const n = opts.quick ? 5_000 : 100_000;
  const dir = `${opts.dir}/batch`;
  await Deno.mkdir(dir, { recursive: true });
  const file = `${dir}/jobs.ndjson`;
  const lines: string[] = [];
  for (let i = 0; i < n; i++) lines.push(JSON.stringify({ command: `echo ${i}`, priority: i % 3 }));
  const text = lines.join("\n") + "\n";
  await Deno.writeTextFile(file, text);
  const reps: Figures[] = [];
  try {
    for (let rep = 1; rep <= opts.reps; rep++) {
      progress(`batch: ${n} jobs from NDJSON, rep ${rep}/${opts.reps}`);
      const f: Figures = { batch_jobs: n };
      for (const tag of opts.pg ? ["", "pg_"] : [""]) {
        const schemas = tag ? [pgSchema(opts.pg!), pgSchema(opts.pg!)] : [];
        try {
          const [cliDb, db] = tag
            ? schemas.map((s) => s.url)
            : [`${dir}/cli-${rep}.db`, `${dir}/store-${rep}.db`];
          await (await openStore(cliDb)).close();
          const { ms } = await cli(cliDb, ["enqueue", "--file", file]);

          const store = await openStore(db);
          const t0 = performance.now();
          const jobs = parseNdjson(text, {
            config: { maxRetries: 3, jobTimeoutMs: 0 },
            cwd: dir,
            now: Date.now(),
          }, file);
          const t1 = performance.now();
          await store.enqueue(jobs, Date.now());
          const t2 = performance.now();
          await store.close();
          Object.assign(f, {
            [`${tag}batch_jobs_per_s`]: n / (ms / 1000),
            [`${tag}batch_cli_ms`]: ms,
            [`${tag}batch_parse_ms`]: t1 - t0,
            [`${tag}batch_store_ms`]: t2 - t1,
            [`${tag}batch_store_jobs_per_s`]: n / ((t2 - t1) / 1000),
          });
        } finally {
          for (const s of schemas) await s.drop();
        }
      }
      reps.push(f);
    }
    return reps;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
