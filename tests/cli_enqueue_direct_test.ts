/**
 * `queuectl enqueue` in its common shapes runs without the parser (main.ts, `simpleEnqueueInput`):
 * which inputs take that path, and that each gives what the parser's path gives (exit code,
 * output, message, the jobs stored). The parser's path is forced with a flag that changes nothing
 * (`--no-json`, or `--json=true` for `--json`), which the direct path leaves to the parser.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { simpleEnqueueInput } from "../lib/cli/enqueue_run.ts";
import { allDone, cliOk, openDb, runCli, tempDb } from "./helpers.ts";

Deno.test("[enqueue] the common shapes are read without the parser", () => {
  const taken: Array<[string[], object, string[]]> = [
    [["enqueue", '{"command":"a"}'], { json: false }, ['{"command":"a"}']],
    [["enqueue", "--json", "[]"], { json: true }, ["[]"]],
    [["--db", "x.db", "enqueue", "j"], { json: false, db: "x.db" }, ["j"]],
    [["--db=x.db", "enqueue", "j"], { json: false, db: "x.db" }, ["j"]],
    [["enqueue", "j", "--db", "x.db"], { json: false, db: "x.db" }, ["j"]],
    [["enqueue", "--file", "-"], { json: false, file: "-" }, []],
    [["enqueue", "-f", "jobs.ndjson"], { json: false, file: "jobs.ndjson" }, []],
    [["enqueue", "--file=a=b"], { json: false, file: "a=b" }, []],
    [["enqueue", "--", "echo", "--json", "-f"], { json: false }, ["echo", "--json", "-f"]],
    [["--no-color", "enqueue", "--", "--no-color"], { json: false }, ["--no-color"]],
    [["enqueue", "enqueue"], { json: false }, ["enqueue"]],
    [["enqueue", ""], { json: false }, [""]],
    [["enqueue"], { json: false }, []],
  ];
  for (const [argv, flags, args] of taken) {
    assert.deepEqual(simpleEnqueueInput(argv), { flags, args }, argv.join(" "));
  }
  const left = [
    ["help", "enqueue"],
    ["enqueue", "--help"],
    ["enqueue", "-h"],
    ["enqueue", "--id", "a", "--", "true"],
    ["enqueue", "--no-json", "j"],
    ["enqueue", "--json=true", "j"],
    ["enqueue", "--json", "--json", "j"],
    ["enqueue", "--db", "a", "--db=b", "j"],
    ["--db", "a", "enqueue", "--db", "b", "j"],
    ["enqueue", "--file", "a", "-f", "b"],
    ["enqueue", "--file"],
    ["enqueue", "--file", "--json"],
    ["enqueue", "--file", "--", "x"],
    ["enqueue", "--db", "-x", "j"],
    ["enqueue", "--file="],
    ["enqueue", "--db=a\nb", "j"],
    ["enqueue", "-f=x"],
    ["enqueue", "-"],
    ["enqueue", "-1"],
    ["enqueue", "--DB", "x", "j"],
    ["--file", "x", "enqueue"],
    ["--json", "enqueue", "j"],
    ["x", "enqueue", "j"],
    ["--", "enqueue", "j"],
    ["list", "--search", "enqueue"],
  ];
  for (const argv of left) assert.equal(simpleEnqueueInput(argv), null, argv.join(" "));
});

/** The same call through the parser: a flag that changes nothing and that only it reads. */
function throughParser(args: string[]): string[] {
  const at = args.indexOf("--json");
  if (at !== -1) return args.with(at, "--json=true");
  const enqueue = args.indexOf("enqueue");
  return args.toSpliced(enqueue + 1, 0, "--no-json");
}

