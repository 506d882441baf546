/**
 * A run's output and processes belong to that run alone: output never crosses to another job or
 * attempt (whatever happens to the files around it), nothing a job starts outlives it or holds its
 * worker, a worker that learns it lost its job stops the job's processes, and a worker whose
 * database file (or PostgreSQL schema) disappears stops. Real workers, real shell jobs, real signals.
 */
import assert from "node:assert/strict";
import { runJob } from "../workers/executor.ts";
import { statusWithin } from "./chaos.ts";
import { OutputBuffer } from "../workers/output_buffer.ts";
import {
  allDone,
  cliOk,
  dropStore,
  openDb,
  reapStore,
  runCli,
  startWorkers,
  tempDb,
  waitFor,
  type Workers,
} from "./helpers.ts";

/** Pids of processes whose command line holds `marker`. */
async function processesWith(marker: string): Promise<string[]> {
  const out = await new Deno.Command("pgrep", { args: ["-f", marker], stdout: "piped" }).output();
  return new TextDecoder().decode(out.stdout).split("\n").filter((l) => l.trim() !== "");
}

/** Digits that make a `sleep` argument unique (a valid fraction) and easy to find with pgrep. */
function marker(): string {
  return String(crypto.getRandomValues(new Uint32Array(1))[0]).padStart(10, "0");
}

async function stopWorkers(w: Workers) {
  w.signal("SIGTERM");
  const status = await w.done();
  assert.equal(status.code, 0, w.log());
}

async function jobJson(db: string, id: string) {
  return JSON.parse(await cliOk(db, ["show", id, "--json"]));
}

Deno.test("[logs] a job of a recreated database never shows an earlier job's output", async () => {
  await using t = await tempDb();
  await cliOk(t.db, ["enqueue", '{"id":"job1","command":"echo old output"}']);
  let w = startWorkers(t.db, 1);
  await waitFor(async () => (await jobJson(t.db, "job1")).state === "completed", {
    what: "job1 completed",
  });
  await stopWorkers(w);
  assert.equal(await cliOk(t.db, ["logs", "job1"]), "old output\n");

  // Reset the queue the way the seed READMEs do: delete the database file (or drop the schema).
  await dropStore(t.db);
  await cliOk(t.db, ["enqueue", '{"id":"job1","command":"echo new output"}']);
  w = startWorkers(t.db, 1);
  await waitFor(async () => (await jobJson(t.db, "job1")).state === "completed", {
    what: "the new job1 completed",
  });
  await stopWorkers(w);
  assert.equal(await cliOk(t.db, ["logs", "job1"]), "new output\n");
});

Deno.test("[worker] nothing a job starts outlives it or holds its worker, however it detaches", async () => {
  await using t = await tempDb();
  const m = marker();
  const specs = [
    // A timeout ends the job at once although an escaped child holds its output pipes.
    { id: "timeout", command: `setsid sleep 25.${m}1 & sleep 100.${m}2`, timeout: 1 },
    // The shell ends; a detached child still holds the pipes.
    { id: "holds-pipes", command: `setsid sleep 20.${m}3 & sleep 0.3; exit 0` },
    // Detached, pipes closed, environment wiped: it must still not survive the job.
    {
      id: "hides",
      command: `env -i setsid sleep 321.${m}4 >/dev/null 2>&1 & sleep 0.3; echo done`,
    },
    // A double fork leaves no trace in the job's process tree.
    { id: "double-fork", command: `(setsid sleep 77.${m}5 &) ; sleep 0.3; echo done` },
  ];
  await cliOk(t.db, ["enqueue", "--file", "-"], {
    stdin: specs.map((s) => JSON.stringify({ ...s, max_retries: 0 })).join("\n"),
  });
  const w = startWorkers(t.db, 1);
  try {
    await waitFor(async () => {
      const jobs = JSON.parse(await cliOk(t.db, ["list", "--json"]));
      return jobs.every((j: { state: string }) => j.state === "completed" || j.state === "dead");
    }, { timeoutMs: 60_000, what: "every job finished" });
  } finally {
    await stopWorkers(w);
  }
  const states = Object.fromEntries(
    await Promise.all(specs.map(async (s) => [s.id, (await jobJson(t.db, s.id)).state])),
  );
  assert.deepEqual(states, {
    "timeout": "dead",
    "holds-pipes": "completed",
    "hides": "completed",
    "double-fork": "completed",
  });
  const s = await openDb(t.db);
  try {
    const [timedOut] = await s.listAttempts("timeout");
    assert.equal(timedOut.outcome, "timeout");
    // 1 s plus the kill grace (5 s) at most; an escaped child used to hold it for 25 s.
    assert.ok(timedOut.finishedAt - timedOut.startedAt < 15_000, JSON.stringify(timedOut));
    const [held] = await s.listAttempts("holds-pipes");
    assert.ok(held.finishedAt - held.startedAt < 15_000, JSON.stringify(held));
  } finally {
    await s.close();
  }
  assert.deepEqual(await processesWith(m), [], "a process of a job outlived it");
});

