/**
 * Fault injection, chaos: `deno task chaos` with 2,000 jobs while workers and supervisors are
 * SIGKILLed, and the supervisor's restart of killed workers.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { procsMentioning, workerProcs } from "./chaos.ts";
import { PERMS, sqliteOnly, startWorkers, tempDb, waitFor } from "./helpers.ts";
import { pgTestServer } from "./pg_helpers.ts";

const CHAOS = fileURLToPath(new URL("./chaos.ts", import.meta.url));

/**
 * Runs `chaos.ts` with `args` and checks its verdict: exactly one line on stdout in the documented
 * shape, nothing lost, stuck or completed twice, a run that was really chaotic (`minKills`), every
 * extra run explained, nothing leaked. Returns the stderr diagnostics.
 */
async function assertChaos(
  args: string[],
  jobs: number,
  minKills: number,
  hosts = 1,
  concurrency = 1,
) {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", ...PERMS, CHAOS, "--jobs", String(jobs), ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const out = new TextDecoder().decode(stdout);
  const diag = new TextDecoder().decode(stderr);
  const context = `stdout:\n${out}\nstderr:\n${diag}`;
  const m = new RegExp(
    "^jobs=(\\d+) kills=(\\d+) lost=(\\d+) stuck=(\\d+) completed_twice=(\\d+) " +
      `extra_runs=(\\d+)${hosts > 1 ? ` hosts=${hosts}` : ""}\\n$`,
  ).exec(out);
  assert.ok(m, `unexpected chaos output\n${context}`);
  const [n, kills, lost, stuck, twice, extra] = m.slice(1).map(Number);
  assert.equal(n, jobs, context);
  assert.equal(lost, 0, context);
  assert.equal(stuck, 0, context);
  assert.equal(twice, 0, context);
  // The run must actually have been chaotic, and every extra run needs a killed worker (which
  // held up to `concurrency` jobs).
  assert.ok(kills >= minKills, `only ${kills} kills\n${context}`);
  assert.ok(extra <= kills * concurrency, `${extra} extra runs from ${kills} kills\n${context}`);
  assert.match(diag, /unexplained_extra_runs=0 unexpected_failures=0 /, context);
  assert.match(diag, /leaked_processes=0 supervisor_exit=0 drained=true /, context);
  assert.equal(code, 0, context);
  return diag;
}

Deno.test({
  name:
    "chaos: 2,000 jobs while workers and supervisors are SIGKILLed → 0 lost, 0 stuck, 0 completed twice",
  // An SQLite file whatever the test store; its PostgreSQL twin is the next test.
  ignore: sqliteOnly,
  async fn() {
    const diag = await assertChaos([], 2000, 10);
    // Nothing of the run is left behind.
    const dir = /dir=(\S+)/.exec(diag)?.[1];
    assert.ok(dir, diag);
    assert.deepEqual(await procsMentioning(dir), []);
  },
});

Deno.test({
  name:
    "chaos with --concurrency 4: 1,000 jobs, 4 at once per worker, SIGKILLs → 0 lost, 0 stuck, 0 completed twice",
  // An SQLite file whatever the test store.
  ignore: sqliteOnly,
  async fn() {
    await assertChaos(["--workers", "2", "--concurrency", "4"], 1000, 5, 1, 4);
  },
});

Deno.test({
  name:
    "chaos on PostgreSQL: 1,000 jobs, two hosts, workers and supervisors SIGKILLed → 0 lost, 0 stuck, 0 completed twice",
  // On PostgreSQL whatever the test store: the SQLite pass runs it already.
  ignore: sqliteOnly,
  async fn() {
    const server = await pgTestServer();
    if (!server) {
      console.log("skipped: no PostgreSQL server answers at QUEUECTL_TEST_PG");
      return;
    }
    try {
      await assertChaos(["--hosts", "2", "--db", server.freshSchemaUrl()], 1000, 5, 2);
    } finally {
      await server.dispose();
    }
  },
});

// A worker killed from outside is replaced after the base delay (0.5s), however many others died
// before: restart backoff is kept per slot and applies only to workers that keep failing as they
// start. The delay is read from the supervisor's own `worker.died … restart_in=` lines rather than
// timed, so a busy machine cannot fail the test.
Deno.test({
  name:
    "supervisor: each SIGKILLed worker is restarted after the base delay, however many others died before",
  async fn() {
    await using t = await tempDb();
    const w = startWorkers(t.db, 4);
    const rounds = 8;
    try {
      const firstSeen = new Map<number, number>();
      const mine = async () => {
        const now = Date.now();
        const live = (await workerProcs(t.db)).filter((p) => p.ppid === w.process.pid);
        for (const p of live) if (!firstSeen.has(p.pid)) firstSeen.set(p.pid, now);
        return live;
      };
      await waitFor(async () => (await mine()).length === 4, { what: "4 workers" });
      for (let round = 1; round <= rounds; round++) {
        // Kill the oldest worker, so the kills go round the slots.
        const live = await mine();
        const oldest = live.reduce((
          a,
          b,
        ) => (firstSeen.get(a.pid)! <= firstSeen.get(b.pid)! ? a : b));
        Deno.kill(oldest.pid, "SIGKILL");
        await waitFor(
          async () => {
            const now = await mine();
            return now.length === 4 && !now.some((p) => p.pid === oldest.pid);
          },
          { timeoutMs: 60_000, intervalMs: 50, what: `worker restart after kill ${round}` },
        );
      }
    } finally {
      w.signal("SIGTERM");
      const status = await w.done();
      assert.equal(status.code, 0, w.log());
    }
    const died = w.log().split("\n").filter((l) => /worker\.died /.test(l));
    assert.equal(died.length, rounds, w.log());
    for (const line of died) {
      assert.match(line, /signal=SIGKILL/, line);
      assert.match(line, /restart_in=500ms\b/, line);
    }
  },
});
