/**
 * Both spawn paths of the executor, side by side: libc's posix_spawnp through FFI and
 * `Deno.Command`. Each case runs one real job through `runJob` in a child Deno process that holds
 * the worker's FFI permission (`tests/fixtures/run_job.ts`), with `QUEUECTL_SPAWN` picking the path,
 * and asserts what the job saw and what the executor reported.
 */
import assert from "node:assert/strict";
import { decodeStatus } from "../workers/posix_spawn.ts";
import { isLive } from "./chaos.ts";
import {
  cliOk,
  FIXTURES,
  HAS_POSIX,
  runExecutorFixture,
  startWorkers,
  tempDb,
  waitFor,
} from "./helpers.ts";

const RUN_JOB = `${FIXTURES}run_job.ts`;
const PATHS = ["posix", "command"] as const;

interface Ran {
  path: string;
  reason?: string;
  result: {
    outcome: string;
    exitCode: number | null;
    signal: string | null;
    error: string | null;
    durationMs: number;
  };
  output: string;
  offset: number;
  total: number;
}

/**
 * Runs one job through the executor with `QUEUECTL_SPAWN=path` and checks it ran on `expected`;
 * `extraEnv` goes to the runner's own environment.
 */
async function run(
  path: string,
  spec: Record<string, unknown>,
  extraEnv: Record<string, string> = {},
  expected = path,
): Promise<Ran> {
  const stdout = await runExecutorFixture(
    "run_job.ts",
    [JSON.stringify({ cwd: Deno.cwd(), ...spec })],
    { QUEUECTL_SPAWN: path, ...extraEnv },
  );
  const ran = JSON.parse(stdout) as Ran;
  assert.equal(ran.path, expected, `ran on ${ran.path}: ${ran.reason}`);
  return ran;
}

/** Waits (bounded) for `pid` to be gone; kills it if it is not, so a failure leaks nothing. */
async function assertEnds(pid: number) {
  try {
    await waitFor(async () => !(await isLive(pid)), { timeoutMs: 5000, what: `${pid} to end` });
  } finally {
    try {
      Deno.kill(pid, "SIGKILL");
    } catch { /* gone, as it should be */ }
  }
}

