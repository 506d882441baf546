/**
 * Where the store is, read cheaply before anything else runs: from `--db PATH`/`--db=PATH` before
 * a `--`, else `QUEUECTL_DB`. main.ts asks this to know whether the command needs network
 * permission for a PostgreSQL server. No store code is loaded here.
 */

/** The store location the command line or the environment names, or `undefined`. */
export function dbLocationOf(args: string[]): string | undefined {
  const end = args.indexOf("--");
  const head = end === -1 ? args : args.slice(0, end);
  for (const [i, a] of head.entries()) {
    if (a === "--db" && i + 1 < head.length) return head[i + 1];
    if (a.startsWith("--db=")) return a.slice("--db=".length);
  }
  return Deno.env.get("QUEUECTL_DB");
}

/** `host:port` of a `postgres://` location (localhost:5432 when left out); `null` otherwise. */
export function netAddressOf(location: string | undefined): string | null {
  if (!location || !/^postgres(ql)?:\/\//i.test(location)) return null;
  try {
    const u = new URL(location);
    return `${u.hostname || "localhost"}:${u.port || "5432"}`;
  } catch {
    return null;
  }
}