Deno.test("[worker] a worker that learns it lost its job stops it; each attempt's output stays apart", async () => {
  await using t = await tempDb();
  const m = marker();
  await cliOk(t.db, ["config", "set", "lease-timeout", "2s"]);
  await cliOk(t.db, ["config", "set", "backoff-base", "1"]);
  const command = `echo start-$QUEUECTL_ATTEMPT; ` +
    `if [ "$QUEUECTL_ATTEMPT" = 1 ]; then exec sleep 60.${m}; fi; echo second`;
  await cliOk(t.db, ["enqueue", JSON.stringify({ id: "j", command })]);
  const w = startWorkers(t.db, 2);
  let frozen = 0;
  try {
    await waitFor(async () => (await processesWith(m)).length > 0, { what: "attempt 1 running" });
    const workers = JSON.parse(await cliOk(t.db, ["worker", "list", "--json"]));
    const holder = workers.find((x: { current_job: string | null }) => x.current_job === "j");
    assert.ok(holder, JSON.stringify(workers));
    frozen = holder.pid;
    Deno.kill(frozen, "SIGSTOP");
    // The other worker rescues the job after the lease and runs attempt 2 to its end.
    await waitFor(async () => (await jobJson(t.db, "j")).state === "completed", {
      timeoutMs: 30_000,
      what: "attempt 2 completed by the other worker",
    });
    assert.equal((await processesWith(m)).length, 1, "the stale attempt still runs, frozen");
    Deno.kill(frozen, "SIGCONT");
    frozen = 0;
    await waitFor(async () => (await processesWith(m)).length === 0, {
      timeoutMs: 15_000,
      what: "the stale attempt's process killed by its own worker",
    });
  } finally {
    if (frozen) Deno.kill(frozen, "SIGCONT");
    await stopWorkers(w);
  }
  assert.match(w.log(), /job\.no_longer_ours/);
  assert.equal(await cliOk(t.db, ["logs", "j", "--attempt", "1"]), "start-1\n");
  assert.equal(await cliOk(t.db, ["logs", "j", "--attempt", "2"]), "start-2\nsecond\n");
  const job = await jobJson(t.db, "j");
  assert.equal(job.state, "completed");
  assert.equal(job.attempts, 2);
});

Deno.test("[executor] a job that prints without end keeps only the tail in memory; it completes", async () => {
  const output = new OutputBuffer(64 * 1024);
  const result = await runJob({
    // 10 MB of output, then a clean exit.
    command: "head -c 10000000 /dev/zero | tr '\\0' x; echo; echo fine",
    cwd: "/",
    env: null,
    timeoutMs: 0,
    killGraceMs: 1000,
    output,
    interrupt: new AbortController().signal,
  });
  assert.equal(result.outcome, "completed", JSON.stringify(result));
  assert.equal(output.total, 10_000_006);
  const tail = output.take()!;
  assert.equal(tail.data.length, 64 * 1024);
  assert.equal(tail.offset, 10_000_006 - 64 * 1024);
  assert.match(new TextDecoder().decode(tail.data.subarray(-10)), /x\nfine\n$/);
});

Deno.test("[worker] workers whose database file is deleted (schema dropped) stop with one clear line", async () => {
  await using t = await tempDb();
  await cliOk(t.db, ["enqueue", "--", "true"]);
  const w = startWorkers(t.db, 2, { QUEUECTL_LEASE_TIMEOUT: "2s" });
  await waitFor(() => (w.log().match(/worker\.started/g)?.length ?? 0) === 2, {
    what: "both workers started",
  });
  await dropStore(t.db);
  // Bounded: workers that miss it would run for ever.
  const stopped = await statusWithin(w.process, 60_000);
  if (!stopped) {
    w.signal("SIGKILL");
    // Workers that outlive their supervisor hold its pipes: end them first.
    await reapStore(t.db, 10_000);
  }
  const status = await w.done();
  assert.ok(stopped, `the workers still ran 60s after their store was deleted\n${w.log()}`);
  assert.equal(status.code, 1, w.log());
  assert.match(w.log(), /worker\.store_replaced .*(was deleted|was dropped or recreated)/);
  assert.match(w.log(), /supervisor\.store_replaced/);
  assert.doesNotMatch(w.log(), /worker\.died/, "no worker is restarted on a deleted file");
});

