/**
 * Several jobs at once in one process, through the posix_spawn path, as a worker with 4 slots runs
 * them: spawns then run on a thread of their own while other jobs run and orphans of earlier jobs
 * are being ended; each spawn must keep its own arguments (command, environment, file actions)
 * until libc returns, and each job its own output and exit code.
 */
import assert from "node:assert/strict";
import { HAS_POSIX, runExecutorFixture } from "./helpers.ts";

Deno.test({
  name:
    "[executor posix] 120 jobs on 4 slots, some leaving orphans: each gets its own command, env and exit code",
  ignore: !HAS_POSIX,
  async fn() {
    const specs = Array.from({ length: 120 }, (_, i) => ({
      // Every third job abandons a sleeper (ended by the reaper as each job ends), so orphans are
      // being ended while other jobs are being spawned.
      command: `echo "job ${i} $N"; ${i % 3 === 0 ? "setsid sleep 30 & " : ""}exit ${i % 7}`,
      env: { N: `n${i}`.repeat(1 + (i % 5) * 40) },
    }));
    const stdout = await runExecutorFixture("run_jobs.ts", [JSON.stringify(specs), "4"], {
      QUEUECTL_SPAWN: "posix",
    });
    const { path, results } = JSON.parse(stdout) as {
      path: string;
      results: { result: { outcome: string; exitCode: number }; output: string }[];
    };
    assert.equal(path, "posix");
    assert.equal(results.length, specs.length);
    results.forEach((r, i) => {
      const code = i % 7;
      assert.equal(r.result.outcome, code === 0 ? "completed" : "exited", `job ${i}`);
      assert.equal(r.result.exitCode, code, `job ${i}`);
      assert.equal(r.output, `job ${i} ${specs[i].env.N}\n`, `job ${i}`);
    });
  },
});
