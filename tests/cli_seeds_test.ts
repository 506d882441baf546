/**
 * Users arrive with command lines from other queuectl READMEs. Each line here is spelled exactly
 * as in one of those READMEs, and must work: exit 0, with the effect the README describes.
 */
import assert from "node:assert/strict";
import {
  allDone,
  cliOk,
  jobState,
  openDb,
  startWorkers,
  tempDb,
  waitFor,
  type Workers,
} from "./helpers.ts";

/** How many workers of this database are registered and not stopped. */
async function liveWorkers(db: string): Promise<number> {
  const s = await openDb(db);
  try {
    return (await s.listWorkers()).length;
  } finally {
    await s.close();
  }
}

/**
 * Runs `body` while workers run, then `worker stop`, spelled as the READMEs do; the workers must
 * all be gone and the supervisor must exit 0. If `body` fails, the supervisor is still stopped
 * and awaited, so that it does not outlive the test.
 */
async function whileWorkersRun(db: string, w: Workers, body: () => Promise<void>) {
  try {
    await body();
    assert.match(await cliOk(db, ["worker", "stop"]), /^stopped \d+ workers?$/m);
  } finally {
    w.signal("SIGTERM"); // no-op once worker stop has done its job
  }
  assert.equal((await w.done()).code, 0, w.log());
  assert.equal(await liveWorkers(db), 0);
}

Deno.test("[seeds] every enqueue line of the READMEs should store its job", async () => {
  await using t = await tempDb();
  const specs = [
    '{"id":"hello","command":"echo Hello QueueCTL"}',
    '{"id":"job1","command":"echo Hello from QueueCTL"}',
    '{"id":"job2","command":"sleep 3 && echo Done"}',
    '{"id":"job3","command":"bash -c \\"exit 1\\""}',
    '{"id":"failjob","command":"bash -c \\"exit 1\\"","max_retries":2}',
    '{"id":"job-fail-123", "command":"exit 1", "max_retries": 2}',
    '{"id":"timeout-test","command":"sleep 100","timeout":5}',
    '{\n  "id":"scheduled-job",\n  "command":"python backup.py",\n  "run_at":"2025-11-09T15:00:00Z"\n}',
    '{"id":"safe","command":"echo hello"}',
    '{"id":"bad","command":"rm -rf /"}',
    '{"id":"safe1","command":"python3 increment_counter.py"}',
    '{"command":"echo Hello World"}',
    '{"command":"sleep 3"}',
    '{"command":"this_command_does_not_exist"}',
    // PowerShell users are told to type "{\"command\":\"echo hello\"}": this is what sh passes on.
    '{"command":"echo hello"}',
  ];
  const outs = await allDone(
    specs.map((spec, i) => cliOk(`${t.dir}/e${i}.db`, ["enqueue", spec])),
  );
  for (const [i, spec] of specs.entries()) {
    const want = JSON.parse(spec);
    const id = /^enqueued (\S+)/.exec(outs[i])?.[1];
    assert.ok(id, outs[i]);
    if (want.id) assert.equal(id, want.id);
    const s = await openDb(`${t.dir}/e${i}.db`);
    try {
      const job = (await s.getJob(id))!;
      assert.equal(job.command, want.command);
      assert.equal(job.state, "pending");
      if (want.max_retries !== undefined) assert.equal(job.maxRetries, want.max_retries);
      if (want.timeout !== undefined) assert.equal(job.timeoutMs, want.timeout * 1000);
      if (want.run_at !== undefined) assert.equal(job.runAt, Date.parse(want.run_at));
    } finally {
      await s.close();
    }
  }
});

Deno.test("[seeds] the README walkthrough should work as spelled, workers included", async () => {
  await using t = await tempDb();
  const q = (...args: string[]) => cliOk(t.db, args);
  await q("init");
  for (const n of [1, 2, 3]) await q("enqueue", `{"id":"job${n}","command":"echo Job ${n}"}`);
  await q("enqueue", '{"id":"failjob","command":"bash -c \\"exit 1\\"","max_retries":2}');
  assert.match(await q("status"), /^pending\s+4$/m);

  // `queuectl worker start --count 1`; retries without waiting, so the test stays quick.
  const w = startWorkers(t.db, 1, { QUEUECTL_BACKOFF_BASE: "0" });
  await whileWorkersRun(t.db, w, async () => {
    await waitFor(async () => (await jobState(t.db, "failjob")) === "dead", {
      what: "failjob in the DLQ",
    });
  });
  for (const n of [1, 2, 3]) assert.equal(await jobState(t.db, `job${n}`), "completed");

  const [status, completed, pending, dlq, list] = await allDone([
    q("status"),
    q("list", "--state", "completed"),
    q("list", "--state", "pending"),
    q("dlq", "list"),
    q("list"),
  ]);
  assert.match(status, /^completed\s+3$/m);
  assert.match(status, /^dead\s+1$/m);
  // Newest first.
  assert.deepEqual(completed.trimEnd().split("\n").slice(1).map((l) => l.split(" ")[0]), [
    "job3",
    "job2",
    "job1",
  ]);
  assert.equal(pending, "no pending jobs\n");
  assert.match(dlq, /^failjob\s+dead\s+3\/3\s/m);
  assert.equal(list.trimEnd().split("\n").length, 5);

  assert.equal(await q("dlq", "retry", "failjob"), "moved to pending: failjob\n");
  assert.equal(await jobState(t.db, "failjob"), "pending");

  for (
    const [args, out] of [
      [["config", "set", "max-retries", "5"], "max-retries = 5\n"],
      [["config", "set", "max_retries", "5"], "max-retries = 5\n"],
      [["config", "set", "backoff-base", "3"], "backoff-base = 3\n"],
      [["config", "set", "retry_base", "3"], "backoff-base = 3\n"],
    ] as const
  ) {
    assert.equal(await q(...args), out);
  }
  const [show, get, getKey, configList] = await allDone([
    q("config", "show"),
    q("config", "get"),
    q("config", "get", "max-retries"),
    q("config", "list"),
  ]);
  assert.match(show, /^max-retries\s+5\s+stored\s/m);
  assert.match(show, /^backoff-base\s+3\s+stored\s/m);
  assert.equal(get, show);
  assert.equal(configList, show);
  assert.equal(getKey, "5\n");
});

Deno.test("[seeds] worker start with and without --count, then worker stop", async () => {
  await using t = await tempDb();
  // `queuectl worker start`: one worker.
  await whileWorkersRun(t.db, startWorkers(t.db, null), async () => {
    await waitFor(async () => (await liveWorkers(t.db)) === 1, { what: "1 worker" });
  });
  // `queuectl worker start --count 3`.
  await whileWorkersRun(t.db, startWorkers(t.db, 3), async () => {
    await waitFor(async () => (await liveWorkers(t.db)) === 3, { what: "3 workers" });
  });

  // Nothing left to stop: still fine.
  assert.equal(await cliOk(t.db, ["worker", "stop"]), "no workers are running on this host\n");
});