for (const path of PATHS) {
  const ignore = path === "posix" && !HAS_POSIX;
  const test = (name: string, fn: () => Promise<void>) =>
    Deno.test({ name: `[executor ${path}] ${name}`, ignore, fn });

  test("exit code is kept, and error is the last lines of stderr", async () => {
    const r = await run(path, { command: "echo out; echo one >&2; echo two >&2; exit 3" });
    assert.equal(r.result.outcome, "exited");
    assert.equal(r.result.exitCode, 3);
    assert.equal(r.result.error, "one\ntwo");
    const ok = await run(path, { command: "exit 0" });
    assert.deepEqual([ok.result.outcome, ok.result.exitCode, ok.result.error], [
      "completed",
      0,
      null,
    ]);
    const quiet = await run(path, { command: "exit 255" });
    assert.deepEqual([quiet.result.exitCode, quiet.result.error], [255, "exited with code 255"]);
  });

  test("a job killed by a signal is signalled, with the signal's name", async () => {
    const r = await run(path, { command: "kill -USR1 $$" });
    assert.equal(r.result.outcome, "signalled");
    assert.equal(r.result.signal, "SIGUSR1");
    assert.equal(r.result.exitCode, 128 + 10);
    assert.match(r.result.error ?? "", /^killed by SIGUSR1/);
  });

  test("a timeout kills the whole process tree, a grandchild included", async () => {
    await using t = await tempDb();
    const pidFile = `${t.dir}/pid`;
    // No subreaper in the runner: only the kill of the job's process group can end the sleep.
    const r = await run(path, {
      command: `sleep 100 & echo $! > ${pidFile}; wait`,
      timeoutMs: 500,
      subreaper: false,
    });
    assert.equal(r.result.outcome, "timeout");
    assert.match(r.result.error ?? "", /^timed out after 500ms/);
    await assertEnds(Number(Deno.readTextFileSync(pidFile).trim()));
  });

  test("a forced stop kills the whole process tree: interrupted", async () => {
    await using t = await tempDb();
    const pidFile = `${t.dir}/pid`;
    const r = await run(path, {
      command: `sleep 100 & echo $! > ${pidFile}; wait`,
      interruptAfterMs: 500,
      subreaper: false,
    });
    assert.equal(r.result.outcome, "interrupted");
    assert.equal(r.result.error, "interrupted by a forced worker stop");
    await assertEnds(Number(Deno.readTextFileSync(pidFile).trim()));
  });

  test("a job ignoring SIGTERM is killed after the grace", async () => {
    const r = await run(path, {
      command: "trap '' TERM; echo ready; sleep 100 & wait; wait",
      timeoutMs: 300,
      killGraceMs: 300,
      subreaper: false,
    });
    assert.equal(r.result.outcome, "timeout");
    assert.equal(r.result.signal, "SIGKILL");
    assert.ok(r.result.durationMs >= 550, `ended after ${r.result.durationMs} ms`);
  });

  test("stdout and stderr are captured interleaved, in the order printed", async () => {
    const r = await run(path, {
      command: "echo a; sleep 0.2; echo b >&2; sleep 0.2; echo c; sleep 0.2; echo d >&2",
    });
    assert.equal(r.output, "a\nb\nc\nd\n");
    assert.equal(r.total, 8);
  });

  test("output is capped keeping the tail, and the total counts every byte", async () => {
    const r = await run(path, {
      // The pause lets stderr be read before LAST: across two pipes, order is arrival order.
      command: "head -c 3000000 /dev/zero; echo END; head -c 500000 /dev/zero >&2; sleep 0.5; " +
        "echo LAST",
      capBytes: 100,
    });
    assert.equal(r.result.outcome, "completed");
    assert.equal(r.total, 3_000_000 + 4 + 500_000 + 5);
    assert.equal(r.output.length, 100);
    assert.ok(r.output.endsWith("LAST\n"), JSON.stringify(r.output));
    assert.equal(r.offset, r.total - 100);
  });

  test("a missing directory is a spawn error with a clear message", async () => {
    const r = await run(path, { command: "true", cwd: "/nonexistent/queuectl-dir" });
    assert.equal(r.result.outcome, "spawn_error");
    assert.equal(r.result.exitCode, null);
    assert.equal(
      r.result.error,
      "cannot start the job: its directory /nonexistent/queuectl-dir does not exist (or sh is missing)",
    );
  });

  test("the job runs in its directory with the worker's environment plus its own", async () => {
    await using t = await tempDb();
    const r = await run(path, {
      command: 'pwd; printf "%s|%s|%s\\n" "$JOB_VAR" "$WORKER_VAR" "$SHARED"',
      cwd: t.dir,
      env: { JOB_VAR: "job value, with spaces", SHARED: "job wins" },
    }, { WORKER_VAR: "from the worker", SHARED: "worker" });
    assert.equal(
      r.output,
      `${Deno.realPathSync(t.dir)}\njob value, with spaces|from the worker|job wins\n`,
    );
  });

  test("a large or non-ASCII environment reaches the job intact; a NUL byte is a spawn error", async () => {
    const r = await run(path, {
      command: 'printf "%s|%s\\n" "${#BIG}" "$UNI"',
      env: { BIG: "x".repeat(100_000), UNI: "é✓ ünï" },
    });
    assert.equal(r.output, "100000|é✓ ünï\n");
    const nul = await run(path, { command: "true", env: { BAD: "a\u0000b" } });
    assert.equal(nul.result.outcome, "spawn_error");
    assert.match(nul.result.error ?? "", /^cannot start the job: /);
  });

  test("stdin is /dev/null; stdout and stderr are pipes, so no file is left anywhere", async () => {
    await using t = await tempDb();
    const r = await run(path, {
      command: "cat; readlink /proc/self/fd/0 /proc/self/fd/1 /proc/self/fd/2",
    }, { TMPDIR: t.dir });
    const [stdin, stdout, stderr] = r.output.trim().split("\n");
    assert.equal(stdin, "/dev/null");
    assert.match(stdout, /^pipe:\[\d+\]$/);
    assert.match(stderr, /^pipe:\[\d+\]$/);
    assert.deepEqual([...Deno.readDirSync(t.dir)], []);
  });

  test("the job leads its own session and group, with default signals and none blocked", async () => {
    const r = await run(path, {
      command: "read -r pid comm state ppid pgrp sid rest < /proc/$$/stat; " +
        // grep reads its own mask: the shell's own one changes while it forks (dash blocks all
        // signals around fork), and its child restores what the shell was started with.
        'echo "$pid $pgrp $sid"; grep -E "^Sig(Blk|Ign)" /proc/self/status',
    });
    const [ids, blk, ign] = r.output.trim().split("\n");
    const [pid, pgrp, sid] = ids.split(" ");
    assert.equal(pgrp, pid);
    assert.equal(sid, pid);
    assert.equal(BigInt("0x" + blk.split(/\s+/)[1]), 0n);
    const ignored = BigInt("0x" + ign.split(/\s+/)[1]);
    for (const [name, n] of [["SIGHUP", 1], ["SIGINT", 2], ["SIGQUIT", 3], ["SIGPIPE", 13]]) {
      assert.equal((ignored >> BigInt(Number(n) - 1)) & 1n, 0n, `${name} is ignored in the job`);
    }
  });
}

