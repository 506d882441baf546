/**
 * Fault injection, storage: a read-only database directory or file, a full disk, a truncated or
 * foreign file at the database path, and a database from a newer queuectl. Each command gives a
 * one-line `queuectl: …` error and a non-zero exit (never a stack trace), and leaves the file's
 * bytes as they were. A worker that hits a full disk backs off, says so, and carries on once there
 * is space again. Also: the data directory is 0700 and everything in it 0600.
 *
 * The read-only and full-disk cases mount a small tmpfs (we run as root, and chmod does not stop
 * root); they are skipped where mounting is not allowed. Every case is about the SQLite file, so
 * none runs under QUEUECTL_TEST_STORE=postgres.
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { procsMentioning, queryDb, reapMentioning, statusWithin } from "./chaos.ts";
import {
  cliCommand,
  cliOk,
  type CliResult,
  gateCommand,
  jobState,
  openDb,
  openGate,
  runCli,
  sqliteOnly,
  startWorkers,
  tempDb,
  waitFor,
} from "./helpers.ts";

function run(cmd: string, args: string[]): { ok: boolean; text: string } {
  const r = new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).outputSync();
  const dec = new TextDecoder();
  return { ok: r.success, text: dec.decode(r.stdout) + dec.decode(r.stderr) };
}

/** True when this process may mount a tmpfs (root, and a kernel that lets it). */
const canMount = (() => {
  try {
    const dir = Deno.makeTempDirSync({ prefix: "queuectl-mount-probe-" });
    try {
      if (!run("mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", dir]).ok) return false;
      run("umount", [dir]);
      return true;
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  } catch {
    return false;
  }
})();

/** Appended to the name of a test that needs a mount, where it is skipped. */
const MOUNT = canMount ? "" : " (skipped: mounting a tmpfs is not allowed here)";

function mount(args: string[]) {
  const r = run("mount", args);
  if (!r.ok) throw new Error(`mount ${args.join(" ")} failed: ${r.text}`);
}

/** Unmounts `target`, retrying briefly while a process that just exited still holds it. */
async function umount(target: string) {
  await waitFor(() => run("umount", [target]).ok, { timeoutMs: 30_000, what: `umount ${target}` });
}

/** A tmpfs of `size` mounted on a new directory inside `parent`; unmounted on dispose. */
function tmpfs(parent: string, size: string) {
  const dir = `${parent}/fs`;
  Deno.mkdirSync(dir);
  mount(["-t", "tmpfs", "-o", `size=${size},mode=0700`, "tmpfs", dir]);
  return {
    dir,
    readOnly: () => mount(["-o", "remount,ro", dir]),
    readWrite: () => mount(["-o", "remount,rw", dir]),
    async [Symbol.asyncDispose]() {
      await umount(dir);
    },
  };
}

async function sha256(path: string): Promise<string> {
  const bytes = await Deno.readFile(path);
  return Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)))
    .map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** Hashes of every file in `dir` (not recursive), by name. */
async function hashDir(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const e of [...Deno.readDirSync(dir)].sort((a, b) => a.name.localeCompare(b.name))) {
    if (e.isFile) out[e.name] = await sha256(`${dir}/${e.name}`);
  }
  return out;
}

