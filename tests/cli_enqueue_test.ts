/**
 * `queuectl enqueue` end to end: the real CLI as a subprocess against a temporary database, with
 * every stored field read back from the store.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { allDone, assertOneLineError, cliOk, openDb, runCli, tempDb } from "./helpers.ts";
import type { Job } from "../lib/store/store.ts";

async function getJob(db: string, id: string): Promise<Job> {
  const s = await openDb(db);
  try {
    const job = await s.getJob(id);
    assert.ok(job, `job ${id} should be stored`);
    return job;
  } finally {
    await s.close();
  }
}

async function allJobs(db: string): Promise<Job[]> {
  const s = await openDb(db);
  try {
    return await s.listJobs({ limit: 1_000_000 });
  } finally {
    await s.close();
  }
}

Deno.test("[enqueue] should store a JSON spec with every field as given", async () => {
  await using t = await tempDb();
  const before = Date.now();
  const out = await cliOk(t.db, [
    "enqueue",
    JSON.stringify({
      id: "job1",
      command: "echo hello",
      max_retries: 5,
      priority: 7,
      delay: "90s",
      timeout: "10m",
      cwd: "/tmp",
      env: { GREETING: "hi", N: 3 },
    }),
  ]);
  assert.equal(out, "enqueued job1 (runs in 1m30s)\n");
  const job = await getJob(t.db, "job1");
  assert.equal(job.command, "echo hello");
  assert.equal(job.state, "pending");
  assert.equal(job.attempts, 0);
  assert.equal(job.maxRetries, 5);
  assert.equal(job.priority, 7);
  assert.equal(job.timeoutMs, 600_000);
  assert.equal(job.cwd, "/tmp");
  assert.deepEqual(job.env, { GREETING: "hi", N: "3" });
  assert.ok(job.runAt >= before + 90_000 && job.runAt <= Date.now() + 90_000, `runAt ${job.runAt}`);
});

Deno.test("[enqueue] should generate an id when the spec has none and print it", async () => {
  await using t = await tempDb();
  const [a, b] = await allDone([
    cliOk(t.db, ["enqueue", '{"command":"echo Hello World"}']),
    cliOk(t.db, ["enqueue", '{"command":"sleep 3"}']),
  ]);
  const ids = [a, b].map((out) => /^enqueued ([0-9a-z]{12})\n$/.exec(out)?.[1]);
  assert.ok(ids[0] && ids[1], `printed ${a} ${b}`);
  assert.notEqual(ids[0], ids[1]);
  const jobs = await allJobs(t.db);
  assert.deepEqual(jobs.map((j) => j.id).sort(), [...ids].sort());
  // Defaults: the config's max-retries (3), no timeout, runs now.
  for (const j of jobs) {
    assert.equal(j.maxRetries, 3);
    assert.equal(j.timeoutMs, 0);
    assert.equal(j.priority, 0);
    assert.equal(j.runAt, j.createdAt);
  }
});

Deno.test("[enqueue] should take a job from flags and the command after --", async () => {
  await using t = await tempDb();
  const before = Date.now();
  assert.equal(
    await cliOk(t.db, [
      "enqueue",
      "--id",
      "j1",
      "--retries",
      "2",
      "--delay",
      "10s",
      "--",
      "echo",
      "hi",
    ]),
    "enqueued j1 (runs in 10s)\n",
  );
  const j1 = await getJob(t.db, "j1");
  assert.equal(j1.command, "echo hi");
  assert.equal(j1.maxRetries, 2);
  assert.ok(j1.runAt >= before + 10_000 && j1.runAt <= Date.now() + 10_000, `runAt ${j1.runAt}`);

  await cliOk(t.db, [
    "enqueue",
    "--id=j2",
    "-p",
    "-3",
    "--timeout",
    "2m",
    "--env",
    "A=1",
    "--env",
    "B=x=y",
    "--run-at",
    "2030-01-02T03:04:05Z",
    "--",
    "sh",
    "-c",
    "echo $A",
  ]);
  const j2 = await getJob(t.db, "j2");
  assert.equal(j2.command, "sh -c 'echo $A'");
  assert.equal(j2.priority, -3);
  assert.equal(j2.timeoutMs, 120_000);
  assert.deepEqual(j2.env, { A: "1", B: "x=y" });
  assert.equal(j2.runAt, Date.parse("2030-01-02T03:04:05Z"));
});

Deno.test("[enqueue] should run jobs in the directory enqueue ran in, unless told otherwise", async () => {
  await using t = await tempDb();
  const sub = join(t.dir, "work");
  await Deno.mkdir(sub);
  const cwd = await Deno.realPath(sub);
  await Deno.mkdir(join(sub, "out"));
  await allDone([
    cliOk(t.db, ["enqueue", '{"id":"here","command":"pwd"}'], { cwd }),
    cliOk(t.db, ["enqueue", '{"id":"rel","command":"pwd","cwd":"out"}'], { cwd }),
    cliOk(t.db, ["enqueue", "--id", "flag", "--cwd", "/var", "--", "pwd"], { cwd }),
  ]);
  assert.equal((await getJob(t.db, "here")).cwd, cwd);
  assert.equal((await getJob(t.db, "rel")).cwd, join(cwd, "out"));
  assert.equal((await getJob(t.db, "flag")).cwd, "/var");
});

Deno.test("[enqueue] should default max_retries and timeout from the stored config", async () => {
  await using t = await tempDb();
  await cliOk(t.db, ["config", "set", "max-retries", "5"]);
  await cliOk(t.db, ["config", "set", "job-timeout", "10m"]);
  await cliOk(t.db, ["enqueue", '{"id":"a","command":"true"}']);
  const a = await getJob(t.db, "a");
  assert.equal(a.maxRetries, 5);
  assert.equal(a.timeoutMs, 600_000);
  // The environment overrides the stored value.
  await cliOk(t.db, ["enqueue", '{"id":"b","command":"true"}'], {
    env: { QUEUECTL_MAX_RETRIES: "1" },
  });
  assert.equal((await getJob(t.db, "b")).maxRetries, 1);
});

Deno.test("[enqueue] --file should store every NDJSON line, skipping blank ones", async () => {
  await using t = await tempDb();
  const file = join(t.dir, "jobs.ndjson");
  await Deno.writeTextFile(
    file,
    '{"id":"f1","command":"echo 1"}\n\n  {"id":"f2","command":"echo 2","priority":1}\n{"command":"echo 3"}\n',
  );
  assert.equal(await cliOk(t.db, ["enqueue", "--file", file]), "enqueued 3 jobs\n");
  const jobs = await allJobs(t.db);
  assert.deepEqual(jobs.map((j) => j.command), ["echo 1", "echo 2", "echo 3"]);
  assert.deepEqual(jobs.slice(0, 2).map((j) => j.id), ["f1", "f2"]);
});

Deno.test("[enqueue] --file - should read NDJSON from stdin", async () => {
  await using t = await tempDb();
  const out = await cliOk(t.db, ["enqueue", "-f", "-", "--json"], {
    stdin: '{"id":"s1","command":"echo 1"}\n{"id":"s2","command":"echo 2","delay":60}\n',
  });
  const printed = JSON.parse(out) as Array<{ id: string; run_at: string }>;
  assert.deepEqual(printed.map((p) => p.id), ["s1", "s2"]);
  const jobs = await allJobs(t.db);
  assert.deepEqual(jobs.map((j) => [j.id, new Date(j.runAt).toISOString()]), [
    ["s1", printed[0].run_at],
    ["s2", printed[1].run_at],
  ]);
  assert.equal(jobs[1].runAt - jobs[1].createdAt, 60_000);
});

Deno.test("[enqueue] --file should store nothing when any line is bad", async (t) => {
  await using tmp = await tempDb();
  await cliOk(tmp.db, ["enqueue", '{"id":"old","command":"true"}']);
  const before = await allJobs(tmp.db);
  const good = '{"id":"n1","command":"echo 1"}\n{"id":"n2","command":"echo 2"}\n';
  const cases: Array<{ name: string; stdin: string; code: number; error: RegExp }> = [
    {
      name: "a field of the wrong type on line 3",
      stdin: good + '{"id":"n3","command":5}\n',
      code: 2,
      error: /^queuectl: stdin line 3: "command" must be a string/,
    },
    {
      name: "invalid JSON on line 2",
      stdin: '{"id":"n1","command":"echo 1"}\n{"id":"n2",\n',
      code: 2,
      // Only where the message starts: lib/spec.ts words the position itself.
      error: /^queuectl: stdin line 2\b.*JSON/,
    },
    {
      name: "an id twice in the file",
      stdin: good + '{"id":"n1","command":"again"}\n',
      code: 2,
      error: /line 3: id "n1" appears twice/,
    },
    {
      name: "an id that is already stored",
      stdin: good + '{"id":"old","command":"again"}\n',
      code: 1,
      error: /job "old" already exists.*nothing from this batch was stored/,
    },
    { name: "no specs at all", stdin: "\n\n", code: 2, error: /stdin holds no job specs/ },
  ];
  const results = await allDone(
    cases.map((c) => runCli(tmp.db, ["enqueue", "--file", "-"], { stdin: c.stdin })),
  );
  for (const [i, c] of cases.entries()) {
    await t.step(c.name, () => assertOneLineError(results[i], c.code, c.error));
  }
  assert.deepEqual(await allJobs(tmp.db), before);
});

Deno.test("[enqueue] --json should print each id with its run time", async () => {
  await using t = await tempDb();
  const out = await cliOk(t.db, ["enqueue", "--json", '{"id":"j","command":"true","delay":"1h"}']);
  const [printed, ...rest] = JSON.parse(out);
  assert.equal(rest.length, 0);
  assert.deepEqual(Object.keys(printed), ["id", "run_at", "queue"]);
  const job = await getJob(t.db, "j");
  assert.deepEqual(printed, {
    id: "j",
    run_at: new Date(job.runAt).toISOString(),
    queue: "default",
  });
});

Deno.test("[enqueue] should never print env values, only their names", async () => {
  await using t = await tempDb();
  await cliOk(t.db, ["enqueue", "--id", "s", "--env", "TOKEN=hunter2", "--", "deploy"]);
  const outputs = await allDone([
    cliOk(t.db, ["show", "s"]),
    cliOk(t.db, ["show", "s", "--json"]),
    cliOk(t.db, ["list"]),
    cliOk(t.db, ["list", "--json"]),
  ]);
  for (const out of outputs) assert.doesNotMatch(out, /hunter2/);
  assert.match(outputs[0], /^env:\s+TOKEN$/m);
  assert.deepEqual(JSON.parse(outputs[1]).env_keys, ["TOKEN"]);
});

Deno.test("[enqueue] should refuse bad specs and flags with exit 2 and store nothing", async (t) => {
  await using tmp = await tempDb();
  await cliOk(tmp.db, ["enqueue", '{"id":"old","command":"true"}']);
  const before = await allJobs(tmp.db);
  const cases: Array<[string, string[], RegExp]> = [
    ["invalid JSON", ["{bad json"], /^queuectl: job spec .*JSON/],
    [
      "unknown fields",
      ['{"id":"x","command":"echo","foo":1,"bar":2}'],
      /unknown fields "foo", "bar"; allowed: id, command,/,
    ],
    ["a missing command", ['{"id":"x"}'], /missing "command"/],
    ["an empty command", ['{"command":"  "}'], /"command" is empty/],
    ["a command of the wrong type", ['{"command":5}'], /"command" must be a string, got number 5/],
    [
      "an array holding something else than objects",
      ['[{"command":"x"},[]]'],
      /^queuectl: job spec element 2: a job spec must be a JSON object.*got an array/,
    ],
    [
      "negative retries",
      ['{"command":"x","max_retries":-1}'],
      /"max_retries" must be an integer between 0 and 100/,
    ],
    ["retries as text", ['{"command":"x","max_retries":"3"}'], /"max_retries" must be an integer/],
    [
      "an unparseable run_at",
      ['{"command":"x","run_at":"tomorrow"}'],
      /"run_at" must be an ISO 8601 instant/,
    ],
    [
      "both run_at and delay",
      ['{"command":"x","run_at":"2030-01-01","delay":5}'],
      /either "run_at" or "delay"/,
    ],
    ["a bad timeout", ['{"command":"x","timeout":"soon"}'], /"timeout" must be seconds/],
    ["env that is not an object", ['{"command":"x","env":["A=1"]}'], /"env" must be an object/],
    ["a bad env name", ['{"command":"x","env":{"1A":"b"}}'], /"env" name "1A" is not a valid/],
    ["an empty id", ['{"id":"","command":"x"}'], /"id" must be 1 to 200 printable characters/],
    ["no job", [], /^queuectl: missing job: queuectl enqueue '\{"command":"echo hi"\}'/],
    [
      "a JSON spec split into several arguments",
      ['{"command":"x"}', "extra"],
      /the JSON job spec must be one argument; quote all of it/,
    ],
    [
      "a flag with a JSON spec",
      ["--id", "x", '{"command":"x"}'],
      /--id cannot be combined with a JSON spec/,
    ],
    ["--file with a job", ["--file", "-", '{"command":"x"}'], /either --file or a job/],
    [
      "negative --retries",
      ["--retries", "-1", "--", "echo"],
      /^queuectl: --retries must be an integer between 0 and 100/,
    ],
    [
      "non-numeric --retries",
      ["--retries", "x", "--", "echo"],
      /^queuectl: --retries must be an integer, got "x"/,
    ],
    [
      "fractional --priority",
      ["--priority", "1.5", "--", "echo"],
      /^queuectl: --priority must be an integer/,
    ],
    ["a bad --delay", ["--delay", "soon", "--", "echo"], /^queuectl: --delay must be seconds/],
    [
      "a bad --run-at",
      ["--run-at", "tomorrow", "--", "echo"],
      /^queuectl: --run-at must be an ISO 8601 instant/,
    ],
    [
      "--run-at with --delay",
      ["--run-at", "2030-01-01", "--delay", "5", "--", "echo"],
      /either --run-at or --delay/,
    ],
    [
      "--env without =",
      ["--env", "NOEQUALS", "--", "echo"],
      /--env takes NAME=VALUE, got "NOEQUALS"/,
    ],
    [
      "an unknown flag",
      ["--bogus", "--", "echo"],
      /^queuectl: unknown flag --bogus; see queuectl enqueue --help$/m,
    ],
    [
      "a flag without its value",
      ["--id"],
      /^queuectl: --id needs a value; see queuectl enqueue --help$/m,
    ],
  ];
  const results = await allDone(cases.map(([, args]) => runCli(tmp.db, ["enqueue", ...args])));
  for (const [i, [name, , error]] of cases.entries()) {
    await t.step(`${name} → exit 2`, () => assertOneLineError(results[i], 2, error));
  }
  assert.deepEqual(await allJobs(tmp.db), before);
});

Deno.test("[enqueue] should refuse a duplicate id with exit 1 and keep the first job", async () => {
  await using t = await tempDb();
  await cliOk(t.db, ["enqueue", '{"id":"job1","command":"echo first"}']);
  const before = await allJobs(t.db);
  const [json, flags] = await allDone([
    runCli(t.db, ["enqueue", '{"id":"job1","command":"echo second"}']),
    runCli(t.db, ["enqueue", "--id", "job1", "--", "echo", "third"]),
  ]);
  for (const r of [json, flags]) {
    assertOneLineError(
      r,
      1,
      /^queuectl: job "job1" already exists; choose another id, or omit "id" to get a generated one$/m,
    );
  }
  assert.deepEqual(await allJobs(t.db), before);
});

Deno.test("[enqueue] should say when --file cannot be read, with exit 1", async () => {
  await using t = await tempDb();
  const missing = join(t.dir, "nope.ndjson");
  assertOneLineError(
    await runCli(t.db, ["enqueue", "--file", missing]),
    1,
    new RegExp(`^queuectl: cannot read ${missing}: no such file$`, "m"),
  );
  assertOneLineError(
    await runCli(t.db, ["enqueue", "--file", t.dir]),
    1,
    new RegExp(`^queuectl: cannot read ${t.dir}: it is a directory; give a file of jobs, or - `),
  );
  assert.deepEqual(await allJobs(t.db), []);
});

Deno.test("[enqueue] should refuse a directory that does not exist and store nothing", async () => {
  await using t = await tempDb();
  for (
    const args of [
      ["enqueue", "--cwd", join(t.dir, "missing"), "--", "true"],
      ["enqueue", JSON.stringify({ command: "true", cwd: t.db + ".not-a-dir" })],
    ]
  ) {
    const r = await runCli(t.db, args);
    assert.equal(r.code, 2, r.stderr);
    assert.match(
      r.stderr,
      /^queuectl: job "[^"]+": its directory .* does not exist or is not a directory; create it/,
    );
  }
  assert.equal(await cliOk(t.db, ["list"]), "no jobs\n");
});
