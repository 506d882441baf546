/**
 * `worker start --drain`, end to end: real workers run real jobs until no job is ready, due
 * within a second, or running; then the command exits by itself with a summary.
 */
import assert from "node:assert/strict";
import {
  assertOneLineError,
  cliOk,
  gateCommand,
  has,
  jobState,
  lineCount,
  onTerminal,
  openGate,
  procsOfStore,
  runCli,
  startCli,
  tempDb,
  waitFor,
} from "./helpers.ts";

const enqueue = (db: string, spec: Record<string, unknown>) =>
  cliOk(db, ["enqueue", JSON.stringify(spec)]);

Deno.test("[worker start --drain] should exit 0 once the last job has run", async () => {
  await using t = await tempDb();
  const out = `${t.dir}/out`;
  for (const id of ["a", "b", "c", "d"]) {
    await enqueue(t.db, { id, command: `sleep 0.2; echo ${id} >> '${out}'` });
  }
  const r = await runCli(t.db, ["worker", "start", "--count", "2", "--drain"]);
  const detail = `exit ${r.code}\n${r.stdout}\n${r.stderr}`;
  assert.equal(r.code, 0, detail);
  assert.match(r.stdout, /^drained in [\d.]+m?s: 4 completed, 0 dead\n$/, detail);
  assert.equal(lineCount(out), 4);
  for (const id of ["a", "b", "c", "d"]) assert.equal(await jobState(t.db, id), "completed");
  // Its workers exited with it.
  assert.deepEqual(await procsOfStore(t.db), []);
});

Deno.test("[worker start --drain] should exit at once on an empty queue", async () => {
  await using t = await tempDb();
  await cliOk(t.db, ["init"]);
  const started = Date.now();
  const r = await runCli(t.db, ["worker", "start", "--drain"]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^drained in \d+ms: 0 completed, 0 dead\n$/);
  // No worker was started: well under a worker's start-up plus a poll.
  assert.doesNotMatch(r.stderr, /worker\.started/);
  assert.ok(Date.now() - started < 5000, `took ${Date.now() - started}ms`);
});

Deno.test("[worker start --drain] should wait for a job due within a second, not later", async () => {
  await using t = await tempDb();
  await enqueue(t.db, { id: "soon", command: "true", delay: "900ms" });
  await enqueue(t.db, { id: "later", command: "true", delay: "1h" });
  const r = await runCli(t.db, ["worker", "start", "--drain"]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /: 1 completed, 0 dead; left in the queue: 1 pending\n$/);
  assert.equal(await jobState(t.db, "soon"), "completed");
  assert.equal(await jobState(t.db, "later"), "pending");
});

Deno.test("[worker start --drain] should exit 1 when a job died during the drain", async () => {
  await using t = await tempDb();
  await enqueue(t.db, { id: "ok", command: "true" });
  await enqueue(t.db, { id: "bad", command: "exit 3", max_retries: 0 });
  const r = await runCli(t.db, ["worker", "start", "--drain", "--quiet"]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stdout, /^drained in .*: 1 completed, 1 dead\n$/);
  // The error is the last line, and the only one of its kind: no stack.
  assert.match(r.stderr, /\nqueuectl: drain finished, but 1 job died \(see queuectl dlq list\)\n$/);
  assert.equal(r.stderr.match(/queuectl: /g)?.length, 1, r.stderr);
  assert.equal(await jobState(t.db, "bad"), "dead");
});

Deno.test("[worker start --drain] should print plain progress lines when piped", async () => {
  await using t = await tempDb();
  await enqueue(t.db, { id: "quick", command: "true" });
  await enqueue(t.db, { id: "slow", command: "sleep 6" });
  const r = await runCli(t.db, ["worker", "start", "--count", "2", "--drain", "--quiet"]);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stderr.split("\n").filter((l) => l !== "");
  // One line as it starts, one (at most every 5s) as the count moves; no terminal codes.
  assert.equal(lines[0], "draining: 0/2 done, 0.0 jobs/s");
  assert.match(lines[1], /^draining: 1\/2 done, [\d.]+ jobs\/s, eta \d+s$/);
  assert.equal(lines.length, 2, r.stderr);
  assert.ok(!r.stderr.includes("\r") && !r.stderr.includes("\x1b"), r.stderr);
  assert.match(r.stdout, /^drained in [\d.]+s: 2 completed, 0 dead\n$/);
});

Deno.test("[worker start --drain] should stop gracefully on SIGINT, as without --drain", async () => {
  await using t = await tempDb();
  const gate = `${t.dir}/gate`;
  await enqueue(t.db, { id: "running", command: gateCommand(gate), priority: 5 });
  await enqueue(t.db, { id: "waiting", command: "true" });
  const w = startCli(t.db, ["worker", "start", "--drain"]);
  try {
    await waitFor(async () => (await jobState(t.db, "running")) === "processing");
    w.signal("SIGINT");
    await waitFor(() => w.log().includes("supervisor.stopping"));
    await openGate(gate);
  } finally {
    const status = await w.done();
    assert.equal(status.code, 0, w.log());
  }
  assert.match(
    w.log(),
    /stopped after [\d.]+m?s, before the queue was drained: 1 completed, 0 dead; left in the queue: 1 pending\n/,
  );
  assert.equal(await jobState(t.db, "running"), "completed");
  assert.equal(await jobState(t.db, "waiting"), "pending");
});

