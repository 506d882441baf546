/**
 * Where the store is, read cheaply before anything else runs: from `--db PATH`/`--db=PATH` before
 * a `--`, else `QUEUECTL_DB`. main.ts asks this to know whether the command needs network
 * permission for a PostgreSQL server. No store code is loaded here.
 */

/**
 * The store locations the command line or the environment names: `--db` (else `QUEUECTL_DB`)
 * and `migrate --to`.
 */
export function dbLocationsOf(args: string[]): string[] {
  const end = args.indexOf("--");
  const head = end === -1 ? args : args.slice(0, end);
  const found: string[] = [];
  let db: string | undefined;
  for (const [i, a] of head.entries()) {
    for (const flag of ["--db", "--to"]) {
      let value: string | undefined;
      if (a === flag && i + 1 < head.length) value = head[i + 1];
      else if (a.startsWith(`${flag}=`)) value = a.slice(flag.length + 1);
      if (value === undefined) continue;
      if (flag === "--db") db = value;
      else found.push(value);
    }
  }
  const store = db ?? Deno.env.get("QUEUECTL_DB");
  return store === undefined ? found : [store, ...found];
}

/** Whether `location` names a PostgreSQL database rather than an SQLite file. */
export function isPostgresUrl(location: string): boolean {
  return /^postgres(ql)?:\/\//i.test(location);
}

/** `host:port` of a `postgres://` location (localhost:5432 when left out); `null` otherwise. */
export function netAddressOf(location: string | undefined): string | null {
  if (!location || !isPostgresUrl(location)) return null;
  try {
    const u = new URL(location);
    return `${u.hostname || "localhost"}:${u.port || "5432"}`;
  } catch {
    return null;
  }
}
