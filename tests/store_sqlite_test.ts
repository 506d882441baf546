/** The Store conformance suite against SQLite, plus what only SQLite has. */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { StoreError, type StoreErrorKind } from "../lib/errors.ts";
import { openStore } from "../lib/store/open.ts";
import { SCHEMA_VERSION, SqliteStore } from "../lib/store/sqlite.ts";
import { type DatabaseFactory, storeConformance } from "./store_conformance.ts";
import { cronConformance } from "./store_conformance_cron.ts";
import { uniqueConformance } from "./store_conformance_unique.ts";
import { depsConformance } from "./store_conformance_deps.ts";
import { queuesConformance } from "./store_conformance_queues.ts";
import { batchConformance } from "./store_conformance_batch.ts";
import { drainConformance } from "./store_conformance_drain.ts";

/** A fresh SQLite file per test, in a directory of its own. */
const sqliteDatabase: DatabaseFactory = async () => {
  const dir = await Deno.makeTempDir({ prefix: "queuectl-store-" });
  const path = `${dir}/queue.db`;
  return {
    connect: () => Promise.resolve(SqliteStore.open(path)),
    url: path,
    async [Symbol.asyncDispose]() {
      await Deno.remove(dir, { recursive: true });
    },
  };
};
storeConformance("sqlite", sqliteDatabase);
cronConformance("sqlite", sqliteDatabase);
uniqueConformance("sqlite", sqliteDatabase);
depsConformance("sqlite", sqliteDatabase);
queuesConformance("sqlite", sqliteDatabase);
drainConformance("sqlite", sqliteDatabase);
batchConformance("sqlite", sqliteDatabase);

/** A fresh temporary directory, removed on dispose. */
async function tempDir(): Promise<AsyncDisposable & { path: string }> {
  const path = await Deno.makeTempDir({ prefix: "queuectl-sqlite-" });
  return {
    path,
    async [Symbol.asyncDispose]() {
      await Deno.remove(path, { recursive: true });
    },
  };
}

/** Runs `fn` on a raw node:sqlite connection to `path`, closing it afterwards. */
function withRawDb<T>(path: string, fn: (db: DatabaseSync) => T): T {
  const db = new DatabaseSync(path);
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

const pragma = (path: string, name: string) =>
  withRawDb(path, (db) => db.prepare(`PRAGMA ${name}`).get()![name]);

const schema = (path: string) =>
  withRawDb(
    path,
    (db) => db.prepare("SELECT type, name, sql FROM sqlite_master ORDER BY name").all(),
  );

/** Asserts that opening `path` fails with a one-line StoreError of `kind` matching `pattern`. */
function assertRefused(path: string, pattern: RegExp, kind: StoreErrorKind) {
  assert.throws(
    () => SqliteStore.open(path),
    (e: unknown) => {
      assert.ok(e instanceof StoreError, `expected StoreError, got ${e}`);
      assert.equal(e.kind, kind);
      assert.match(e.message, pattern);
      assert.doesNotMatch(e.message, /\n/);
      return true;
    },
  );
}

const job = (id: string) => ({
  id,
  command: "true",
  maxRetries: 3,
  priority: 0,
  runAt: 0,
  timeoutMs: 0,
  cwd: "/",
  env: null,
});

Deno.test("store(sqlite): a new database is migrated to SCHEMA_VERSION", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/queue.db`;
  const store = SqliteStore.open(path);
  await store.close();
  assert.ok(SCHEMA_VERSION >= 1);
  assert.equal(pragma(path, "user_version"), SCHEMA_VERSION);
  const tables = schema(path).filter((r) => r.type === "table").map((r) => r.name);
  for (const t of ["attempts", "config", "jobs", "workers"]) assert.ok(tables.includes(t), t);
});

Deno.test("store(sqlite): reopening migrates nothing twice and keeps the data", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/queue.db`;
  const first = SqliteStore.open(path);
  await first.enqueue([job("a")], 1);
  await first.setConfig("max-retries", "5");
  await first.close();
  const before = schema(path);
  for (let i = 0; i < 3; i++) {
    const again = SqliteStore.open(path, { durable: i % 2 === 0 });
    try {
      assert.equal((await again.getJob("a"))?.state, "pending");
      assert.deepEqual(await again.getConfig(), { "max-retries": "5" });
    } finally {
      await again.close();
    }
  }
  assert.equal(pragma(path, "user_version"), SCHEMA_VERSION);
  assert.deepEqual(schema(path), before);
});

Deno.test("store(sqlite): two connections opening a new database migrate it once", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/queue.db`;
  const a = SqliteStore.open(path);
  const b = SqliteStore.open(path);
  try {
    await a.enqueue([job("a")], 1);
    assert.equal((await b.getJob("a"))?.id, "a");
  } finally {
    await a.close();
    await b.close();
  }
  assert.equal(pragma(path, "user_version"), SCHEMA_VERSION);
});

Deno.test("store(sqlite): a database with a newer schema is refused and left alone", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/queue.db`;
  const store = SqliteStore.open(path);
  await store.enqueue([job("a")], 1);
  await store.close();
  withRawDb(path, (db) => {
    db.exec(`PRAGMA user_version = ${SCHEMA_VERSION + 1}`);
    db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  });
  const bytes = await Deno.readFile(path);
  assertRefused(
    path,
    new RegExp(
      `^${RegExp.escape(path)} has schema version ${SCHEMA_VERSION + 1}, newer than this ` +
        `queuectl understands \\(${SCHEMA_VERSION}\\); upgrade queuectl, or pass --db`,
    ),
    "too_new",
  );
  assert.deepEqual(await Deno.readFile(path), bytes);
  assert.equal(pragma(path, "user_version"), SCHEMA_VERSION + 1);
});