Deno.test("[worker start --drain] should refuse --detach", async () => {
  await using t = await tempDb();
  const r = await runCli(t.db, ["worker", "start", "--drain", "--detach"]);
  assertOneLineError(r, 2, /^queuectl: --drain runs in this terminal/);
});

Deno.test({
  name: "[worker start --drain] should redraw one progress line on a terminal",
  ignore: !has("script"), // util-linux's script(1) gives the command a terminal
  fn: async () => {
    await using t = await tempDb();
    for (const id of ["a", "b", "c"]) await enqueue(t.db, { id, command: "sleep 0.3" });
    const text = await onTerminal(t.db, ["worker", "start", "--drain"]);
    // Each redraw: carriage return, erase the line, the line, back to its start. No newline
    // until the summary, and no per-job log lines (a terminal drain logs warnings only).
    const draws = text.split("\r\x1b[K").slice(1);
    assert.ok(draws.length >= 3, text);
    for (const d of draws.slice(0, -1)) {
      assert.match(d, /^draining: \d\/3 done, [\d.]+ jobs\/s(, eta \d+s)?\r$/);
    }
    assert.match(draws.at(-1)!, /^drained in [\d.]+s: 3 completed, 0 dead\r?\n$/);
    assert.ok(draws.some((d) => d.startsWith("draining: 3/3 done")), text);
  },
});

Deno.test("[worker start --drain] should not wait for the jobs of a paused queue", async () => {
  await using t = await tempDb();
  await enqueue(t.db, { id: "a", command: "true" });
  for (const id of ["r1", "r2", "r3"]) {
    await enqueue(t.db, { id, command: "true", queue: "reports" });
  }
  await cliOk(t.db, ["queue", "pause", "reports"]);
  const r = await runCli(t.db, ["worker", "start", "--drain"]);
  const detail = `exit ${r.code}\n${r.stdout}\n${r.stderr}`;
  assert.equal(r.code, 0, detail);
  assert.match(
    r.stdout,
    /^drained in .*: 1 completed, 0 dead; left in the queue: 3 pending in paused queue reports\n$/,
    detail,
  );
  assert.equal(await jobState(t.db, "a"), "completed");
  assert.equal(await jobState(t.db, "r1"), "pending");
});

Deno.test("[worker start --drain] --queue a should drain a while queue b has jobs", async () => {
  await using t = await tempDb();
  await enqueue(t.db, { id: "a1", command: "true", queue: "a" });
  await enqueue(t.db, { id: "a2", command: "sleep 0.3", queue: "a" });
  await enqueue(t.db, { id: "b1", command: "true", queue: "b" });
  const r = await runCli(t.db, ["worker", "start", "--queue", "a", "--drain"]);
  const detail = `exit ${r.code}\n${r.stdout}\n${r.stderr}`;
  assert.equal(r.code, 0, detail);
  assert.match(
    r.stdout,
    /: 2 completed, 0 dead; left in the queue: 1 pending in queue b \(not in --queue\)\n$/,
    detail,
  );
  assert.equal(await jobState(t.db, "a2"), "completed");
  assert.equal(await jobState(t.db, "b1"), "pending");
});

Deno.test("[worker start --drain] should run a dependency chain to its end", async () => {
  await using t = await tempDb();
  await enqueue(t.db, { id: "c1", command: "sleep 0.4" });
  await enqueue(t.db, { id: "c2", command: "sleep 0.4", after: ["c1"] });
  await enqueue(t.db, { id: "c3", command: "true", after: ["c2"] });
  const r = await runCli(t.db, ["worker", "start", "--count", "2", "--drain"]);
  const detail = `exit ${r.code}\n${r.stdout}\n${r.stderr}`;
  assert.equal(r.code, 0, detail);
  assert.match(r.stdout, /^drained in .*: 3 completed, 0 dead\n$/, detail);
  for (const id of ["c1", "c2", "c3"]) assert.equal(await jobState(t.db, id), "completed");
});

Deno.test("[worker start --drain] should end when a chain's first job dies", async () => {
  await using t = await tempDb();
  await enqueue(t.db, { id: "d1", command: "exit 3", max_retries: 0 });
  await enqueue(t.db, { id: "d2", command: "true", after: ["d1"] });
  const r = await runCli(t.db, ["worker", "start", "--drain", "--quiet"]);
  const detail = `exit ${r.code}\n${r.stdout}\n${r.stderr}`;
  assert.equal(r.code, 1, detail);
  assert.match(r.stdout, /^drained in .*: 0 completed, 2 dead\n$/, detail);
  assert.equal(await jobState(t.db, "d2"), "dead");
});

Deno.test("[worker start --drain] should leave a job waiting on a paused queue's job", async () => {
  await using t = await tempDb();
  await enqueue(t.db, { id: "p1", command: "true", queue: "reports" });
  await enqueue(t.db, { id: "w1", command: "true", after: ["p1"] });
  await cliOk(t.db, ["queue", "pause", "reports"]);
  const r = await runCli(t.db, ["worker", "start", "--drain"]);
  const detail = `exit ${r.code}\n${r.stdout}\n${r.stderr}`;
  assert.equal(r.code, 0, detail);
  assert.match(
    r.stdout,
    /left in the queue: 1 pending in paused queue reports, 1 waiting on jobs that cannot run now\n$/,
    detail,
  );
  assert.equal(await jobState(t.db, "w1"), "pending");
});
