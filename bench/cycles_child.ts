/**
 * A child of figure 2: opens the database as a worker does (`durable: false`), says `ready` on
 * stdout, waits for EOF on stdin (the start signal), then claims and completes jobs through the
 * real store code until none is left, and prints one JSON line: jobs done, wall ms, CPU µs, and
 * how many calls gave up on the write lock ("database is locked" after the busy timeout); those
 * are retried, as a worker retries them.
 *
 * Modes: `separate` is `claimNext` + `finishAttempt` (two commits per job); `combined` is the busy
 * worker's path, `finishAndClaim` (one commit per job).
 *
 * Usage: deno run … bench/cycles_child.ts DB_PATH separate|combined
 */
import { cpuUsage } from "node:process";
import { StoreError } from "../lib/errors.ts";
import { transition } from "../lib/job.ts";
import { openStore } from "../lib/store/open.ts";
import type { Job } from "../lib/store/store.ts";

const [db, mode] = Deno.args;
const store = await openStore(db, { durable: false });
const workerId = `bench:${Deno.pid}`;
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
let [job = null]: (Job | null)[] = await retry(() => store.claimNext(workerId, Date.now()));
while (job) {
  const now = Date.now();
  const next = transition(job, { type: "succeed" }, now);
  let saved: Job | null;
  if (mode === "combined") {
    const id = job.id;
    ({ finished: saved, claimed: job } = await retry(() =>
      store.finishAndClaim(id, workerId, next, done, now)
    ));
  } else {
    const id = job.id;
    saved = await retry(() => store.finishAttempt(id, workerId, next, done, now));
    [job = null] = await retry(() => store.claimNext(workerId, Date.now()));
  }
  if (!saved) throw new Error(`a job was not ours when it finished`);
  jobs++;
}
const ms = performance.now() - t0;
const cpu = cpuUsage(cpu0);
await store.close();
console.log(JSON.stringify({ jobs, ms, cpuUs: cpu.user + cpu.system, busy }));