Deno.test("store(sqlite): a file that is not SQLite is refused with StoreError and not modified", async () => {
  await using dir = await tempDir();
  const cases = {
    "notes.txt": new TextEncoder().encode("remember the milk\n".repeat(200)),
    "short.txt": new TextEncoder().encode("hello\n"),
    "zeros.bin": new Uint8Array(4096),
    "fake.db": new TextEncoder().encode("SQLite format 3\0" + "x".repeat(2000)),
  };
  for (const [name, content] of Object.entries(cases)) {
    const path = `${dir.path}/${name}`;
    await Deno.writeFile(path, content, { mode: 0o600 });
    assertRefused(
      path,
      new RegExp(`^${RegExp.escape(path)} is not a usable queuectl database .*; move it away`),
      "corrupt",
    );
    assert.deepEqual(await Deno.readFile(path), content, `${name} was modified`);
  }
  const left = [...Deno.readDirSync(dir.path)].map((e) => e.name).sort();
  assert.deepEqual(left, Object.keys(cases).sort(), "no -wal or -shm files were left");
});

Deno.test("store(sqlite): another program's SQLite database is refused and left alone", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/app.db`;
  withRawDb(path, (db) => {
    db.exec("CREATE TABLE jobs (name TEXT); INSERT INTO jobs VALUES ('theirs')");
  });
  const bytes = await Deno.readFile(path);
  assertRefused(
    path,
    new RegExp(`^${RegExp.escape(path)} is an SQLite database of another program; pass --db`),
    "not_ours",
  );
  assert.deepEqual(await Deno.readFile(path), bytes);
  assert.equal(pragma(path, "journal_mode"), "delete");
  assert.equal(pragma(path, "user_version"), 0);
});

Deno.test("store(sqlite): an empty file is taken as a new database", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/queue.db`;
  await Deno.writeFile(path, new Uint8Array(0));
  const store = SqliteStore.open(path);
  await store.close();
  assert.equal(pragma(path, "user_version"), SCHEMA_VERSION);
});

Deno.test("store(sqlite): the database is in WAL mode", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/queue.db`;
  const store = SqliteStore.open(path);
  try {
    await store.enqueue([job("a")], 1);
    assert.equal(pragma(path, "journal_mode"), "wal");
    assert.ok((await Deno.stat(`${path}-wal`)).isFile);
  } finally {
    await store.close();
  }
  // An existing database in rollback-journal mode is switched to WAL when opened.
  const old = `${dir.path}/old.db`;
  withRawDb(old, (db) => db.exec("PRAGMA journal_mode=DELETE; CREATE TABLE t (x)"));
  withRawDb(old, (db) => db.exec("DROP TABLE t"));
  assert.equal(pragma(old, "journal_mode"), "delete");
  await SqliteStore.open(old).close();
  assert.equal(pragma(old, "journal_mode"), "wal");
});

Deno.test("store(sqlite): openStore creates the directory 0700 and the files 0600", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/data/queuectl/queue.db`;
  const store = await openStore(path);
  try {
    await store.enqueue([job("a")], 1);
    assert.equal(store.location, path);
    const mode = async (p: string) => (await Deno.stat(p)).mode! & 0o777;
    assert.equal(await mode(`${dir.path}/data/queuectl`), 0o700);
    assert.equal(await mode(`${dir.path}/data`), 0o700);
    assert.equal(await mode(path), 0o600);
    for (const extra of ["-wal", "-shm"]) {
      const p = path + extra;
      if (await Deno.stat(p).then(() => true, () => false)) assert.equal(await mode(p), 0o600, p);
    }
  } finally {
    await store.close();
  }
});

Deno.test("store(sqlite): openStore opens an existing database without recreating it", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/queue.db`;
  const first = await openStore(path);
  await first.enqueue([job("kept")], 1);
  await first.close();
  const again = await openStore(path);
  try {
    assert.equal((await again.getJob("kept"))?.id, "kept");
  } finally {
    await again.close();
  }
});

/** POSIX locks this test process holds now (Deno denies /proc: ask grep). */
function locksHeldByMe(): number {
  const out = new Deno.Command("sh", {
    args: ["-c", 'grep -c " $1 " /proc/locks || true', "sh", String(Deno.pid)],
    stdout: "piped",
  }).outputSync();
  return Number(new TextDecoder().decode(out.stdout).trim());
}

Deno.test("store(sqlite): waiting for changes keeps SQLite's file locks while another process writes", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/queue.db`;
  const store = SqliteStore.open(path, { durable: false });
  try {
    await store.countJobs();
    await store.waitForChange(1); // starts the watcher of idle workers
    const before = locksHeldByMe();
    assert.ok(before > 0, "an open WAL connection holds locks on the -shm file");
    // Another process opens, writes and closes the database while this connection stays open.
    const other = await new Deno.Command(Deno.execPath(), {
      args: [
        "eval",
        `
        import { DatabaseSync } from "node:sqlite";
        const db = new DatabaseSync(${JSON.stringify(path)});
        db.exec("INSERT INTO config (key, value) VALUES ('probe', '1')");
        db.close();`,
      ],
      stdout: "null",
      stderr: "piped",
    }).output();
    assert.equal(other.code, 0, new TextDecoder().decode(other.stderr));
    await store.waitForChange(300);
    assert.equal(locksHeldByMe(), before, "a watcher dropped this process's SQLite locks");
  } finally {
    await store.close();
  }
});
