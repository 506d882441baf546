/** Leases: heartbeats keep a long job, and a silent worker's job is rescued exactly once. */
import assert from "node:assert/strict";
import {
  cliOk,
  gateCommand,
  jobState,
  lineCount,
  openDb,
  openGate,
  startWorkers,
  tempDb,
  waitFor,
} from "./helpers.ts";

Deno.test("lease: a job running longer than the lease is never rescued while its worker lives", async () => {
  await using t = await tempDb();
  await cliOk(t.db, ["config", "set", "lease-timeout", "2s"]);
  await cliOk(t.db, ["enqueue", JSON.stringify({ id: "long", command: "sleep 5" })]);
  const w = startWorkers(t.db, 2);
  try {
    await waitFor(async () => (await jobState(t.db, "long")) === "completed", {
      timeoutMs: 60_000,
      what: "long completed",
    });
  } finally {
    w.signal("SIGTERM");
  }
  assert.equal((await w.done()).code, 0);
  const s = await openDb(t.db);
  try {
    assert.deepEqual((await s.listAttempts("long")).map((a) => a.outcome), ["completed"]);
  } finally {
    await s.close();
  }
  assert.doesNotMatch(w.log(), /job\.rescued/);
});

Deno.test("lease: a frozen worker's job is rescued by another worker; its late result is dropped", async () => {
  await using t = await tempDb();
  await cliOk(t.db, ["config", "set", "lease-timeout", "2s"]);
  await cliOk(t.db, ["config", "set", "backoff-base", "0"]);
  const runs = `${t.dir}/runs.txt`;
  // The first run holds its worker until the gate opens (after the rescue); the second ends at
  // once.
  const gate = `${t.dir}/gate`;
  await cliOk(t.db, [
    "enqueue",
    JSON.stringify({
      id: "j",
      command: `echo run >> ${runs}; [ "$(wc -l < ${runs})" -ge 2 ] || { ${gateCommand(gate)}; }`,
    }),
  ]);
  const w = startWorkers(t.db, 2);
  let frozen = 0;
  try {
    // The first run must have started before its worker freezes (a worker frozen between claim
    // and spawn leaves nothing to hold the gate, and the rescued run would wait on it).
    await waitFor(() => lineCount(runs) === 1, { what: "the first run" });
    const s = await openDb(t.db);
    frozen = (await s.listWorkers()).find((x) => x.currentJob === "j")!.pid;
    await s.close();
    Deno.kill(frozen, "SIGSTOP");
    await waitFor(async () => (await jobState(t.db, "j")) === "completed", {
      timeoutMs: 60_000,
      what: "rescued job completed by the other worker",
    });
    Deno.kill(frozen, "SIGCONT");
    frozen = 0;
    await openGate(gate);
    await waitFor(() => /job\.lost/.test(w.log()), { what: "the late result to be dropped" });
  } finally {
    if (frozen) Deno.kill(frozen, "SIGCONT");
    await openGate(gate);
    w.signal("SIGTERM");
  }
  assert.equal((await w.done()).code, 0, w.log());
  const s = await openDb(t.db);
  try {
    const attempts = await s.listAttempts("j");
    assert.deepEqual(attempts.map((a) => a.outcome), ["worker_lost", "completed"]);
    assert.match(attempts[0].error ?? "", /no heartbeat for 2s/);
    assert.equal((await s.getJob("j"))!.state, "completed");
  } finally {
    await s.close();
  }
});
