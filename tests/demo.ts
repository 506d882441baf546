/**
 * `deno task demo`: the main job on a fresh machine. Enqueues a mix of jobs into a fresh database,
 * runs three workers until the queue drains, stops them gracefully, and prints what happened.
 * Exits non-zero if any job ends in an unexpected state.
 */
import { cliCommand, cliOk, openDb, startWorkers, waitFor } from "./helpers.ts";

const dir = await Deno.makeTempDir({ prefix: "queuectl-demo-" });
const db = `${dir}/queue.db`;
const say = (s: string) => console.log(`\n\x1b[1m# ${s}\x1b[0m`);
const show = async (args: string[]) => {
  console.log(`$ queuectl ${args.map((a) => (/[\s"{}]/.test(a) ? `'${a}'` : a)).join(" ")}`);
  const text = await cliOk(db, args);
  if (text.trim()) console.log(text.trimEnd());
};

say(`a fresh queue at ${db} (${cliCommand().slice(-1)[0]})`);
await show(["config", "set", "backoff-base", "0.5"]);
await show(["enqueue", JSON.stringify({ id: "hello", command: "echo Hello from queuectl" })]);
await show(["enqueue", JSON.stringify({ id: "slow", command: "sleep 2 && echo done" })]);
await show(["enqueue", JSON.stringify({ id: "urgent", command: "echo first", priority: 10 })]);
await show(["enqueue", JSON.stringify({ id: "flaky", command: "exit 1", max_retries: 2 })]);
await show(["enqueue", JSON.stringify({ id: "later", command: "date", delay: "1s" })]);
await show([
  "enqueue",
  JSON.stringify({ id: "too-slow", command: "sleep 30", timeout: 1, max_retries: 0 }),
]);
await show(["enqueue", "--id", "flags", "--retries", "1", "--", "echo", "from flags"]);
await show(["status"]);

say("three workers drain the queue (their log follows)");
const w = startWorkers(db, 3);
const finished = new Set(["completed", "dead"]);
await waitFor(async () => {
  const s = await openDb(db);
  try {
    const c = await s.counts(Date.now());
    return c.pending + c.processing + c.failed === 0;
  } finally {
    await s.close();
  }
}, { timeoutMs: 60_000, what: "the queue to drain" });
w.signal("SIGINT");
const status = await w.done();
console.log(w.log().trimEnd());

say("the result");
await show(["status"]);
await show(["list"]);
await show(["dlq", "list"]);
await show(["show", "flaky"]);
await show(["logs", "slow"]);

const expected: Record<string, string> = {
  hello: "completed",
  slow: "completed",
  urgent: "completed",
  flaky: "dead",
  later: "completed",
  "too-slow": "dead",
  flags: "completed",
};
const s = await openDb(db);
const wrong: string[] = [];
for (const [id, state] of Object.entries(expected)) {
  const job = await s.getJob(id);
  if (job?.state !== state || !finished.has(job.state)) {
    wrong.push(`${id} is ${job?.state}, expected ${state}`);
  }
}
await s.close();
await Deno.remove(dir, { recursive: true });
if (status.code !== 0 || wrong.length > 0) {
  console.error(`demo failed: supervisor exit ${status.code}; ${wrong.join("; ")}`);
  Deno.exit(1);
}
say("done: every job ended as expected; the workers stopped cleanly on Ctrl+C (SIGINT)");
