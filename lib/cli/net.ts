/**
 * The network addresses a command line needs, read before anything else loads: the PostgreSQL
 * servers it names (`--db`, `QUEUECTL_DB`, `migrate --to`) and, for `dashboard`, the address it
 * listens on. main.ts grants exactly these (under `deno run`, by running itself again).
 */
import { dbLocationsOf, netAddressOf } from "../store/location.ts";

/** Where `dashboard` listens unless told otherwise; also its `--help` defaults. */
export const DASHBOARD_HOST = "127.0.0.1";
export const DASHBOARD_PORT = 7777;

export function netNeedsOf(args: string[]): string[] {
  const needs = dbLocationsOf(args).map(netAddressOf).filter((n) => n !== null);
  const listen = dashboardAddressOf(args);
  return listen ? [...needs, listen] : needs;
}

/** `host:port` that `queuectl dashboard …` listens on (`host` alone for port 0), else null. */
function dashboardAddressOf(args: string[]): string | null {
  const end = args.indexOf("--");
  const head = end === -1 ? args : args.slice(0, end);
  let i = 0;
  while (head[i] === "--no-color" || head[i]?.startsWith("--db=") || head[i] === "--db") {
    i += head[i] === "--db" ? 2 : 1;
  }
  if (head[i] !== "dashboard") return null;
  const value = (flag: string) => {
    let v: string | undefined;
    for (const [j, a] of head.entries()) {
      if (a === flag && j + 1 < head.length) v = head[j + 1];
      else if (a.startsWith(`${flag}=`)) v = a.slice(flag.length + 1);
    }
    return v;
  };
  const host = (value("--host") ?? DASHBOARD_HOST).replace(/^\[(.*)\]$/, "$1");
  const port = value("--port") ?? String(DASHBOARD_PORT);
  // Anything else the parser refuses, in its own words.
  if (!/^\d{1,5}$/.test(port) || Number(port) > 65535) return null;
  const h = host.includes(":") ? `[${host}]` : host;
  return Number(port) === 0 ? h : `${h}:${Number(port)}`;
}
