/**
 * A child of figure 2: opens the database as a worker does (`durable: false`), says `ready` on
 * stdout, waits for EOF on stdin (the start signal), then claims and completes jobs through the
 * real store code until none is left, and prints one JSON line: jobs done, wall ms, CPU µs, and
 * how many calls gave up on the write lock ("database is locked" after the busy timeout); those
 * are retried, as a worker retries them.
 *
 * Modes: `separate` is `claimNext` + `finishAttempt` (two commits per job); `combined` is the busy
 * worker's path with one slot, `finishAndClaim` (one commit per job); `batch` is a worker with
 * `--concurrency 16` whose jobs all end together: `finishAndClaim` of 16 results and 16 claims
 * (one commit per 16 jobs).
 *
 * Usage: deno run … bench/cycles_child.ts DB_PATH separate|combined|batch
 */
import { cpuUsage } from "node:process";
import { StoreError } from "../lib/errors.ts";
import { transition } from "../lib/job.ts";
import { openStore } from "../lib/store/open.ts";
import type { Job } from "../lib/store/store.ts";

const [db, mode] = Deno.args;
const store = await openStore(db, { durable: false });
const workerId = `bench:${Deno.pid}`;
/** Jobs per commit in `batch` mode. */
const BATCH = 16;
const done = { outcome: "completed", exitCode: 0, signal: null, error: null } as const;

Deno.stdout.writeSync(new TextEncoder().encode("ready\n"));
for await (const _ of Deno.stdin.readable) { /* the parent closes stdin to start */ }

let busy = 0;
/** Runs a store call again when it gave up waiting for the write lock (nothing was written). */
async function retry<T>(call: () => Promise<T>): Promise<T> {
  for (;;) {
    try {
      return await call();
    } catch (e) {
      if (!(e instanceof StoreError && e.kind === "busy")) throw e;
      busy++;
    }
  }
}

const cpu0 = cpuUsage();
const t0 = performance.now();
let jobs = 0;
const slots = mode === "batch" ? BATCH : 1;
let held: Job[] = await retry(() => store.claimNext(workerId, Date.now(), slots));
while (held.length > 0) {
  const now = Date.now();
  const ends = held.map((job) => ({
    jobId: job.id,
    next: transition(job, { type: "succeed" }, now),
    result: done,
  }));
  let saved: (Job | null)[];
  if (mode === "separate") {
    const [end] = ends;
    saved = [await retry(() => store.finishAttempt(end.jobId, workerId, end.next, done, now))];
    held = await retry(() => store.claimNext(workerId, Date.now()));
  } else {
    ({ finished: saved, claimed: held } = await retry(() =>
      store.finishAndClaim(workerId, ends, slots, now)
    ));
  }
  if (saved.some((j) => j === null)) throw new Error(`a job was not ours when it finished`);
  jobs += saved.length;
}
const ms = performance.now() - t0;
const cpu = cpuUsage(cpu0);
await store.close();
console.log(JSON.stringify({ jobs, ms, cpuUs: cpu.user + cpu.system, busy }));
