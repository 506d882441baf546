/**
 * A real PostgreSQL server for tests: `QUEUECTL_TEST_PG` (default
 * postgres://postgres@127.0.0.1:5432/test, trust auth, as on our machines and CI's). Each test file
 * that asks gets a database of its own, dropped at the end, and schemas in it for each test.
 * Every admin statement uses a connection of its own, closed at once, so no socket outlives a test.
 */
import postgres from "postgres";

export interface PgTestServer {
  /** The name of the file's own database. */
  name: string;
  /** The file's own database. */
  url: string;
  /** A URL naming a schema no one has used yet in that database. */
  freshSchemaUrl(): string;
  /** Runs SQL as the server's admin in that database. */
  exec(sql: string): Promise<void>;
  /** Runs a query and returns the column `n` of its first row. */
  query(sql: string): Promise<number>;
  /** Drops the database. */
  dispose(): Promise<void>;
}

export const PG_BASE = Deno.env.get("QUEUECTL_TEST_PG") ??
  "postgres://postgres@127.0.0.1:5432/test";

async function withSql<T>(url: string, fn: (sql: postgres.Sql) => Promise<T>): Promise<T> {
  const sql = postgres(url, { max: 1, onnotice: () => {}, connect_timeout: 5, idle_timeout: 0 });
  try {
    return await fn(sql);
  } finally {
    await sql.end({ timeout: 1 });
  }
}

/** The test server with a fresh database, or `null` when none answers. */
export async function pgTestServer(): Promise<PgTestServer | null> {
  const name = `queuectl_t_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
  try {
    await withSql(PG_BASE, (sql) => sql.unsafe(`CREATE DATABASE ${name}`));
  } catch {
    return null;
  }
  const u = new URL(PG_BASE);
  u.pathname = `/${name}`;
  const url = u.toString();
  let n = 0;
  return {
    name,
    url,
    freshSchemaUrl() {
      const s = new URL(url);
      s.searchParams.set("schema", `t${++n}_${crypto.randomUUID().slice(0, 6).replace("-", "")}`);
      return s.toString();
    },
    exec: (text) => withSql(url, async (sql) => void await sql.unsafe(text)),
    query: (text) => withSql(url, async (sql) => Number((await sql.unsafe(text))[0].n)),
    dispose: () =>
      withSql(PG_BASE, async (sql) => {
        await sql.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      }),
  };
}

/**
 * Every row of every table in the schema that the URL `?schema=` names, as one string, rows in
 * a fixed order: equal dumps mean an unchanged queue.
 */
export function dumpSchema(schemaUrl: string): Promise<string> {
  const u = new URL(schemaUrl);
  const schema = u.searchParams.get("schema") ?? "queuectl";
  u.searchParams.delete("schema");
  return withSql(u.toString(), async (sql) => {
    const tables = await sql<{ name: string }[]>`
      SELECT table_name AS name FROM information_schema.tables
      WHERE table_schema = ${schema} ORDER BY table_name`;
    const out: Record<string, unknown> = {};
    for (const { name } of tables) {
      const [row] = await sql.unsafe(
        `SELECT coalesce(jsonb_agg(to_jsonb(t) ORDER BY to_jsonb(t)::text), '[]') AS rows
         FROM "${schema}"."${name}" t`,
      );
      out[name] = row.rows;
    }
    return JSON.stringify(out);
  });
}

/** Debian's PostgreSQL server binaries (`initdb`, `pg_ctl`), or `null` where none are installed. */
export const PG_BIN = (() => {
  for (const v of ["17", "16", "15", "14"]) {
    try {
      Deno.statSync(`/usr/lib/postgresql/${v}/bin/initdb`);
      return `/usr/lib/postgresql/${v}/bin`;
    } catch { /* next */ }
  }
  return null;
})();

/** Whether this process can start a private server: root (to run it as postgres) and PG_BIN. */
export const canStartPrivateServer = PG_BIN !== null &&
  new TextDecoder().decode(new Deno.Command("id", { args: ["-u"] }).outputSync().stdout).trim() ===
    "0";

async function sh(script: string, check = true): Promise<{ ok: boolean; text: string }> {
  const out = await new Deno.Command("sh", {
    args: ["-c", script],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  const text = dec.decode(out.stdout) + dec.decode(out.stderr);
  if (check && !out.success) throw new Error(`${script}\n${text}`);
  return { ok: out.success, text };
}

export interface PrivateServer {
  /** Its own temporary directory (data, socket, log), removed on dispose. */
  dir: string;
  /** The port of 127.0.0.1 it listens on (never 5432). */
  port: number;
  /** Starts it again after `stop()`, on the same port. */
  start(): Promise<void>;
  /** Stops it (fast shutdown: connections are closed). */
  stop(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * A PostgreSQL server of the test's own, run as the postgres user on a free port of 127.0.0.1
 * (tried until one is free): trust auth, or scram-sha-256 when `password` is given (the
 * password of the user postgres). Stopped and removed on dispose. Needs `canStartPrivateServer`.
 */
export async function privateServer(opts: { password?: string } = {}): Promise<PrivateServer> {
  const dir = await Deno.makeTempDir({ prefix: "queuectl-pgprivate-" });
  const ctl = (args: string) =>
    `runuser -u postgres -- ${PG_BIN}/pg_ctl -D ${dir}/data -l ${dir}/server.log ${args}`;
  const startOn = (port: number) =>
    sh(
      ctl(`-w -o "-p ${port} -k ${dir} -c fsync=off -c listen_addresses=127.0.0.1" start`),
      false,
    );
  const dispose = async () => {
    await sh(`${ctl("-m immediate stop")} >/dev/null 2>&1`, false);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  try {
    const auth = opts.password === undefined
      ? "--auth=trust"
      : `--auth=scram-sha-256 --pwfile=${dir}/pw`;
    if (opts.password !== undefined) await Deno.writeTextFile(`${dir}/pw`, opts.password + "\n");
    await sh(
      `set -e; chown -R postgres ${dir}; ` +
        `runuser -u postgres -- ${PG_BIN}/initdb -D ${dir}/data -U postgres ${auth} ` +
        `--no-sync -E UTF8 >/dev/null`,
    );
    for (let tries = 0;; tries++) {
      const port = 20000 + (crypto.getRandomValues(new Uint16Array(1))[0] % 20000);
      const started = await startOn(port);
      if (started.ok) {
        return {
          dir,
          port,
          start: async () => {
            const again = await startOn(port);
            if (!again.ok) throw new Error(`the private server did not start again\n${again.text}`);
          },
          stop: async () => void await sh(ctl("-m fast -w stop")),
          [Symbol.asyncDispose]: dispose,
        };
      }
      if (tries === 5) throw new Error(`the private server did not start\n${started.text}`);
    }
  } catch (e) {
    await dispose();
    throw e;
  }
}
