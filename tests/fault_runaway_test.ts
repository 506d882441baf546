/**
 * Fault injection, runaway jobs: a job that prints 1 GB, one that forks children and exits, one
 * that ignores SIGTERM past its timeout, and ones that read stdin. The worker survives all of
 * them, each log stays within `log-max-bytes`, no process is left behind, and each job ends in the
 * right state.
 */
import assert from "node:assert/strict";
import { isLive, listProcs, procsMentioning, statusWithin, workerProcs } from "./chaos.ts";
import {
  cliOk,
  FIXTURES,
  openDb,
  procsOfStore,
  reapStore,
  runCli,
  startWorkers,
  tempDb,
  waitFor,
} from "./helpers.ts";
import type { Attempt, Job } from "../lib/store/store.ts";

const LOG_MAX = 64 * 1024;

Deno.test("runaway: 1 GB of output, orphaned children, an ignored SIGTERM and stdin readers → the worker survives, logs stay capped, nothing is left running", async () => {
  await using t = await tempDb();
  await cliOk(t.db, ["config", "set", "log-max-bytes", "64KiB"]);
  await cliOk(t.db, ["config", "set", "kill-grace", "1s"]);
  const pids = `${t.dir}/pids.txt`;
  const trapPid = `${t.dir}/trap.pid`;
  const jobs: Record<string, Record<string, unknown>> = {
    big: { command: "head -c 1000000000 /dev/zero" },
    // Two children and a grandchild left running; the shell exits 0 at once.
    forks: {
      command: `sleep 100 & echo $! >> ${pids}; sleep 100 & echo $! >> ${pids}; ` +
        `sh ${FIXTURES}linger.sh ${pids} & ` +
        `until grep -q ' ' ${pids}; do sleep 0.01; done; exit 0`,
    },
    // `exec`: the job's own process ignores SIGTERM, so only SIGKILL after kill-grace ends it.
    trap: {
      command: `exec sh ${FIXTURES}trap_term.sh ${trapPid}`,
      timeout: 1,
      max_retries: 0,
    },
    cat: { command: "cat" },
    read: { command: 'read line || echo "end of input"' },
    after: { command: "echo still working" },
  };
  await cliOk(t.db, ["enqueue", "--file", "-"], {
    stdin: Object.entries(jobs).map(([id, spec]) => JSON.stringify({ id, ...spec })).join("\n"),
  });

  const w = startWorkers(t.db, 2);
  let workersBefore: number[] = [];
  try {
    await waitFor(async () => (await workerPids(t.db)).length === 2, { what: "2 workers" });
    workersBefore = await workerPids(t.db);
    await waitFor(
      async () => {
        const s = await openDb(t.db);
        try {
          const c = await s.counts(Date.now());
          return c.completed + c.dead === Object.keys(jobs).length;
        } finally {
          await s.close();
        }
      },
      { timeoutMs: 180_000, intervalMs: 200, what: "every job finished" },
    ).catch((e) => {
      throw new Error(`${e.message}\n${w.log()}`);
    });
    // The same two workers are still alive after all of it.
    assert.deepEqual(await workerPids(t.db), workersBefore, w.log());
  } finally {
    w.signal("SIGTERM");
    if ((await statusWithin(w.process, 20_000)) === null) w.signal("SIGKILL");
    await reapStore(t.db, 10_000);
    await w.done();
  }
  const log = w.log();
  assert.doesNotMatch(log, /worker\.died|internal error|Uncaught/, log);
  assert.equal(log.match(/worker\.started/g)?.length, 2, log);

  const rows = new Map<string, Job>();
  let trapAttempts: Attempt[] = [];
  const s = await openDb(t.db);
  try {
    for (const j of await s.listJobs({ limit: 100 })) rows.set(j.id, j);
    trapAttempts = await s.listAttempts("trap");
  } finally {
    await s.close();
  }
  const state = (id: string) => rows.get(id)!.state;
  const seconds = (id: string) => (rows.get(id)!.finishedAt! - rows.get(id)!.startedAt!) / 1000;

  // 1 GB: completed, and its log holds at most the cap: the tail, after a note.
  assert.equal(state("big"), "completed", log);
  const shown = await runCli(t.db, ["logs", "big"]);
  assert.equal(shown.code, 0, shown.stderr);
  assert.match(
    shown.stdout,
    /^\[queuectl: earlier output dropped; output is capped per attempt, keeping the tail\]\n\0+$/,
  );
  // The store keeps the tail within the cap (plus at most the piece that crosses it).
  const kept = shown.stdout.length - shown.stdout.indexOf("]\n") - 2;
  assert.ok(kept <= 2 * LOG_MAX && kept >= LOG_MAX / 2, `output of big: ${kept} bytes`);

  // Orphaned children: the job is completed at once, and none of its processes survives it.
  assert.equal(state("forks"), "completed");
  // Its children sleep 100s: well under that means the job did not wait for them (generous, so a
  // busy machine cannot fail it).
  assert.ok(seconds("forks") < 60, `forks took ${seconds("forks")}s`);
  const leftPids = (await Deno.readTextFile(pids)).split(/\s+/).filter((p) => p !== "").map(
    Number,
  );
  assert.equal(leftPids.length, 4, `pids: ${leftPids}`);
  for (const pid of leftPids) assert.ok(!(await isLive(pid)), `process ${pid} of forks still runs`);

  // Ignored SIGTERM: killed after timeout + grace, dead (no retries), outcome timeout.
  assert.equal(state("trap"), "dead");
  assert.equal(trapAttempts.length, 1);
  assert.equal(trapAttempts[0].outcome, "timeout");
  assert.match(trapAttempts[0].error ?? "", /^timed out after 1s/);
  assert.ok(seconds("trap") >= 1.9 && seconds("trap") < 60, `trap took ${seconds("trap")}s`);
  const trapped = Number((await Deno.readTextFile(trapPid)).trim());
  assert.ok(!(await isLive(trapped)), `trap_term.sh (${trapped}) still runs`);

  // Stdin readers see end-of-file at once, rather than hanging on the worker's input.
  assert.equal(state("cat"), "completed");
  assert.equal(state("read"), "completed");
  assert.equal((await runCli(t.db, ["logs", "read"])).stdout, "end of input\n");
  // Reading the worker's stdin would hang for ever; 60s tells the two apart on any machine.
  assert.ok(seconds("cat") < 60 && seconds("read") < 60);
  assert.equal(state("after"), "completed");

  // Nothing of the test is left: no worker, no job process, no sleep from the forks job.
  assert.deepEqual(await procsMentioning(t.dir), []);
  assert.deepEqual(await procsOfStore(t.db), []);
  assert.deepEqual((await listProcs()).filter((p) => leftPids.includes(p.pid)), []);
});

async function workerPids(db: string): Promise<number[]> {
  return (await workerProcs(db)).map((p) => p.pid).sort((a, b) => a - b);
}
