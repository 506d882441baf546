/**
 * A real `queuectl dashboard` process for tests, and curl to ask it (the test runner itself may
 * not open sockets).
 */
import assert from "node:assert/strict";
import { MAIN, PERMS } from "./helpers.ts";

export interface DashboardProcess extends AsyncDisposable {
  url: string;
  origin: string;
  token: string;
  stdout(): string;
}

/** Starts `queuectl dashboard --port 0 ARGS` against `db` and waits for its URL line. */
export async function startDashboard(db: string, args: string[] = []): Promise<DashboardProcess> {
  const perms = PERMS.map((p) => p.startsWith("--allow-net") ? "--allow-net=127.0.0.1" : p);
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", ...perms, MAIN, "dashboard", "--port", "0", ...args],
    env: { QUEUECTL_DB: db, NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  let err = "";
  const dec = new TextDecoder();
  const pumps = Promise.all([
    (async () => {
      for await (const c of child.stdout) text += dec.decode(c, { stream: true });
    })(),
    (async () => {
      for await (const c of child.stderr) err += dec.decode(c, { stream: true });
    })(),
  ]);
  const deadline = Date.now() + 20_000;
  let m: RegExpMatchArray | null = null;
  while (!(m = text.match(/(http:\/\/[^/\s]+)\/\?token=([A-Za-z0-9_-]+)/))) {
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      await child.status;
      await pumps;
      throw new Error(`the dashboard printed no URL:\n${text}\n${err}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  return {
    url: m[0],
    origin: m[1],
    token: m[2],
    stdout: () => text,
    async [Symbol.asyncDispose]() {
      try {
        child.kill("SIGTERM");
      } catch { /* exited */ }
      const status = await child.status;
      await pumps;
      assert.equal(status.code, 0, `the dashboard exits 0 on SIGTERM:\n${err}`);
    },
  };
}

export interface Http {
  status: number;
  headers: string;
  body: string;
}

/** One request with curl: `curl -s -i ARGS URL`. */
export async function curl(url: string, args: string[] = []): Promise<Http> {
  const r = await new Deno.Command("curl", {
    args: ["-s", "-i", "--max-time", "20", ...args, url],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(r.stdout);
  const split = text.indexOf("\r\n\r\n");
  const headers = text.slice(0, split);
  return { status: Number(headers.split(" ")[1]), headers, body: text.slice(split + 4) };
}
