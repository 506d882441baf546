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
