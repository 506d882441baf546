/**
 * Fault injection, contention: 4 workers drain the queue while 4 processes enqueue 1,000 jobs
 * each (NDJSON files, NDJSON on stdin and single jobs, mixed) and 2 more run `status`, `list` and
 * `worker list` in a loop. No command fails, no "database is locked" reaches anyone, nothing is
 * lost and every job runs exactly once (no crashes here, so at-least-once means once).
 */
import assert from "node:assert/strict";
import { countLines, Prng, type ProcInfo, seedFromEnv, statusWithin } from "./chaos.ts";
import {
  type CliResult,
  openDb,
  procsOfStore,
  reapStore,
  runCli,
  startWorkers,
  tempDb,
  waitFor,
} from "./helpers.ts";

const ENQUEUERS = 4;
const PER_ENQUEUER = 1000;
const SINGLES = 25;

Deno.test("contention: 4 workers drain while 4 processes enqueue 1,000 jobs each and others read → no failure, nothing lost", async () => {
  const seed = seedFromEnv();
  const rng = new Prng(seed);
  await using t = await tempDb();
  const failures: string[] = [];
  const check = (what: string, r: CliResult) => {
    // list's "… N more" paging hint is the one thing a successful command writes to stderr.
    const stderr = r.stderr.replace(
      /^… (\d+ )?more[^\n]*; see them with --offset \d+, or --all\n$/,
      "",
    );
    if (r.code !== 0 || stderr !== "" || /database is locked|SQLITE_BUSY/i.test(r.stdout)) {
      failures.push(`${what} → exit ${r.code}\n${r.stdout.slice(0, 300)}${r.stderr}`);
    }
  };
  const spec = (id: string) => ({ id, command: `echo ${id} >> runs.txt`, cwd: t.dir });

  // Each enqueuer's plan: 25 single jobs (half as a JSON spec, half as flags and a command),
  // 9 NDJSON files of 100 and 75 jobs on stdin, in a random order.
  type Step = { kind: "single" | "file" | "stdin"; ids: string[] };
  const plans: Step[][] = [];
  for (let e = 0; e < ENQUEUERS; e++) {
    const ids = Array.from({ length: PER_ENQUEUER }, (_, i) => `e${e}-${i}`);
    const steps: Step[] = [];
    let i = 0;
    for (let s = 0; s < SINGLES; s++) steps.push({ kind: "single", ids: [ids[i++]] });
    for (let f = 0; f < 9; f++) steps.push({ kind: "file", ids: ids.slice(i, i += 100) });
    steps.push({ kind: "stdin", ids: ids.slice(i) });
    for (let k = steps.length - 1; k > 0; k--) {
      const j = rng.int(0, k);
      [steps[k], steps[j]] = [steps[j], steps[k]];
    }
    plans.push(steps);
  }
  const allIds = plans.flat().flatMap((s) => s.ids);
  assert.equal(new Set(allIds).size, ENQUEUERS * PER_ENQUEUER);

  // The readers only read: they need the queue to exist before the first of them runs.
  check("init", await runCli(t.db, ["init"]));
  const w = startWorkers(t.db, 4);
  let stopped = false;
  let leaked: ProcInfo[] = [];
  try {
    const enqueuer = async (e: number) => {
      let n = 0;
      for (const step of plans[e]) {
        if (step.kind === "single") {
          const id = step.ids[0];
          const args = n++ % 2 === 0
            ? ["enqueue", JSON.stringify(spec(id))]
            : ["enqueue", "--id", id, "--cwd", t.dir, "--", `echo ${id} >> runs.txt`];
          check(`enqueue ${id}`, await runCli(t.db, args));
        } else {
          const text = step.ids.map((id) => JSON.stringify(spec(id))).join("\n") + "\n";
          if (step.kind === "stdin") {
            check(
              `enqueue --file - (${step.ids[0]}…)`,
              await runCli(t.db, ["enqueue", "--file", "-"], { stdin: text }),
            );
          } else {
            const file = `${t.dir}/${step.ids[0]}.ndjson`;
            await Deno.writeTextFile(file, text);
            check(`enqueue --file ${file}`, await runCli(t.db, ["enqueue", "--file", file]));
          }
        }
      }
    };
    let enqueuing = true;
    let reads = 0;
    const reader = async (r: number) => {
      const commands = [
        ["status", "--json"],
        ["status"],
        ["list", "--state", "pending", "--limit", "5"],
        ["list", "--json", "--limit", "3", "--offset", "100"],
        ["worker", "list"],
      ];
      for (let i = r; enqueuing; i++) {
        const args = commands[i % commands.length];
        check(args.join(" "), await runCli(t.db, args));
        reads++;
      }
    };
    const readers = [reader(0), reader(2)];
    await Promise.all(Array.from({ length: ENQUEUERS }, (_, e) => enqueuer(e)));
    enqueuing = false;
    await Promise.all(readers);
    assert.deepEqual(failures, [], `seed ${seed}\n${w.log()}`);
    assert.ok(reads >= 10, `only ${reads} reads ran alongside the enqueuers`);

    await waitFor(
      async () => {
        const s = await openDb(t.db);
        try {
          return (await s.countJobs("completed")) === allIds.length;
        } finally {
          await s.close();
        }
      },
      { timeoutMs: 300_000, intervalMs: 200, what: "every job completed" },
    ).catch((e) => {
      throw new Error(`${e.message}\n${w.log()}`);
    });
  } finally {
    w.signal("SIGTERM");
    const status = await statusWithin(w.process, 20_000);
    if (!status) w.signal("SIGKILL");
    // Workers that outlived their supervisor keep its output pipe open: reap them first.
    leaked = await reapStore(t.db, 10_000);
    await w.done();
    stopped = status?.code === 0;
  }
  assert.ok(stopped, `the supervisor did not stop cleanly\n${w.log()}`);
  assert.deepEqual(leaked, [], w.log());

  // Every job once in the store, completed by exactly one attempt, run exactly once.
  const s = await openDb(t.db);
  try {
    const rows = await s.listJobs({ limit: allIds.length + 1 });
    assert.equal(rows.length, allIds.length);
    assert.deepEqual(
      rows.filter((r) => r.state !== "completed" || r.attempts !== 1).map((r) => r.id),
      [],
    );
    const notOnce: string[] = [];
    for (const r of rows) {
      const n = (await s.listAttempts(r.id)).length;
      if (n !== 1) notOnce.push(`${r.id}×${n}`);
    }
    assert.deepEqual(notOnce, [], "jobs without exactly one attempt");
  } finally {
    await s.close();
  }
  const runs = countLines(`${t.dir}/runs.txt`);
  const wrong = allIds.filter((id) => runs.get(id) !== 1).map((id) => `${id}×${runs.get(id) ?? 0}`);
  assert.deepEqual(wrong, []);
  assert.equal(runs.size, allIds.length, "lines in runs.txt that are not job ids");
  // Workers did not hit the lock either (it would have shown up as a warning).
  assert.doesNotMatch(w.log(), /database is locked|SQLITE_BUSY|store_unavailable|record_failed/i);
  assert.deepEqual(await procsOfStore(t.db), []);
});