Deno.test({
  name: "[executor] without QUEUECTL_SPAWN, the posix_spawn path is chosen where it works",
  ignore: !HAS_POSIX,
  fn: async () => {
    const r = await run("", { command: "echo hi" }, {}, "posix");
    assert.equal(r.output, "hi\n");
  },
});

Deno.test("[executor] QUEUECTL_SPAWN with an unknown value is refused, naming the choices", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", "--allow-env=QUEUECTL_SPAWN", RUN_JOB, '{"command":"true"}'],
    env: { QUEUECTL_SPAWN: "fork" },
    stdin: "null",
  }).output();
  assert.notEqual(out.code, 0);
  assert.match(
    new TextDecoder().decode(out.stderr),
    /QUEUECTL_SPAWN must be "posix" or "command", not "fork"/,
  );
});

Deno.test("[executor] QUEUECTL_SPAWN=posix without the FFI permission is refused, saying why", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", "--allow-env=QUEUECTL_SPAWN", RUN_JOB, '{"command":"true"}'],
    env: { QUEUECTL_SPAWN: "posix" },
    stdin: "null",
  }).output();
  assert.notEqual(out.code, 0);
  assert.match(new TextDecoder().decode(out.stderr), /QUEUECTL_SPAWN=posix, but .*libc/);
});

Deno.test("[executor] without the FFI permission, jobs run on Deno.Command", async () => {
  const stdout = await runExecutorFixture(
    "run_job.ts",
    [JSON.stringify({ command: "echo hi", cwd: "/" })],
    {},
    { ffi: false },
  );
  const r = JSON.parse(stdout) as Ran;
  assert.deepEqual([r.path, r.output], ["command", "hi\n"]);
});

Deno.test("[executor] waitpid status words decode to exit codes and signals", () => {
  assert.deepEqual(decodeStatus(0), { success: true, code: 0, signal: null });
  assert.deepEqual(decodeStatus(3 << 8), { success: false, code: 3, signal: null });
  assert.deepEqual(decodeStatus(9), { success: false, code: 137, signal: "SIGKILL" });
  // A core dump sets 0x80; the signal is still the low 7 bits.
  assert.deepEqual(decodeStatus(0x80 | 11), { success: false, code: 139, signal: "SIGSEGV" });
});

for (const path of PATHS) {
  Deno.test({
    name: `[worker ${path}] the worker's start line names its spawn path, and jobs run on it`,
    ignore: path === "posix" && !HAS_POSIX,
    fn: async () => {
      await using t = await tempDb();
      await cliOk(t.db, ["enqueue", JSON.stringify({ id: "j", command: "echo ran" })]);
      const w = startWorkers(t.db, 1, { QUEUECTL_SPAWN: path });
      try {
        await waitFor(async () => (await cliOk(t.db, ["logs", "j"])) === "ran\n", {
          what: "j ran",
        });
      } finally {
        w.signal("SIGTERM");
      }
      assert.equal((await w.done()).code, 0, w.log());
      assert.match(w.log(), new RegExp(`worker\\.started .*spawn=${path}`), w.log());
    },
  });
}
