/**
 * Figures 3 and 4: what enqueueing costs.
 *
 * 3. One `queuectl enqueue '{…}'` call against an existing database, wall time of the process,
 *    paired with `deno run` of an empty script (same flags, same working directory), the order
 *    alternating within each pair. The ratio is median CLI ÷ median empty script of the repetition.
 * 4. 100,000 jobs from an NDJSON file in one `enqueue --file` call (CLI wall time, into a fresh
 *    database), and the same file through `parseNdjson` + `SqliteStore.enqueue` in this process.
 */
import { parseNdjson } from "../lib/spec.ts";
import { SqliteStore } from "../lib/store/sqlite.ts";
import {
  cli,
  cliCommand,
  type Figures,
  median,
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
  const db = `${dir}/queue.db`;
  const empty = `${dir}/empty.ts`;
  await Deno.writeTextFile(empty, "");
  const spec = JSON.stringify({ command: "true" });
  const runEmpty = async () => {
    const r = await timed(emptyScriptArgv(empty));
    if (r.code !== 0) throw new Error(`empty script exited ${r.code}: ${r.stderr}`);
    return r.ms;
  };
  const runCli = async () => (await cli(db, ["enqueue", spec])).ms;
  // Creates the database and warms the file cache for both.
  await runCli();
  await runEmpty();
  const reps: Figures[] = [];
  for (let rep = 1; rep <= opts.reps; rep++) {
    progress(`enqueue: ${pairs} paired calls, rep ${rep}/${opts.reps}`);
    const cliMs: number[] = [];
    const emptyMs: number[] = [];
    for (let i = 0; i < pairs; i++) {
      if (i % 2 === 0) {
        emptyMs.push(await runEmpty());
        cliMs.push(await runCli());
      } else {
        cliMs.push(await runCli());
        emptyMs.push(await runEmpty());
      }
    }
    const c = median(cliMs);
    const e = median(emptyMs);
    reps.push({ enqueue_ms: c, empty_deno_ms: e, enqueue_ratio: c / e });
  }
  await Deno.remove(dir, { recursive: true });
  return reps;
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
  for (let rep = 1; rep <= opts.reps; rep++) {
    progress(`batch: ${n} jobs from NDJSON, rep ${rep}/${opts.reps}`);
    const cliDb = `${dir}/cli-${rep}.db`;
    (SqliteStore.open(cliDb)).close();
    const { ms } = await cli(cliDb, ["enqueue", "--file", file]);

    const db = `${dir}/store-${rep}.db`;
    const store = SqliteStore.open(db);
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
    reps.push({
      batch_jobs: n,
      batch_jobs_per_s: n / (ms / 1000),
      batch_cli_ms: ms,
      batch_parse_ms: t1 - t0,
      batch_store_ms: t2 - t1,
      batch_store_jobs_per_s: n / ((t2 - t1) / 1000),
    });
  }
  await Deno.remove(dir, { recursive: true });
  return reps;
}
