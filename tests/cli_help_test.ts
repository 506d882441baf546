/**
 * Help text and error output of the real CLI, kept in snapshots (update them with
 * `deno test -u`), and `--help` on every command.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import denoJson from "../deno.json" with { type: "json" };
import { allDone, cliOk, COMMANDS, runCli, tempDb } from "./helpers.ts";

Deno.test("[help] should match the snapshots of queuectl, enqueue and worker --help", async (t) => {
  await using tmp = await tempDb();
  const shown = await allDone(
    [["--help"], ["enqueue", "--help"], ["worker", "--help"]].map(async (args) =>
      `$ queuectl ${args.join(" ")}\n${await cliOk(tmp.db, args)}`
    ),
  );
  await t.assertSnapshot(shown.join("\n"), { serializer: String });
});

Deno.test("[help] should print help and exit 0 at every level", async (t) => {
  await using tmp = await tempDb();
  const runs = await allDone(COMMANDS.flatMap((words) => [
    runCli(tmp.db, [...words, "--help"]),
    runCli(tmp.db, [...words, "-h"]),
  ]));
  for (const [i, words] of COMMANDS.entries()) {
    await t.step(`queuectl ${[...words, "--help"].join(" ")}`, () => {
      const [long, short] = runs.slice(2 * i, 2 * i + 2);
      assert.equal(long.code, 0, long.stderr);
      assert.equal(long.stderr, "");
      assert.match(long.stdout, new RegExp(`^USAGE\\n {2}queuectl ${words.join(" ")}`));
      assert.deepEqual(short, long, "-h is --help");
    });
  }
  // No command at all: the same help, exit 0.
  assert.deepEqual(await runCli(tmp.db, []), runs[0]);
  // The version printed is the one in deno.json.
  assert.deepEqual(await runCli(tmp.db, ["--version"]), {
    code: 0,
    stdout: `${denoJson.version}\n`,
    stderr: "",
  });
  // Nothing is created by asking for help.
  assert.equal(await Deno.stat(tmp.db).then(() => true, () => false), false);
});

Deno.test("[errors] should match the snapshot, one line each, paths normalized", async (t) => {
  await using tmp = await tempDb();
  await cliOk(tmp.db, ["enqueue", '{"id":"job1","command":"true"}']);
  const cases: Array<{ args: string[]; db?: string }> = [
    { args: ["lst"] },
    { args: ["worker", "strat"] },
    { args: ["-x"] },
    { args: ["list", "--jsn"] },
    { args: ["enqueue", "--retries"] },
    { args: ["enqueue", "--retries", "-1", "--", "echo"] },
    { args: ["enqueue", '{"id":"job1","command":"echo again"}'] },
    { args: ["enqueue", '{"command":"x","colour":"red"}'] },
    { args: ["enqueue", "--file", join(tmp.dir, "missing.ndjson")] },
    { args: ["config", "set", "max-retries", "1000"] },
    { args: ["config", "get", "max-retry"] },
    { args: ["list"], db: tmp.dir },
    { args: ["list"], db: "" },
  ];
  const results = await allDone(cases.map((c) => runCli(c.db ?? tmp.db, c.args)));
  const shown = cases.map((c, i) => {
    const r = results[i];
    assert.match(r.stderr, /^queuectl: [^\n]+\n$/, r.stderr);
    assert.equal(r.stdout, "");
    const env = c.db === undefined ? "" : `QUEUECTL_DB=${JSON.stringify(c.db)} `;
    return `$ ${env}queuectl ${c.args.join(" ")}\n${r.stderr}exit ${r.code}\n`;
  });
  await t.assertSnapshot(shown.join("\n").replaceAll(tmp.dir, "<tmp>"), { serializer: String });
});
