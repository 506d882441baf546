/**
 * Help and input that fit a terminal: help lines within 80 columns, `queuectl help COMMAND`, a
 * group without its command (help, exit 2), and global flags before the command.
 */
import assert from "node:assert/strict";
import { fitHelp } from "../lib/cli/format.ts";
import { displayWidth } from "../lib/cli/width.ts";
import {
  allDone,
  assertOneLineError,
  cliCommand,
  cliOk,
  COMMANDS,
  runCli,
  tempDb,
} from "./helpers.ts";

Deno.test("[help] every help line fits in 80 columns", async (t) => {
  await using tmp = await tempDb();
  const runs = await allDone(COMMANDS.map((words) => runCli(tmp.db, [...words, "--help"])));
  for (const [i, words] of COMMANDS.entries()) {
    await t.step(`queuectl ${[...words, "--help"].join(" ")}`, () => {
      assert.equal(runs[i].code, 0, runs[i].stderr);
      for (const line of runs[i].stdout.split("\n")) {
        assert.ok(displayWidth(line) <= 80, `${displayWidth(line)} columns: ${line}`);
      }
    });
  }
});

Deno.test("[help] fitHelp wraps usage under its flags and rows under their descriptions", () => {
  const help = [
    "USAGE",
    `  queuectl thing ${Array.from({ length: 12 }, (_, i) => `[--flag${i} value]`).join(" ")}`,
    "",
    "FLAGS",
    `  -x [--long]  ${"word ".repeat(20).trim()}     [default = 5]`,
    "     [--json]  Print JSON                        [default = false]",
  ].join("\n");
  const lines = fitHelp(help).split("\n");
  for (const l of lines) assert.ok(displayWidth(l) <= 80, l);
  assert.match(lines[1], /^ {2}queuectl thing \[--flag0 value\]/);
  assert.match(lines[2], /^ {17}\[--flag\d+ value\]/); // under the first flag, never mid-bracket
  const flags = lines.slice(lines.indexOf("FLAGS") + 1);
  assert.match(flags[0], /^ {2}-x \[--long\] {2}word/);
  assert.match(flags[1], /^ {15}word .*\[default = 5\]$/);
  assert.equal(flags[2], "     [--json]  Print JSON");
});

Deno.test("[help] queuectl help [COMMAND…] prints that help and exits 0", async () => {
  await using t = await tempDb();
  const [help, helpList, listHelp, helpWorkerStart, workerStartHelp] = await allDone([
    runCli(t.db, ["help"]),
    runCli(t.db, ["help", "list"]),
    runCli(t.db, ["list", "--help"]),
    runCli(t.db, ["help", "worker", "start"]),
    runCli(t.db, ["worker", "start", "--help"]),
  ]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^USAGE\n {2}queuectl enqueue/);
  assert.deepEqual(helpList, listHelp);
  assert.deepEqual(helpWorkerStart, workerStartHelp);
  assert.equal(helpList.code, 0);
});

Deno.test("[help] a group without its command prints the group's help and exits 2", async () => {
  await using t = await tempDb();
  const groups = [["worker"], ["dlq"], ["config"], ["worker", "--db", t.db]];
  const runs = await allDone(groups.map((g) => runCli(t.db, g)));
  const commands: Record<string, string> = {
    worker: "start, stop or list",
    dlq: "list or retry",
    config: "get, set, unset, list or show",
  };
  for (const [i, g] of groups.entries()) {
    assert.equal(runs[i].code, 2, g.join(" "));
    assert.match(runs[i].stdout, new RegExp(`^USAGE\\n {2}queuectl ${g[0]} `), g.join(" "));
    assert.equal(
      runs[i].stderr,
      `queuectl: "${g[0]}" needs a command: ${commands[g[0]]}; see queuectl ${g[0]} --help\n`,
    );
  }
  // An unknown flag after a group is the parser's to report, as anywhere else.
  assertOneLineError(await runCli(t.db, ["worker", "-x"]), 2, /^queuectl: unknown flag "-x"/);
  // With --help it is a request, not a mistake.
  assert.equal((await runCli(t.db, ["worker", "--help"])).code, 0);
  // --db without its value and nothing after it: the root help, and what is missing.
  const [exe, ...pre] = cliCommand();
  const bare = await new Deno.Command(exe, {
    args: [...pre, "--db"],
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(bare.code, 2);
  assert.match(new TextDecoder().decode(bare.stdout), /^USAGE\n/);
  assert.equal(
    new TextDecoder().decode(bare.stderr),
    "queuectl: --db needs a value: a database file or a postgres:// URL\n",
  );
});

Deno.test("[cli] --db and --no-color are accepted before the command", async () => {
  await using t = await tempDb();
  const other = `${t.dir}/other.db`;
  await cliOk(t.db, ["--db", other, "enqueue", "--id", "x", "--", "true"]);
  const [status, list, noColor, after, eq] = await allDone([
    cliOk(t.db, ["--db", other, "status", "--json"]),
    cliOk(t.db, ["--db", other, "list", "--json"]),
    cliOk(t.db, ["--no-color", "--db", other, "list"]),
    cliOk(t.db, ["list", "--no-color", "--db", other]),
    cliOk(t.db, [`--db=${other}`, "show", "x", "--json"]),
  ]);
  assert.equal(JSON.parse(status).db, other);
  assert.deepEqual(JSON.parse(list).map((j: { id: string }) => j.id), ["x"]);
  assert.match(noColor, /^x\s+pending/m);
  assert.match(after, /^x\s+pending/m);
  assert.equal(JSON.parse(eq).id, "x");
  // Before --help or --version (no command) it changes nothing.
  assert.equal(await cliOk(t.db, ["--db", other, "--version"]), await cliOk(t.db, ["--version"]));
  assert.match(await cliOk(t.db, ["--db", other, "--help"]), /^USAGE\n/);
  // The default database was never touched.
  assert.equal(await Deno.stat(t.db).then(() => true, () => false), false);
});

Deno.test("[help] config set --help says max-retries counts retries after the first attempt", async () => {
  await using t = await tempDb();
  const help = await cliOk(t.db, ["config", "set", "--help"]);
  assert.match(
    help,
    /^max-retries counts retries after the first attempt: 3 means up to 4 attempts\.$/m,
  );
});