/** Asserts a failure the user can act on: non-zero exit, one `queuectl: ` line, no stack. */
function assertCleanFailure(r: CliResult, what: string, message?: RegExp) {
  const context = `${what}: exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;
  assert.notEqual(r.code, 0, context);
  assert.ok(r.code === 1 || r.code === 2, context);
  assert.doesNotMatch(r.stderr, /internal error|^\s+at /m, context);
  assert.match(r.stderr, /^queuectl: [^\n]+\n$/, context);
  if (message) assert.match(r.stderr, message, context);
}

/** A command that only reads may work, or fail cleanly; it must never crash. */
function assertWorksOrFailsCleanly(r: CliResult, what: string) {
  if (r.code !== 0) assertCleanFailure(r, what);
}

/**
 * `queuectl worker start --db DB` given `ms` (generous: a busy machine is slow) to fail on its
 * own. A supervisor that keeps running is stopped and reported: on a database it cannot use it
 * must exit with an error.
 */
async function workerStart(db: string, ms = 60_000): Promise<CliResult & { timedOut: boolean }> {
  const [exec, ...pre] = cliCommand();
  const child = new Deno.Command(exec, {
    args: [...pre, "worker", "start", "--count", "1", "--db", db],
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const output = child.output();
  let timedOut = false;
  if ((await statusWithin(child, ms)) === null) {
    timedOut = true;
    child.kill("SIGTERM");
    if ((await statusWithin(child, 10_000)) === null) child.kill("SIGKILL");
  }
  await reapMentioning(db, 10_000);
  const { code, stdout, stderr } = await output;
  const dec = new TextDecoder();
  return { code, stdout: dec.decode(stdout), stderr: dec.decode(stderr), timedOut };
}

function assertWorkerStartFails(r: CliResult & { timedOut: boolean }, message?: RegExp) {
  assert.ok(!r.timedOut, `worker start kept running\n${r.stderr}`);
  assertCleanFailure(r, "worker start", message);
}

/** Creates a database with a few jobs through the CLI. */
async function seeded(db: string, jobs = 3) {
  const lines = Array.from(
    { length: jobs },
    (_, i) => JSON.stringify({ id: `j${i}`, command: `echo ${i}`, delay: "1h" }),
  );
  await cliOk(db, ["enqueue", "--file", "-"], { stdin: lines.join("\n") + "\n" });
}

// Every command below either writes, or only reads.
const WRITES: string[][] = [
  ["enqueue", '{"id":"new","command":"true"}'],
  ["enqueue", "--", "echo", "hi"],
  ["config", "set", "max-retries", "5"],
  ["cancel", "j0"],
  ["purge", "--state", "completed", "--yes"],
];
const READS: string[][] = [
  ["status"],
  ["list", "--json"],
  ["show", "j1"],
  ["config", "list"],
  ["worker", "list"],
  ["dlq", "list"],
];

Deno.test({
  name: "storage: read-only directory (ro tmpfs) → writes fail in one line, file bytes unchanged" +
    MOUNT,
  // The SQLite file's directory mounted read-only; a PostgreSQL server keeps its own files.
  ignore: !canMount || sqliteOnly,
  async fn() {
    await using t = await tempDb();
    await using fs = tmpfs(t.dir, "4m");
    const db = `${fs.dir}/queue.db`;
    await seeded(db);
    fs.readOnly();
    const before = await hashDir(fs.dir);
    for (const args of WRITES) {
      assertCleanFailure(await runCli(db, args), args.join(" "), /read-only|cannot (open|write)/);
    }
    for (const args of READS) assertWorksOrFailsCleanly(await runCli(db, args), args.join(" "));
    assertWorkerStartFails(await workerStart(db));
    assert.deepEqual(await hashDir(fs.dir), before);
    fs.readWrite();
    // Writable again: the same database works as before.
    await cliOk(db, ["enqueue", '{"id":"after","command":"true"}']);
    assert.equal(JSON.parse(await cliOk(db, ["list", "--json"])).length, 4);
  },
});

Deno.test({
  name:
    "storage: read-only database file (ro bind mount) → writes fail in one line, bytes unchanged" +
    MOUNT,
  // The SQLite file bind-mounted read-only; a PostgreSQL server keeps its own files.
  ignore: !canMount || sqliteOnly,
  async fn() {
    await using t = await tempDb();
    await seeded(t.db);
    mount(["--bind", t.db, t.db]);
    try {
      mount(["-o", "remount,bind,ro", t.db]);
      const before = await sha256(t.db);
      for (const args of WRITES) {
        assertCleanFailure(
          await runCli(t.db, args),
          args.join(" "),
          /read-only|cannot (open|write)/,
        );
      }
      for (const args of READS) assertWorksOrFailsCleanly(await runCli(t.db, args), args.join(" "));
      assert.equal(await sha256(t.db), before);
    } finally {
      await umount(t.db);
    }
    assert.equal(JSON.parse(await cliOk(t.db, ["list", "--json"])).length, 3);
  },
});

// worker start checks that it can write before it starts any worker: on a read-only file it
// exits with one line instead of workers that fail on their first write.
Deno.test({
  name: "storage: worker start on a read-only database file → exits with a one-line error" + MOUNT,
  // The SQLite file bind-mounted read-only; a PostgreSQL server keeps its own files.
  ignore: !canMount || sqliteOnly,
  async fn() {
    await using t = await tempDb();
    await seeded(t.db);
    mount(["--bind", t.db, t.db]);
    try {
      mount(["-o", "remount,bind,ro", t.db]);
      const before = await sha256(t.db);
      assertWorkerStartFails(await workerStart(t.db), /read-only/);
      assert.equal(await sha256(t.db), before);
    } finally {
      await umount(t.db);
    }
  },
});

/** Fills the file system of `dir` with one file until it is full; returns its path. */
function fill(dir: string): string {
  const path = `${dir}/filler`;
  const f = Deno.openSync(path, { write: true, create: true });
  const chunk = new Uint8Array(4096);
  try {
    for (;;) f.writeSync(chunk);
  } catch (e) {
    if (!/No space left/i.test(String(e))) throw e;
  } finally {
    f.close();
  }
  return path;
}

Deno.test({
  name: "storage: full disk → enqueue fails in one line, nothing stored, the database intact" +
    MOUNT,
  // The SQLite file's file system full (tmpfs); a PostgreSQL server keeps its own files.
  ignore: !canMount || sqliteOnly,
  async fn() {
    await using t = await tempDb();
    await using fs = tmpfs(t.dir, "1m");
    const db = `${fs.dir}/queue.db`;
    await seeded(db);
    const filler = fill(fs.dir);
    const before = await sha256(db);
    const batch = Array.from(
      { length: 500 },
      (_, i) => JSON.stringify({ id: `b${i}`, command: "x".repeat(200) }),
    ).join("\n");
    assertCleanFailure(
      await runCli(db, ["enqueue", "--file", "-"], { stdin: batch }),
      "enqueue 500",
      /disk is full|disk I\/O error/,
    );
    assertCleanFailure(
      await runCli(db, ["enqueue", '{"id":"one","command":"true"}']),
      "enqueue 1",
      /disk is full|disk I\/O error/,
    );
    for (const args of READS) assertWorksOrFailsCleanly(await runCli(db, args), args.join(" "));
    assert.equal(await sha256(db), before);
    // Space again: nothing of the failed batches was stored, and the database is healthy.
    Deno.removeSync(filler);
    await cliOk(db, ["enqueue", '{"id":"one","command":"true"}']);
    assert.deepEqual(
      JSON.parse(await cliOk(db, ["list", "--json"])).map((j: { id: string }) => j.id).sort(),
      ["j0", "j1", "j2", "one"],
    );
    assert.equal(queryDb(db, "PRAGMA integrity_check")[0].integrity_check, "ok");
  },
});

Deno.test({
  name:
    "storage: full disk under a running worker → it backs off, logs it, and finishes the jobs later" +
    MOUNT,
  // The SQLite file's file system full (tmpfs); a PostgreSQL server keeps its own files.
  ignore: !canMount || sqliteOnly,
  async fn() {
    await using t = await tempDb();
    await using fs = tmpfs(t.dir, "2m");
    const db = `${fs.dir}/queue.db`;
    // The first job holds the only worker until the gate opens, which happens once the disk is
    // full: recording it and claiming the next then hit the full disk, however slow the machine.
    // The jobs and the gate live outside the full file system.
    const gate = `${t.dir}/gate`;
    const specs = Array.from({ length: 20 }, (_, i) =>
      JSON.stringify({
        id: `f${i}`,
        command: `echo f${i} >> ${t.dir}/runs.txt` + (i === 0 ? `; ${gateCommand(gate)}` : ""),
        priority: i === 0 ? 1 : 0,
      }));
    await cliOk(db, ["enqueue", "--file", "-"], { stdin: specs.join("\n") + "\n" });
    await cliOk(db, ["config", "set", "lease-timeout", "2s"]);
    const w = startWorkers(db, 1);
    let filler: string | null = null;
    try {
      await waitFor(() => w.log().includes("job.started"), { what: "the first job started" });
      assert.equal(await jobState(db, "f0"), "processing");
      filler = fill(fs.dir);
      await openGate(gate);
      await waitFor(() => /worker\.store_unavailable|job\.record_failed/.test(w.log()), {
        timeoutMs: 60_000,
        what: "the worker to report the full disk",
      });
      // It stays up through the errors: still running, no restart.
      assert.doesNotMatch(w.log(), /worker\.died|worker\.failed|internal error/, w.log());
      assert.equal(w.log().match(/worker\.started/g)?.length, 1, w.log());
      Deno.removeSync(filler);
      filler = null;
      await waitFor(async () => (await completedCount(db)) === 20, {
        timeoutMs: 120_000,
        intervalMs: 200,
        what: "all jobs completed after space came back",
      });
    } finally {
      if (filler) Deno.removeSync(filler);
      await openGate(gate);
      w.signal("SIGTERM");
      if ((await statusWithin(w.process, 60_000)) === null) w.signal("SIGKILL");
      await reapMentioning(db, 30_000);
      await w.done();
    }
    const log = w.log();
    assert.match(log, /disk is full/, log);
    assert.match(log, /retry_in=/, log);
    assert.equal(log.match(/worker\.started/g)?.length, 1, log);
    assert.doesNotMatch(log, /worker\.died|internal error/, log);
    assert.equal(await completedCount(db), 20);
    assert.deepEqual(await procsMentioning(db), []);
  },
});

/** Number of completed jobs, read through the Store. */
async function completedCount(db: string): Promise<number> {
  const s = await openDb(db);
  try {
    return await s.countJobs("completed");
  } finally {
    await s.close();
  }
}

/** Runs every command against a damaged `db` and checks it fails cleanly and changes nothing. */
async function assertRefusedEverywhere(db: string, message: RegExp) {
  const before = await sha256(db);
  for (const args of [...WRITES, ...READS]) {
    assertCleanFailure(await runCli(db, args), args.join(" "), message);
  }
  assertWorkerStartFails(await workerStart(db), message);
  assert.equal(await sha256(db), before, "the file was changed");
  // No new -wal/-shm file was left next to it.
  const dir = db.slice(0, db.lastIndexOf("/"));
  const base = db.slice(db.lastIndexOf("/") + 1);
  const left = [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) =>
    n.startsWith(base + "-") && /-(wal|shm|journal)$/.test(n)
  );
  assert.deepEqual(left, []);
}

Deno.test({
  name: "storage: a truncated database (header cut) → one-line error everywhere, bytes unchanged",
  // A damaged SQLite file; a PostgreSQL server keeps its own files.
  ignore: sqliteOnly,
  async fn() {
    await using t = await tempDb();
    await seeded(t.db);
    const bytes = await Deno.readFile(t.db);
    await Deno.writeFile(t.db, bytes.subarray(0, 50));
    await assertRefusedEverywhere(t.db, /not a usable queuectl database|not a database|malformed/);
  },
});

Deno.test({
  name:
    "storage: a truncated database (pages missing) → one-line error everywhere, bytes unchanged",
  // A damaged SQLite file; a PostgreSQL server keeps its own files.
  ignore: sqliteOnly,
  async fn() {
    await using t = await tempDb();
    await seeded(t.db, 400);
    const bytes = await Deno.readFile(t.db);
    assert.ok(bytes.length >= 8 * 4096, `database only ${bytes.length} bytes`);
    await Deno.writeFile(t.db, bytes.subarray(0, Math.floor(bytes.length / 4096 / 2) * 4096));
    await assertRefusedEverywhere(t.db, /not a usable queuectl database|malformed|not a database/);
  },
});

Deno.test({
  name: "storage: a text file at the database path → one-line error everywhere, bytes unchanged",
  // A foreign file at the SQLite path; a PostgreSQL URL names no file.
  ignore: sqliteOnly,
  async fn() {
    await using t = await tempDb();
    await Deno.writeTextFile(t.db, "these are my notes, not a database\n".repeat(100));
    await assertRefusedEverywhere(t.db, /not a usable queuectl database|not a database/);
  },
});

Deno.test({
  name: "storage: random bytes at the database path → one-line error everywhere, bytes unchanged",
  // A foreign file at the SQLite path; a PostgreSQL URL names no file.
  ignore: sqliteOnly,
  async fn() {
    await using t = await tempDb();
    await Deno.writeFile(t.db, crypto.getRandomValues(new Uint8Array(16384)));
    await assertRefusedEverywhere(t.db, /not a usable queuectl database|not a database/);
  },
});

Deno.test({
  name: "storage: another program's SQLite file → one-line error everywhere, bytes unchanged",
  // An SQLite file; its PostgreSQL twin (another program's schema) is in store_postgres_test.ts.
  ignore: sqliteOnly,
  async fn() {
    await using t = await tempDb();
    const other = new DatabaseSync(t.db);
    other.exec("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)");
    other.exec("INSERT INTO notes (body) VALUES ('keep me')");
    other.close();
    await assertRefusedEverywhere(t.db, /queuectl/);
  },
});

Deno.test({
  name:
    "storage: a database from a newer queuectl (user_version 999) → one-line error everywhere, bytes unchanged",
  // SQLite's user_version; its PostgreSQL twin (a newer schema) is in store_postgres_test.ts.
  ignore: sqliteOnly,
  async fn() {
    await using t = await tempDb();
    await seeded(t.db);
    const conn = new DatabaseSync(t.db);
    conn.exec("PRAGMA user_version = 999");
    conn.close();
    await assertRefusedEverywhere(t.db, /schema version 999.*newer/);
  },
});

Deno.test({
  name:
    "storage: the data directory is 0700 and every file in it 0600, after a CLI call and while a worker runs",
  // The SQLite file's directory; a PostgreSQL server keeps its own files.
  ignore: sqliteOnly,
  async fn() {
    await using t = await tempDb();
    const dataDir = `${t.dir}/data`;
    const db = `${dataDir}/queue.db`;
    // "path mode" for the directory and everything under it, and what each should be.
    const modes = () => {
      const found: Array<{ line: string; want: string }> = [];
      const add = (p: string, isDir: boolean) => {
        const rel = p === dataDir ? "/" : p.slice(dataDir.length);
        const mode = (Deno.statSync(p).mode! & 0o777).toString(8);
        found.push({ line: `${rel} ${mode}`, want: `${rel} ${isDir ? "700" : "600"}` });
      };
      const walk = (dir: string) => {
        for (const e of Deno.readDirSync(dir)) {
          add(`${dir}/${e.name}`, e.isDirectory);
          if (e.isDirectory) walk(`${dir}/${e.name}`);
        }
      };
      add(dataDir, true);
      walk(dataDir);
      found.sort((a, b) => a.line.localeCompare(b.line));
      return { actual: found.map((f) => f.line), expected: found.map((f) => f.want) };
    };

    await cliOk(db, ["enqueue", JSON.stringify({ id: "j", command: "echo out; echo err >&2" })]);
    const afterCli = modes();
    assert.deepEqual(afterCli.actual, afterCli.expected);
    assert.ok(afterCli.actual.includes("/queue.db 600"), afterCli.actual.join("\n"));

    const w = startWorkers(db, 1);
    let whileRunning = { actual: [] as string[], expected: [] as string[] };
    try {
      await waitFor(
        async () => (await jobState(db, "j")) === "completed",
        { what: "j completed" },
      );
      // The supervisor's pid file and the -wal/-shm files exist now (output is in the database).
      whileRunning = modes();
    } finally {
      w.signal("SIGTERM");
      await w.done();
    }
    assert.deepEqual(whileRunning.actual, whileRunning.expected);
    const seen = whileRunning.actual.join("\n");
    for (const p of ["/queue.db-run 700", "/queue.db-shm 600"]) {
      assert.ok(whileRunning.actual.includes(p), `${p} missing from\n${seen}`);
    }
    assert.match(seen, /^\/queue\.db-run\/\S+\.pid 600$/m);
    const afterWorker = modes();
    assert.deepEqual(afterWorker.actual, afterWorker.expected);
  },
});
