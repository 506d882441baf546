/**
 * `queuectl dashboard [--host 127.0.0.1] [--port 7777] [--read-only] [--metrics-public]`: serves
 * the web dashboard until Ctrl+C. The server lives in lib/dashboard/, loaded only here, so no other
 * command pays for it.
 */
import { buildCommand } from "@stricli/core";
import { UsageError, UserError } from "../errors.ts";
import { type Context, dbFlag, type DbFlags, intParser, withStore } from "./context.ts";
import { out } from "./format.ts";
import { DASHBOARD_HOST, DASHBOARD_PORT } from "./net.ts";

interface DashboardFlags extends DbFlags {
  host: string;
  port: number;
  readOnly: boolean;
  metricsPublic: boolean;
}

const isLoopback = (host: string) =>
  host === "localhost" || host === "::1" || host === "[::1]" || /^127\./.test(host);

async function dashboard(this: Context, flags: DashboardFlags) {
  const host = flags.host.replace(/^\[(.*)\]$/, "$1");
  const at = `${host.includes(":") ? `[${host}]` : host}:${flags.port}`;
  const asked = flags.port === 0 ? host : at;
  let state: Deno.PermissionState;
  try {
    state = Deno.permissions.querySync({ name: "net", host: asked }).state;
  } catch {
    throw new UsageError(`--host must be a host name or an IP address, got "${flags.host}"`);
  }
  if (state !== "granted") {
    throw new UserError(
      `this process may not listen on ${at}; run queuectl with --allow-net=${at} ` +
        `(a compiled queuectl needs a build with --allow-net)`,
    );
  }
  const { startDashboard } = await import("../dashboard/server.ts");
  await withStore(flags, async (store) => {
    const stop = new AbortController();
    const onSignal = () => stop.abort();
    Deno.addSignalListener("SIGINT", onSignal);
    Deno.addSignalListener("SIGTERM", onSignal);
    try {
      let d;
      try {
        d = await startDashboard({
          store,
          hostname: host,
          port: flags.port,
          readOnly: flags.readOnly,
          metricsPublic: flags.metricsPublic,
          signal: stop.signal,
        });
      } catch (e) {
        if (e instanceof Deno.errors.AddrInUse) {
          throw new UserError(`port ${flags.port} on ${host} is in use; pass --port with another`);
        }
        if (e instanceof Deno.errors.AddrNotAvailable) {
          throw new UserError(`${host} is not an address of this host; pass --host 127.0.0.1`);
        }
        throw e;
      }
      if (!isLoopback(host)) {
        out(
          `warning: listening on ${host}, reachable from other hosts; only the token protects it`,
        );
      }
      out(`queuectl dashboard for ${store.location}${flags.readOnly ? " (read-only)" : ""}`);
      out(`open ${d.url}`);
      out("Ctrl+C stops it");
      await d.finished;
    } finally {
      Deno.removeSignalListener("SIGINT", onSignal);
      Deno.removeSignalListener("SIGTERM", onSignal);
    }
  }, { create: false });
}

export const dashboardCommand = buildCommand({
  func: dashboard,
  parameters: {
    flags: {
      ...dbFlag,
      host: {
        kind: "parsed",
        parse: String,
        brief: "Address to listen on (another than loopback is reachable from other hosts)",
        default: DASHBOARD_HOST,
        placeholder: "addr",
      },
      port: {
        kind: "parsed",
        parse: intParser("port", 0, 65535),
        brief: "Port to listen on; 0 picks a free one",
        default: String(DASHBOARD_PORT),
        placeholder: "n",
      },
      readOnly: {
        kind: "boolean",
        brief: "Serve no action (retry, cancel, purge)",
        default: false,
      },
      metricsPublic: {
        kind: "boolean",
        brief: "Serve /metrics without the token, for a scraper on a trusted network",
        default: false,
      },
    },
  },
  docs: {
    brief: "Serve a web dashboard of the queue and /metrics",
    fullDescription:
      "Prints a URL with a fresh access token; every request needs it (the page keeps it\n" +
      "in a cookie; scripts send Authorization: Bearer TOKEN). It listens on loopback\n" +
      "unless --host says otherwise.\n\n" +
      "Example:\n  queuectl dashboard --port 8080 --read-only",
  },
});
