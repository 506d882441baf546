/**
 * `purge` says how many jobs it will delete before it does: `--dry-run` only counts, a terminal
 * is asked (y/N), and without a terminal `--yes` is required. The terminal is a real
 * pseudo-terminal from util-linux `script`; the test skips with a line where it is missing.
 */
import assert from "node:assert/strict";
import {
  allDone,
  assertOneLineError,
  cliCommand,
  cliOk,
  openDb,
  runCli,
  tempDb,
} from "./helpers.ts";
import { transition } from "../lib/job.ts";

/** `n` completed jobs, finished `agoMs` ago. */
async function completed(db: string, ids: string[], agoMs = 0) {
  const s = await openDb(db);
  try {
    const now = Date.now() - agoMs;
    for (const id of ids) {
      await s.enqueue([{
        id,
        command: "true",
        maxRetries: 0,
        priority: 0,
        runAt: now,
        timeoutMs: 0,
        cwd: "/tmp",
        env: null,
      }], now);
      const [j] = await s.claimNext("w1", now);
      const ok = { outcome: "completed" as const, exitCode: 0, signal: null, error: null };
      assert.ok(await s.finishAttempt(id, "w1", transition(j, { type: "succeed" }, now), ok, now));
    }
  } finally {
    await s.close();
  }
}

async function count(db: string): Promise<number> {
  const s = await openDb(db);
  try {
    return await s.countJobs("completed");
  } finally {
    await s.close();
  }
}

Deno.test("[purge] --dry-run only counts; without a terminal --yes is required", async () => {
  await using t = await tempDb();
  await completed(t.db, ["old1", "old2"], 10 * 86_400_000);
  await completed(t.db, ["new"]);
  const [dry, dryOld, noYes] = await allDone([
    runCli(t.db, ["purge", "--state", "completed", "--dry-run"]),
    runCli(t.db, ["purge", "--state", "completed", "--older-than", "7d", "--dry-run"]),
    runCli(t.db, ["purge", "--state", "completed"]),
  ]);
  assert.deepEqual(dry, { code: 0, stdout: "would purge 3 completed jobs\n", stderr: "" });
  assert.equal(dryOld.stdout, "would purge 2 completed jobs that finished more than 7d ago\n");
  assertOneLineError(noYes, 2, /pass --yes to confirm when not on a terminal, or --dry-run/);
  assert.equal(await count(t.db), 3, "nothing deleted");
  assert.equal(
    await cliOk(t.db, ["purge", "--state", "completed", "--older-than", "7d", "--yes"]),
    "purged 2 completed jobs\n",
  );
  assert.equal(await count(t.db), 1);
});

/** Runs queuectl ARGS on a pseudo-terminal, typing `input`; null where `script` is missing. */
async function onTerminal(db: string, args: string[], input: string) {
  const quote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
  const line = [...cliCommand(), ...args].map(quote).join(" ");
  try {
    const r = await new Deno.Command("script", {
      args: ["-qec", line, "/dev/null"],
      env: { QUEUECTL_DB: db, NO_COLOR: "1" },
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const w = r.stdin.getWriter();
    await w.write(new TextEncoder().encode(input));
    await w.close();
    const out = await r.output();
    return { code: out.code, text: new TextDecoder().decode(out.stdout) };
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

Deno.test("[purge] on a terminal should ask, and delete only on y", async (t) => {
  await using tmp = await tempDb();
  await completed(tmp.db, ["a", "b"]);
  const no = await onTerminal(tmp.db, ["purge", "--state", "completed"], "n\n");
  if (no === null) {
    console.log("skipped: util-linux script (for a pseudo-terminal) is not installed");
    return;
  }
  await t.step("answering n deletes nothing, exit 1", async () => {
    assert.match(no.text, /delete 2 completed jobs, with their output\? \[y\/N\]/);
    assert.match(no.text, /queuectl: nothing purged \(not confirmed\)/);
    assert.equal(no.code, 1, no.text);
    assert.equal(await count(tmp.db), 2);
  });
  await t.step("answering y deletes them", async () => {
    const yes = (await onTerminal(tmp.db, ["purge", "--state", "completed"], "y\n"))!;
    assert.equal(yes.code, 0, yes.text);
    assert.match(yes.text, /purged 2 completed jobs/);
    assert.equal(await count(tmp.db), 0);
  });
});
