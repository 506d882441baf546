/**
 * What `queuectl enqueue` takes as a job, end to end: a JSON object or array as one argument, a
 * command only after `--`, job files as NDJSON or a JSON array, and the spec limits as the CLI
 * reports them. Text that is not JSON is never queued as a shell command.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { allDone, assertOneLineError, cliOk, openDb, runCli, tempDb } from "./helpers.ts";
import type { Job } from "../lib/store/store.ts";

async function allJobs(db: string): Promise<Job[]> {
  const s = await openDb(db);
  try {
    return await s.listJobs({ limit: 1_000_000 });
  } finally {
    await s.close();
  }
}

const BOTH_FORMS = RegExp.escape(
  `queuectl: enqueue takes a JSON job ('{"command":"…"}') or a command after --: ` +
    `enqueue [flags] -- COMMAND…`,
);

Deno.test("[enqueue] text that is not a JSON job is refused with both forms, never queued as a command", async (t) => {
  await using tmp = await tempDb();
  await cliOk(tmp.db, ["init"]); // before the calls below run side by side
  const ndjson = join(tmp.dir, "jobs.ndjson");
  await Deno.writeTextFile(ndjson, '{"command":"echo from the file"}\n');
  const cases: Array<[string, string[], string]> = [
    ["plain words", ["not json at all"], "; got text that is not JSON"],
    ["JSON null", ["null"], "; got JSON null"],
    ["a JSON string", ['"x"'], "; got a JSON string"],
    ["a JSON number", ["42"], "; got a JSON number"],
    ["a JSON boolean", ["true"], "; got a JSON boolean"],
    ["an empty JSON array", ["[]"], "; got an empty JSON array"],
    ["a JSON array of words", ['["echo","hi"]'], "; got a JSON array without a job object in it"],
    ["a JSON array of arrays", ["[[1.5,null]]"], "; got a JSON array without a job object in it"],
    ["an empty argument", [""], "; got an empty argument"],
    ["- meant as stdin", ["-"], "; to read jobs from stdin, use --file -"],
    [
      "a file name without --file",
      [ndjson],
      `; to enqueue the jobs in the file ${ndjson}, use --file ${ndjson}`,
    ],
    ["a command without --", ["echo", "hi"], "; got 2 arguments without --"],
    [
      "a command without -- after flags",
      ["--id", "a", "echo", "hi"],
      "; got 2 arguments without --",
    ],
    ["words on both sides of --", ["echo", "--", "hi"], "; got 1 argument before the --"],
    ["a brace group without --", ["{", "echo", "a;", "}"], "; got 4 arguments without --"],
    ["a test without --", ["[", "$x", "=", "y", "]"], "; got 5 arguments without --"],
  ];
  const results = await allDone(cases.map(([, args]) => runCli(tmp.db, ["enqueue", ...args])));
  for (const [i, [name, , tail]] of cases.entries()) {
    await t.step(`${name} → exit 2`, () => {
      assertOneLineError(results[i], 2, new RegExp(`^${BOTH_FORMS}${RegExp.escape(tail)}$`));
    });
  }
  assert.deepEqual(await allJobs(tmp.db), []);
});

Deno.test("[enqueue] JSON that does not parse shows where it broke and both forms", async () => {
  await using t = await tempDb();
  assertOneLineError(
    await runCli(t.db, ["enqueue", '{"command":"echo hi",}']),
    2,
    new RegExp(
      `^queuectl: job spec is not valid JSON: .* at column 22; quote it in single quotes, like ` +
        `'\\{"command":"echo hi"\\}', or give a command after --: enqueue \\[flags\\] -- COMMAND…$`,
    ),
  );
  assert.deepEqual(await allJobs(t.db), []);
});

Deno.test("[enqueue] a JSON job after -- is refused: after -- comes a command", async () => {
  await using t = await tempDb();
  assertOneLineError(
    await runCli(t.db, ["enqueue", "--", '{"command":"echo hi"}']),
    2,
    /^queuectl: after -- comes a shell command, but this is a JSON job; give it without --/,
  );
  assert.deepEqual(await allJobs(t.db), []);
});

Deno.test("[enqueue] the flags form takes every word after -- as the command, each kept as given", async () => {
  await using t = await tempDb();
  await cliOk(t.db, ["init"]); // before the calls below run side by side
  await allDone([
    cliOk(t.db, ["enqueue", "--id", "a", "--retries", "2", "--", "echo", "hi"]),
    cliOk(t.db, ["enqueue", "--id", "b", "--", "{", "echo", "a;", "echo", "b;", "}"]),
    cliOk(t.db, ["enqueue", "--id", "c", "--", "[", "-f", "x", "]"]),
    cliOk(t.db, ["enqueue", "--id", "d", "--", "--", "not", "a", "flag"]),
    cliOk(t.db, ["enqueue", "--id", "e", "--", "not json at all"]),
    cliOk(t.db, ["enqueue", "--id", "f", "--", "[ -f x ]"]),
  ]);
  const jobs = await allJobs(t.db);
  assert.deepEqual(
    Object.fromEntries(jobs.map((j) => [j.id, j.command])),
    {
      a: "echo hi",
      b: "'{' echo 'a;' echo 'b;' '}'",
      c: "'[' -f x ']'",
      d: "-- not a flag",
      e: "not json at all",
      f: "[ -f x ]",
    },
  );
  assert.equal(jobs.find((j) => j.id === "a")!.maxRetries, 2);
});

Deno.test("[enqueue] a JSON array argument stores every job, or none", async () => {
  await using t = await tempDb();
  assert.equal(
    await cliOk(t.db, ["enqueue", '[{"id":"a","command":"echo 1"},{"id":"b","cmd":"echo 2"}]']),
    "enqueued 2 jobs\n",
  );
  const before = await allJobs(t.db);
  assert.deepEqual(before.map((j) => [j.id, j.command]), [["a", "echo 1"], ["b", "echo 2"]]);
  const [bad, notObject] = await allDone([
    runCli(t.db, ["enqueue", '[{"id":"c","command":"echo 3"},{"id":"d"}]']),
    runCli(t.db, ["enqueue", '[{"id":"c","command":"echo 3"},"echo 4"]']),
  ]);
  assertOneLineError(bad, 2, /^queuectl: job spec element 2: missing "command"/);
  assertOneLineError(
    notObject,
    2,
    /^queuectl: job spec element 2: a job spec must be a JSON object .*, got string "echo 4"$/,
  );
  assert.deepEqual(await allJobs(t.db), before);
});

const PRETTY = `[
  {
    "id": "p1",
    "command": "echo one"
  },
  {
    "id": "p2",
    "command": "echo two",
    "max_retries": 5
  }
]
`;

Deno.test("[enqueue] --file takes a pretty-printed JSON array, from a file or stdin", async () => {
  await using t = await tempDb();
  const file = join(t.dir, "jobs.json");
  await Deno.writeTextFile(file, PRETTY);
  const other = join(t.dir, "other.db");
  const [fromFile, fromStdin] = await allDone([
    cliOk(t.db, ["enqueue", "--file", file]),
    cliOk(other, ["enqueue", "--file", "-"], { stdin: PRETTY }),
  ]);
  assert.equal(fromFile, "enqueued 2 jobs\n");
  assert.equal(fromStdin, "enqueued 2 jobs\n");
  for (const db of [t.db, other]) {
    const jobs = await allJobs(db);
    assert.deepEqual(jobs.map((j) => [j.id, j.command, j.maxRetries]), [
      ["p1", "echo one", 3],
      ["p2", "echo two", 5],
    ]);
  }
});

Deno.test("[enqueue] a bad JSON array file stores nothing and names the element and its line", async (t) => {
  await using tmp = await tempDb();
  await cliOk(tmp.db, ["enqueue", '{"id":"old","command":"true"}']);
  const before = await allJobs(tmp.db);
  const cases: Array<{ name: string; stdin: string; code: number; error: RegExp }> = [
    {
      name: "a bad field in element 2",
      stdin: PRETTY.replace('"max_retries": 5', '"max_retries": -1'),
      code: 2,
      error:
        /^queuectl: stdin element 2 \(line 6\): "max_retries" must be an integer between 0 and 100/,
    },
    {
      name: "invalid JSON",
      stdin: PRETTY.replace('"echo one"', '"echo one",'),
      code: 2,
      error:
        /^queuectl: stdin is not valid JSON: .* at line 5, column 3; a file holds one JSON object per line \(NDJSON\) or a JSON array of them$/,
    },
    {
      name: "an id twice",
      stdin: PRETTY.replace('"p2"', '"p1"'),
      code: 2,
      error: /^queuectl: stdin element 2 \(line 6\): id "p1" appears twice \(first as element 1\)/,
    },
    {
      name: "an id already stored",
      stdin: PRETTY.replace('"p2"', '"old"'),
      code: 1,
      error: /job "old" already exists.*nothing from this batch was stored/,
    },
    {
      name: "an empty array",
      stdin: "[\n]\n",
      code: 2,
      error: /^queuectl: stdin is an empty array/,
    },
  ];
  const results = await allDone(
    cases.map((c) => runCli(tmp.db, ["enqueue", "--file", "-"], { stdin: c.stdin })),
  );
  for (const [i, c] of cases.entries()) {
    await t.step(c.name, () => {
      assertOneLineError(results[i], c.code, c.error);
      // A file has no shell around it: no advice about quoting.
      assert.doesNotMatch(results[i].stderr, /single quotes|shell/);
    });
  }
  assert.deepEqual(await allJobs(tmp.db), before);
});

Deno.test("[enqueue] a bad NDJSON line names the line and gives no quoting advice", async () => {
  await using t = await tempDb();
  const r = await runCli(t.db, ["enqueue", "--file", "-"], {
    stdin: '{"command":"echo 1"}\n{"command":"echo 2",}\n',
  });
  assertOneLineError(
    r,
    2,
    /^queuectl: stdin line 2 is not valid JSON: .* at column 21; a file holds one JSON object per line/,
  );
  assert.doesNotMatch(r.stderr, /single quotes/);
  assert.deepEqual(await allJobs(t.db), []);
});

Deno.test("[enqueue] spec limits are refused at enqueue, naming the bound, nothing stored", async (t) => {
  await using tmp = await tempDb();
  await cliOk(tmp.db, ["init"]); // before the calls below run side by side
  const big = "x".repeat(131_070);
  const cases: Array<{ name: string; args: string[]; stdin?: string; error: RegExp }> = [
    {
      name: "an id with U+202E",
      args: ["--id", "invoice\u202Egpj.exe", "--", "true"],
      error:
        /^queuectl: --id must be 1 to 200 printable characters; it holds the invisible format character U\+202E at position 8, which can hide or reorder text where ids are shown$/,
    },
    {
      name: "an id with U+200B in JSON",
      args: ['{"id":"a\\u200bb","command":"true"}'],
      error: /^queuectl: "id" must be .* invisible format character U\+200B at position 2/,
    },
    {
      name: "one env variable too large to exec",
      args: ["--file", "-"],
      stdin: JSON.stringify({ command: "true", env: { BIG: big } }),
      error:
        /^queuectl: stdin line 1: "env\.BIG" is 131074 bytes as NAME=VALUE; one variable may hold at most 131071 bytes \(128 KiB\)/,
    },
    {
      name: "command and env too large together",
      args: ["--file", "-"],
      stdin: JSON.stringify({
        command: "true",
        env: Object.fromEntries(Array.from({ length: 5 }, (_, i) => [`V${i}`, big.slice(10_000)])),
      }),
      error:
        /^queuectl: stdin line 1: "command" and "env" hold 605375 bytes together; a job may pass at most 524288 bytes \(512 KiB\)/,
    },
    {
      name: "a timeout over the cap",
      args: ["--timeout", "31d", "--", "true"],
      error:
        /^queuectl: --timeout may be at most 30d, the cap of config job-timeout too; got string "31d"$/,
    },
    {
      name: "a run_at without an offset",
      args: ["--run-at", "2030-01-02T09:30", "--", "true"],
      error:
        /^queuectl: --run-at "2030-01-02T09:30" has no UTC offset; add Z for UTC or the offset of the time zone you mean/,
    },
  ];
  const results = await allDone(
    cases.map((c) =>
      runCli(tmp.db, ["enqueue", ...c.args], c.stdin === undefined ? {} : { stdin: c.stdin })
    ),
  );
  for (const [i, c] of cases.entries()) {
    await t.step(c.name, () => {
      assertOneLineError(results[i], 2, c.error);
      assert.doesNotMatch(results[i].stderr, /\u202E/, "the character is named, never printed");
    });
  }
  assert.deepEqual(await allJobs(tmp.db), []);
});

Deno.test("[enqueue] a job that fits the exec limits is stored whole", async () => {
  await using t = await tempDb();
  const value = "x".repeat(131_067); // "BIG=" + value: 131,071 bytes
  await cliOk(t.db, ["enqueue", "--file", "-"], {
    stdin: JSON.stringify({ id: "big", command: "true", env: { BIG: value } }),
  });
  const [job] = await allJobs(t.db);
  assert.equal(job.env!.BIG, value);
  // With an offset, --run-at is that instant.
  await cliOk(t.db, ["enqueue", "--id", "at", "--run-at", "2030-01-02T09:30+02:00", "--", "true"]);
  assert.equal(
    (await allJobs(t.db)).find((j) => j.id === "at")!.runAt,
    Date.UTC(2030, 0, 2, 7, 30),
  );
});

Deno.test("[enqueue] --retries and --priority take decimal integers only", async (t) => {
  await using tmp = await tempDb();
  await cliOk(tmp.db, ["init"]); // before the calls below run side by side
  const cases: Array<[string, string]> = [
    ["--retries", "0x10"],
    ["--retries", "1e1"],
    ["--priority", "0b11"],
    ["--priority", "1.0"],
    ["--retries", " "],
  ];
  const results = await allDone(
    cases.map(([flag, v]) => runCli(tmp.db, ["enqueue", flag, v, "--", "true"])),
  );
  for (const [i, [flag, v]] of cases.entries()) {
    await t.step(`${flag} ${v} → exit 2`, () => {
      assertOneLineError(
        results[i],
        2,
        new RegExp(`^queuectl: ${flag} must be an integer, got "${RegExp.escape(v)}"$`),
      );
    });
  }
  assert.deepEqual(await allJobs(tmp.db), []);
  await cliOk(tmp.db, ["enqueue", "--id", "ok", "--retries", "+2", "-p", "-7", "--", "true"]);
  const [job] = await allJobs(tmp.db);
  assert.deepEqual([job.maxRetries, job.priority], [2, -7]);
});