Deno.test("[logs] --follow reads every line while the store trims to the cap, none torn", async () => {
  await using t = await tempDb();
  await cliOk(t.db, ["config", "set", "log-max-bytes", "4KiB"]);
  // ~7.5 KB in ~3 s: each second's piece fits the cap, the whole does not.
  const command = 'i=0; while [ $i -lt 300 ]; do echo "line $i of the chatty job"; ' +
    "i=$((i+1)); sleep 0.01; done";
  await cliOk(t.db, ["enqueue", JSON.stringify({ id: "chatty", command })]);
  const follow = runCli(t.db, ["logs", "chatty", "--follow"]);
  const w = startWorkers(t.db, 1);
  const r = await follow;
  await stopWorkers(w);
  assert.equal(r.code, 0, r.stderr);
  let last = -1;
  let gapNoted = false;
  for (const line of r.stdout.trimEnd().split("\n")) {
    if (line.startsWith("[queuectl: output dropped")) {
      gapNoted = true;
      continue;
    }
    const n = Number(/^line (\d+) of the chatty job$/.exec(line)?.[1] ?? NaN);
    // Right after a noted gap (a busy machine can delay a flush past the cap) a line may start
    // in its middle; anywhere else a line is whole and the next of the one before.
    if (gapNoted && !Number.isInteger(n)) continue;
    assert.ok(Number.isInteger(n), `a torn or foreign line: ${JSON.stringify(line)}`);
    assert.ok(n === last + 1 || (gapNoted && n > last), `line ${n} after ${last}`);
    gapNoted = false;
    last = n;
  }
  assert.equal(last, 299);
  // The stored output keeps the tail within the cap (plus the piece that crosses it), and says
  // that earlier output was dropped.
  const stored = await cliOk(t.db, ["logs", "chatty"]);
  assert.match(stored, /^\[queuectl: earlier output dropped/);
  assert.match(stored, /line 299 of the chatty job\n$/);
  assert.ok(new TextEncoder().encode(stored).length <= 2 * 4096 + 100, String(stored.length));
});

Deno.test("[logs] --follow exits 1 when the job ends dead; --json and --attempt", async () => {
  await using t = await tempDb();
  await cliOk(t.db, ["config", "set", "backoff-base", "1"]);
  await cliOk(t.db, [
    "enqueue",
    JSON.stringify({ id: "bad", command: "echo out-$QUEUECTL_ATTEMPT; exit 3", max_retries: 1 }),
  ]);
  const follow = runCli(t.db, ["logs", "bad", "--follow"]);
  const w = startWorkers(t.db, 1);
  const [r] = await allDone([follow]);
  await stopWorkers(w);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stdout, /^out-1\n--- attempt 2 at \S+ ---\nout-2\n$/);
  assert.match(r.stderr, /^queuectl: bad ended dead .*dlq retry bad/);
  const json = JSON.parse(await cliOk(t.db, ["logs", "bad", "--json"]));
  assert.equal(json.id, "bad");
  assert.equal(json.state, "dead");
  assert.deepEqual(
    json.attempts.map((a: { attempt: number; outcome: string; output: string }) => [
      a.attempt,
      a.outcome,
      a.output,
    ]),
    [[1, "exited", "out-1\n"], [2, "exited", "out-2\n"]],
  );
  assert.equal(await cliOk(t.db, ["logs", "bad", "--attempt", "2"]), "out-2\n");
  const none = await runCli(t.db, ["logs", "bad", "--attempt", "3"]);
  assert.equal(none.code, 1);
  assert.match(none.stderr, /^queuectl: bad has no attempt 3 with output/);
  const both = await runCli(t.db, ["logs", "bad", "--json", "--follow"]);
  assert.equal(both.code, 2);
});

Deno.test("[cancel] a running job's worker stops its processes at once", async () => {
  await using t = await tempDb();
  const m = marker();
  await cliOk(t.db, ["enqueue", JSON.stringify({ id: "long", command: `sleep 60.${m}` })]);
  const w = startWorkers(t.db, 1);
  try {
    await waitFor(async () => (await processesWith(m)).length > 0, { what: "the job running" });
    const out = await cliOk(t.db, ["cancel", "long"]);
    assert.match(out, /^cancelled long/);
    await waitFor(async () => (await processesWith(m)).length === 0, {
      timeoutMs: 10_000,
      what: "the cancelled job's process gone",
    });
  } finally {
    await stopWorkers(w);
  }
  const job = await jobJson(t.db, "long");
  assert.equal(job.state, "cancelled");
  const s = await openDb(t.db);
  try {
    assert.deepEqual((await s.listAttempts("long")).map((a) => a.outcome), ["cancelled"]);
  } finally {
    await s.close();
  }
  assert.match(w.log(), /job\.no_longer_ours .*job=long .*state=cancelled/);
});
