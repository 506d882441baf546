/**
 * `queuectl completions bash|zsh|fish`: each script is valid for its shell, and loaded into a
 * real shell it proposes what the parser accepts (commands, flags) and the ids of stored jobs.
 * `queuectl` is put on PATH as a small wrapper around the CLI under test.
 */
import assert from "node:assert/strict";
import {
  assertOneLineError,
  cliCommand,
  cliOk,
  has,
  runCli,
  sqliteOnly,
  tempDb,
} from "./helpers.ts";

/** A directory holding `queuectl`, which runs the CLI under test. */
async function binDir(dir: string): Promise<string> {
  const bin = `${dir}/bin`;
  await Deno.mkdir(bin, { recursive: true });
  const quoted = cliCommand().map((a) => `'${a.replaceAll("'", `'\\''`)}'`).join(" ");
  await Deno.writeTextFile(`${bin}/queuectl`, `#!/bin/sh\nexec ${quoted} "$@"\n`, { mode: 0o755 });
  return bin;
}

/** Runs `shell ARGS` with `queuectl` on PATH; returns stdout, failing on a non-zero exit. */
async function inShell(
  shell: string,
  args: string[],
  t: { dir: string; db: string },
): Promise<string> {
  const bin = await binDir(t.dir);
  const r = await new Deno.Command(shell, {
    args,
    env: { PATH: `${bin}:${Deno.env.get("PATH")}`, QUEUECTL_DB: t.db, NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  assert.equal(r.code, 0, `${shell} exited ${r.code}: ${dec.decode(r.stderr)}`);
  return dec.decode(r.stdout);
}

/** What bash's completion proposes for `line` (its last word being completed). */
async function bashComplete(t: { dir: string; db: string }, script: string, line: string[]) {
  const words = line.map((w) => `'${w}'`).join(" ");
  const out = await inShell("bash", [
    "-c",
    `source "$1"; COMP_WORDS=(queuectl ${words}); COMP_CWORD=${line.length}; _queuectl; ` +
    `printf '%s\\n' "\${COMPREPLY[@]}"`,
    "bash",
    script,
  ], t);
  return out.split("\n").filter((l) => l !== "");
}

for (const shell of ["bash", "zsh", "fish"]) {
  Deno.test({
    name: `[completions ${shell}] should print a script that ${shell} -n accepts`,
    ignore: !has(shell), // zsh and fish are checked where they are installed
    fn: async () => {
      await using t = await tempDb();
      const script = await cliOk(t.db, ["completions", shell]);
      assert.match(script, /queuectl __complete/);
      const file = `${t.dir}/script`;
      await Deno.writeTextFile(file, script);
      await inShell(shell, ["-n", file], t);
    },
  });
}

Deno.test("[completions bash] should propose commands, flags and job ids", async () => {
  await using t = await tempDb();
  await cliOk(t.db, ["enqueue", '{"id":"build-1","command":"true"}']);
  await cliOk(t.db, ["enqueue", '{"id":"build-2","command":"true"}']);
  await cliOk(t.db, ["enqueue", '{"id":"test-1","command":"true"}']);
  const script = `${t.dir}/queuectl.bash`;
  await Deno.writeTextFile(script, await cliOk(t.db, ["completions", "bash"]));
  assert.deepEqual(await bashComplete(t, script, ["enq"]), ["enqueue"]);
  assert.deepEqual(await bashComplete(t, script, ["worker", "start", "--dr"]), ["--drain"]);
  assert.deepEqual(await bashComplete(t, script, ["worker", "st"]), ["start", "stop"]);
  assert.deepEqual(await bashComplete(t, script, ["completions", "z"]), ["zsh"]);
  assert.deepEqual((await bashComplete(t, script, ["show", "build"])).sort(), [
    "build-1",
    "build-2",
  ]);
  // `cancel` acts on pending jobs: all three; `dlq retry` on dead ones: none.
  assert.equal(
    (await bashComplete(t, script, ["cancel", ""])).filter((w) => !w.startsWith("-"))
      .length,
    3,
  );
  assert.deepEqual(
    (await bashComplete(t, script, ["dlq", "retry", ""])).filter((w) => !w.startsWith("-")),
    [],
  );
  // A flag's value is not a job id.
  assert.deepEqual(await bashComplete(t, script, ["logs", "--attempt", ""]), []);
});

Deno.test({
  name: "[completions fish] should propose commands with their descriptions",
  ignore: !has("fish"),
  fn: async () => {
    await using t = await tempDb();
    const script = `${t.dir}/queuectl.fish`;
    await Deno.writeTextFile(script, await cliOk(t.db, ["completions", "fish"]));
    const out = await inShell(
      "fish",
      ["-c", `source $argv[1]; complete -C 'queuectl enq'`, script],
      t,
    );
    assert.match(out, /^enqueue\tAdd a job/m);
  },
});

Deno.test({
  name: "[completions] should create no database when completing job ids",
  // A missing SQLite file stays missing; a PostgreSQL test schema exists from the start.
  ignore: sqliteOnly,
  fn: async () => {
    await using t = await tempDb();
    const r = await runCli(t.db, ["__complete", "bash", "show", ""]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, "");
    // The flags are still proposed; no id, no store.
    assert.match(r.stdout, /^--db$/m);
    const status = await runCli(t.db, ["status"]);
    assert.equal(status.code, 1, "status should find no queue");
  },
});

Deno.test("[completions] should refuse an unknown shell in one line", async () => {
  await using t = await tempDb();
  const r = await runCli(t.db, ["completions", "powershell"]);
  assertOneLineError(r, 2, /the shell must be bash, zsh or fish, got "powershell"/);
});

Deno.test("[completions bash] should propose queue names and schedule names", async () => {
  await using t = await tempDb();
  await cliOk(t.db, ["enqueue", "--queue", "emails", "--", "true"]);
  await cliOk(t.db, ["queue", "pause", "reports"]);
  await cliOk(t.db, ["schedule", "add", "nightly", "@daily", "--", "true"]);
  const script = `${t.dir}/queuectl.bash`;
  await Deno.writeTextFile(script, await cliOk(t.db, ["completions", "bash"]));
  const words = async (line: string[]) =>
    (await bashComplete(t, script, line)).filter((w) => !w.startsWith("-")).sort();
  assert.deepEqual(await words(["enqueue", "--queue", ""]), ["default", "emails", "reports"]);
  assert.deepEqual(await words(["worker", "start", "--queue", "e"]), ["emails"]);
  assert.deepEqual(await words(["list", "--queue", "r"]), ["reports"]);
  assert.deepEqual(await words(["queue", "resume", ""]), ["default", "emails", "reports"]);
  // Only the first argument of queue set is a queue.
  assert.deepEqual(await words(["queue", "set", "reports", ""]), []);
  assert.deepEqual(await words(["schedule", "pause", "n"]), ["nightly"]);
  assert.deepEqual(await words(["schedule", "remove", ""]), ["nightly"]);
  // Another flag's value is not a queue.
  assert.deepEqual(await words(["enqueue", "--retries", ""]), []);
});
