/**
 * Fitting a terminal: tables cut to the terminal's width (or COLUMNS) by display width, where CJK
 * and emoji take two columns; colour only on a terminal that wants it.
 */
import assert from "node:assert/strict";
import { table } from "../lib/cli/format.ts";
import { displayWidth, truncate } from "../lib/cli/width.ts";
import { allDone, cliCommand, cliOk, tempDb } from "./helpers.ts";

Deno.test("[width] displayWidth counts CJK and emoji as two columns, marks as none", () => {
  const cases: Array<[string, number]> = [
    ["abc", 3],
    ["日本語", 6],
    ["한국어", 6],
    ["ｆｕｌｌ", 8],
    ["😀", 2],
    ["❤️", 2],
    ["👨‍👩‍👧", 2],
    ["🇫🇷", 2],
    ["e\u0301", 1],
    ["a\u200bb", 2],
    ["\x1b[31mdead\x1b[0m", 4],
  ];
  for (const [text, w] of cases) assert.equal(displayWidth(text), w, JSON.stringify(text));
});

Deno.test("[width] truncate cuts between words with …, and only a lone long word inside", () => {
  const cases: Array<[string, number, string]> = [
    ["echo hello world", 16, "echo hello world"],
    ["echo hello world", 15, "echo hello…"],
    ["echo hello world", 11, "echo hello…"],
    ["echo hello world", 10, "echo…"],
    ["a-very-long-identifier", 10, "a-very-lo…"],
    ["日本語 テスト", 12, "日本語…"],
    ["日本語テスト", 7, "日本語…"],
    ["😀😀😀", 4, "😀…"],
  ];
  for (const [text, w, cut] of cases) {
    assert.equal(truncate(text, w), cut, `${JSON.stringify(text)} in ${w}`);
    assert.ok(displayWidth(truncate(text, w)) <= w);
  }
});

Deno.test("[width] table aligns by display width and cuts the fit columns to the width", () => {
  const rows = [["日本", "echo 日本語 and more words"], ["ab", "true"]];
  const wide = table(["ID", "COMMAND"], rows, { width: Infinity });
  assert.deepEqual(wide.split("\n").map((l) => l.split(/\s{2,}/)), [
    ["ID", "COMMAND"],
    ["日本", "echo 日本語 and more words"],
    ["ab", "true"],
  ]);
  const cols = (t: string) =>
    t.split("\n").map((l) => displayWidth(l.slice(0, l.indexOf(l.split(/\s{2,}/)[1]))));
  assert.deepEqual(new Set(cols(wide)).size, 1, wide);

  const narrow = table(["ID", "COMMAND"], rows, { width: 20 });
  for (const line of narrow.split("\n")) assert.ok(displayWidth(line) <= 20, line);
  assert.equal(narrow.split("\n")[1], "日本  echo 日本語…");
  assert.equal(new Set(cols(narrow)).size, 1, narrow);
});

Deno.test("[list] a table fits COLUMNS: commands cut at a word with …, then ids", async () => {
  await using t = await tempDb();
  const long = "echo one two three four five six seven eight nine ten eleven twelve thirteen";
  const id = "a-rather-long-job-identifier-of-forty-chars";
  await cliOk(t.db, ["enqueue", "--id", id, "--", long]);
  await cliOk(t.db, ["enqueue", "--id", "日本語", "--", "echo 日本語"]);
  const [piped, fitted, json] = await allDone([
    cliOk(t.db, ["list"]),
    cliOk(t.db, ["list"], { env: { COLUMNS: "120" } }),
    cliOk(t.db, ["list", "--json"], { env: { COLUMNS: "120" } }),
  ]);
  // In a pipe without COLUMNS the command and the id are whole; with COLUMNS the id is cut
  // only after the command and error columns are as narrow as they go.
  assert.match(piped, new RegExp(`${long}$`, "m"));
  assert.match(piped, new RegExp(`^${id} `, "m"));
  assert.match(fitted, new RegExp(`^${id} `, "m"), "a wide enough terminal shows the whole id");
  const narrow = await cliOk(t.db, ["list"], { env: { COLUMNS: "80" } });
  assert.match(narrow, /^a-rather-\S*… /m, "a narrow one cuts it last");
  for (const line of fitted.trimEnd().split("\n")) {
    assert.ok(displayWidth(line) <= 120, `${displayWidth(line)}: ${line}`);
  }
  const row = fitted.split("\n").find((l) => l.startsWith("a-rather"))!;
  const shown = row.slice(row.indexOf("echo one"));
  assert.match(shown, /^echo one( \w+)*…$/, "cut after a whole word");
  assert.ok(long.startsWith(shown.slice(0, -1)));
  // Columns line up by display width: STATE starts at one column on every line.
  const stateAt = fitted.trimEnd().split("\n").map((l) =>
    displayWidth(l.slice(0, l.search(/\b(STATE|pending)\b/)))
  );
  assert.equal(new Set(stateAt).size, 1, fitted);
  // --json has everything whole.
  const jobs = JSON.parse(json) as Array<{ id: string; command: string }>;
  assert.deepEqual(jobs.map((j) => j.id).sort(), [id, "日本語"].sort());
  assert.ok(jobs.some((j) => j.command === long));
});

/** Runs the CLI under a pseudo-terminal (`script`), so that stdout is a terminal. */
async function onTerminal(db: string, args: string[], env: Record<string, string>) {
  const quote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
  const line = `stty cols 90 2>/dev/null; ${cliCommand().concat(args).map(quote).join(" ")}`;
  const { code, stdout } = await new Deno.Command("script", {
    args: ["-qec", line, "/dev/null"],
    env: { QUEUECTL_DB: db, TERM: "xterm", NO_COLOR: "", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code, stdout: new TextDecoder().decode(stdout) };
}

const hasScript = new Deno.Command("script", { args: ["--version"] }).output().then(
  (o) => o.success,
  () => false,
);

Deno.test({
  name: "[color] on a terminal, states are coloured unless NO_COLOR, TERM=dumb or --no-color",
  ignore: !(await hasScript),
  fn: async () => {
    await using t = await tempDb();
    await cliOk(t.db, ["enqueue", "--id", "x", "--", `echo ${"word ".repeat(30)}`]);
    const [plain, noColor, dumb, flag] = await allDone([
      onTerminal(t.db, ["list"], {}),
      onTerminal(t.db, ["list"], { NO_COLOR: "1" }),
      onTerminal(t.db, ["list"], { TERM: "dumb" }),
      onTerminal(t.db, ["--no-color", "list"], {}),
    ]);
    assert.equal(plain.code, 0, plain.stdout);
    assert.ok(plain.stdout.includes("\x1b[36mpending\x1b[0m"), JSON.stringify(plain.stdout));
    for (const r of [noColor, dumb, flag]) {
      assert.equal(r.code, 0, r.stdout);
      assert.ok(!r.stdout.includes("\x1b["), JSON.stringify(r.stdout));
    }
    // The terminal is 90 columns: the table fits it.
    for (const line of noColor.stdout.trimEnd().split(/\r?\n/)) {
      assert.ok(displayWidth(line) <= 90, `${displayWidth(line)}: ${line}`);
    }
  },
});
