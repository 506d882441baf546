/**
 * `list` and `dlq list` that find things: newest first, a page with a note on stderr about the
 * rest, `--all`, several states at once, and `--search` on id, command and error. Run as the real
 * CLI against a temporary database filled through the store.
 */
import assert from "node:assert/strict";
import { allDone, cliOk, openDb, runCli, tempDb } from "./helpers.ts";
import { transition } from "../lib/job.ts";
import type { NewJob } from "../lib/store/store.ts";

const ids = (json: string) => (JSON.parse(json) as Array<{ id: string }>).map((j) => j.id);
const rowIds = (table: string) => table.trimEnd().split("\n").slice(1).map((l) => l.split(" ")[0]);

function job(id: string, fields: Partial<NewJob> = {}): NewJob {
  const now = Date.now();
  return {
    id,
    command: `echo ${id}`,
    maxRetries: 0,
    priority: 0,
    runAt: now,
    timeoutMs: 0,
    cwd: "/tmp",
    env: null,
    ...fields,
  };
}

/** Enqueues `jobs` in order; the ones named in `fail` then fail once with `error` (→ dead). */
async function fill(db: string, jobs: NewJob[], fail: Record<string, string> = {}) {
  const s = await openDb(db);
  try {
    const now = Date.now();
    await s.enqueue(jobs, now);
    for (const [id, error] of Object.entries(fail)) {
      const [j] = await s.claimNext("w1", now);
      assert.equal(j?.id, id, "give the jobs that fail the highest priorities, in order");
      const next = transition(j, { type: "fail", outcome: "exited" }, now);
      const result = { outcome: "exited" as const, exitCode: 1, signal: null, error };
      assert.ok(await s.finishAttempt(id, "w1", next, result, now));
    }
  } finally {
    await s.close();
  }
}

Deno.test("[list] should show the newest 100 and say on stderr how many older ones there are", async () => {
  await using t = await tempDb();
  // 130 jobs: "j1" is the oldest, "j130" the newest.
  await fill(t.db, Array.from({ length: 130 }, (_, i) => job(`j${i + 1}`)));
  const [first, second, all, json] = await allDone([
    runCli(t.db, ["list"]),
    runCli(t.db, ["list", "--offset", "100"]),
    runCli(t.db, ["list", "--all"]),
    runCli(t.db, ["list", "--json", "-n", "3"]),
  ]);
  assert.equal(first.code, 0, first.stderr);
  const firstIds = rowIds(first.stdout);
  assert.equal(firstIds.length, 100);
  assert.equal(firstIds[0], "j130");
  assert.equal(firstIds[99], "j31");
  assert.equal(first.stderr, "… 30 more (older); see them with --offset 100, or --all\n");
  assert.deepEqual(rowIds(second.stdout), Array.from({ length: 30 }, (_, i) => `j${30 - i}`));
  assert.equal(second.stderr, "", "the last page has nothing after it");
  assert.equal(rowIds(all.stdout).length, 130);
  assert.equal(all.stderr, "");
  assert.deepEqual(ids(json.stdout), ["j130", "j129", "j128"]);
  assert.equal(json.stderr, "… 127 more (older); see them with --offset 3, or --all\n");
});

Deno.test("[list] --state should take several states, and --search id, command and error", async () => {
  await using t = await tempDb();
  await fill(
    t.db,
    [
      job("nightly-backup", { priority: 9 }),
      job("d2", { priority: 8, command: "./sync.sh" }),
      job("p1", { command: "./BACKUP.sh --full" }),
      job("p2", { command: "echo 50%_done" }),
      job("p3", { command: "echo 50 done" }),
    ],
    { "nightly-backup": "tar: disk full", d2: "Connection refused by backup host" },
  );
  const [deadOrPending, dead, byId, byCommand, byError, percent, none, page, scoped, dlq] =
    await allDone([
      cliOk(t.db, ["list", "--state", "dead,pending", "--json"]),
      cliOk(t.db, ["list", "--state", "dead", "--json"]),
      cliOk(t.db, ["list", "--search", "nightly", "--json"]),
      cliOk(t.db, ["list", "--search", "backup.SH", "--json"]),
      cliOk(t.db, ["list", "--search", "REFUSED", "--json"]),
      cliOk(t.db, ["list", "--search", "50%", "--json"]),
      runCli(t.db, ["list", "--search", "no such text", "--state", "dead,completed"]),
      runCli(t.db, ["list", "--search", "backup", "-n", "2"]),
      cliOk(t.db, ["list", "--search", "backup", "--state", "pending", "--json"]),
      cliOk(t.db, ["dlq", "list", "--json"]),
    ]);
  assert.deepEqual(ids(deadOrPending), ["p3", "p2", "p1", "d2", "nightly-backup"]);
  assert.deepEqual(ids(dead), ["d2", "nightly-backup"]);
  assert.deepEqual(ids(byId), ["nightly-backup"]);
  assert.deepEqual(ids(byCommand), ["p1"]);
  assert.deepEqual(ids(byError), ["d2"]);
  assert.deepEqual(ids(percent), ["p2"], "% is not a wildcard");
  assert.deepEqual(none, {
    code: 0,
    stdout: 'no dead or completed jobs match "no such text"\n',
    stderr: "",
  });
  assert.deepEqual(rowIds(page.stdout), ["p1", "d2"]);
  // A search is not counted (that would walk every job): it only says that more match.
  assert.equal(page.stderr, "… more match (older); see them with --offset 2, or --all\n");
  assert.deepEqual(ids(scoped), ["p1"]);
  assert.deepEqual(ids(dlq), ["d2", "nightly-backup"], "the DLQ is newest first too");
});