/** What a call left behind, with ids and times made comparable between two calls. */
async function outcome(db: string, r: { code: number; stdout: string; stderr: string }) {
  const s = await openDb(db);
  try {
    const jobs = (await s.listJobs({ limit: 1_000 })).map((j) => ({
      id: /^[0-9a-z]{12}$/.test(j.id) ? "<generated>" : j.id,
      command: j.command,
      state: j.state,
      maxRetries: j.maxRetries,
      priority: j.priority,
      // A delay, measured from the enqueue; a run_at far off, as given.
      runAt: j.runAt - j.createdAt < 86_400_000 ? j.runAt - j.createdAt : j.runAt,
      timeoutMs: j.timeoutMs,
      cwd: j.cwd,
      env: j.env,
    }));
    const text = (t: string) =>
      t.replaceAll(db, "<db>").replace(/\b[0-9a-z]{12}\b/g, "<id>")
        .replace(/\d{4}-\d\d-\d\dT[\d:.]+Z/g, "<time>");
    return { code: r.code, stdout: text(r.stdout), stderr: text(r.stderr), jobs };
  } finally {
    await s.close();
  }
}

Deno.test("[enqueue] without the parser: the same exit code, output, message and jobs as with it", async (t) => {
  await using tmp = await tempDb();
  const ndjson = join(tmp.dir, "jobs.ndjson");
  await Deno.writeTextFile(
    ndjson,
    '{"command":"a","priority":2}\n\n{"id":"n1","command":"b","delay":"5m","env":{"K":"v"}}\n',
  );
  const twice = join(tmp.dir, "twice.ndjson");
  await Deno.writeTextFile(twice, '{"id":"x","command":"a"}\n{"id":"x","command":"b"}\n');
  const array = join(tmp.dir, "jobs.json");
  await Deno.writeTextFile(array, '[{"command":"a","timeout":"1m"},{"cmd":"b","retries":0}]');
  const cases: Array<[string, string[], string?]> = [
    ["a JSON job", ["enqueue", '{"id":"j1","command":"echo hi","max_retries":1}']],
    ["a JSON array", ["enqueue", '[{"command":"a"},{"command":"b","cwd":"/"}]']],
    ["--json", ["enqueue", "--json", '{"command":"a","run_at":"2030-01-01T00:00:00Z"}']],
    ["an NDJSON file", ["enqueue", "--file", ndjson]],
    ["a JSON array file, -f", ["enqueue", "-f", array]],
    ["--file=PATH", ["enqueue", `--file=${ndjson}`]],
    ["stdin", ["enqueue", "--file", "-"], '{"command":"from stdin"}\n'],
    ["a command after --", ["enqueue", "--", "echo", "a", "b"]],
    ["--db before the command", ["--db", "<db>", "enqueue", '{"command":"a"}']],
    ["no job", ["enqueue"]],
    ["invalid JSON", ["enqueue", '{"command":"a",}']],
    ["an unknown field", ["enqueue", '{"command":"a","nope":1}']],
    ["two words without --", ["enqueue", "echo", "hi"]],
    ["a JSON job after --", ["enqueue", "--", '{"command":"a"}']],
    ["a duplicate id in a file", ["enqueue", "--file", twice]],
    ["a missing file", ["enqueue", "--file", join(tmp.dir, "missing.ndjson")]],
    ["a missing directory", ["enqueue", '{"command":"a","cwd":"/no/such/dir"}']],
    ["a file and a job", ["enqueue", "--file", ndjson, '{"command":"a"}']],
    ["--db naming a directory", ["enqueue", "--db", tmp.dir, '{"command":"a"}']],
  ];
  const results = await allDone(cases.map(async ([, args, stdin], i) => {
    const run = async (path: "direct" | "parser") => {
      const db = join(tmp.dir, `case${i}-${path}.db`);
      await cliOk(db, ["init"]);
      const argv = args.map((a) => a === "<db>" ? db : a);
      const r = await runCli(db, path === "direct" ? argv : throughParser(argv), { stdin });
      return await outcome(db, r);
    };
    return { direct: await run("direct"), parser: await run("parser") };
  }));
  for (const [i, [name, args]] of cases.entries()) {
    await t.step(name, () => {
      assert.ok(simpleEnqueueInput(args) !== null, "the case takes the direct path");
      assert.deepEqual(results[i].direct, results[i].parser);
    });
  }
  // The cases cover both outcomes.
  assert.ok(results.some((r) => r.direct.code === 0 && r.direct.jobs.length > 0));
  assert.ok(results.some((r) => r.direct.code === 2));
  assert.ok(results.some((r) => r.direct.code === 1));
});
