/**
 * `queuectl dashboard` over real HTTP: a real server process on a free loopback port, asked with
 * curl (the test runner itself may not open sockets). The token, the CSRF and Origin checks,
 * read-only mode, /metrics, and the API's answers on a real queue.
 */
import assert from "node:assert/strict";
import { assertOneLineError, cliOk, MAIN, PERMS, runCli, tempDb } from "./helpers.ts";
import { curl, startDashboard } from "./dashboard_helpers.ts";

const bearer = (token: string) => ["-H", `Authorization: Bearer ${token}`];

Deno.test("dashboard: every request needs the token; the 401 page shows nothing of the queue", async () => {
  await using tmp = await tempDb();
  await cliOk(tmp.db, [
    "enqueue",
    JSON.stringify({ id: "secret-job", command: "echo top-secret-value", env: { K: "hidden" } }),
  ]);
  await using d = await startDashboard(tmp.db);
  assert.match(d.url, /^http:\/\/127\.0\.0\.1:\d+\/\?token=/);
  assert.doesNotMatch(d.stdout(), /warning/, "loopback: no warning");
  for (const path of ["/", "/api/overview", "/api/jobs", "/api/jobs/secret-job", "/metrics"]) {
    for (const extra of [[], ["-H", "Authorization: Bearer wrong"], ["-b", "queuectl_token=x"]]) {
      const r = await curl(d.origin + path, extra);
      assert.equal(r.status, 401, `${path} ${extra.join(" ")}`);
      assert.doesNotMatch(r.body + r.headers, /secret|top-secret|hidden|pending/);
    }
  }
  const wrongQuery = await curl(`${d.origin}/?token=${d.token}x`);
  assert.equal(wrongQuery.status, 401);

  // The URL's token becomes an HttpOnly, SameSite=Strict cookie, and leaves the address.
  const first = await curl(d.url);
  assert.equal(first.status, 303);
  assert.match(first.headers, /set-cookie: queuectl_token=[^;]+; HttpOnly; SameSite=Strict/i);
  assert.match(first.headers, /location: \/\r?$/m);
  const page = await curl(d.origin + "/", ["-b", `queuectl_token=${d.token}`]);
  assert.equal(page.status, 200);
  assert.match(page.body, /<title>queuectl dashboard<\/title>/);
  assert.doesNotMatch(page.body, /https?:\/\/(?!www\.w3\.org)/, "no CDN or other host");

  const api = await curl(`${d.origin}/api/jobs?q=secret`, bearer(d.token));
  assert.equal(api.status, 200);
  assert.deepEqual(JSON.parse(api.body).jobs.map((j: { id: string }) => j.id), ["secret-job"]);
  const metrics = await curl(`${d.origin}/metrics`, bearer(d.token));
  assert.match(metrics.body, /^queuectl_jobs\{state="pending",queue="default"\} 1$/m);
});

Deno.test("dashboard: actions need the CSRF token and the dashboard's Origin; retry works through the CLI's rules", async () => {
  await using tmp = await tempDb();
  await cliOk(tmp.db, ["enqueue", JSON.stringify({ id: "p1", command: "true" })]);
  await using d = await startDashboard(tmp.db);
  const page = await curl(d.origin + "/", bearer(d.token));
  const csrf = page.body.match(/<meta name="csrf" content="([^"]+)">/)![1];
  const post = (path: string, headers: string[]) =>
    curl(d.origin + path, ["-X", "POST", ...bearer(d.token), ...headers]);
  const good = ["-H", `Origin: ${d.origin}`, "-H", `X-CSRF-Token: ${csrf}`];
  assert.equal((await post("/api/jobs/p1/cancel", ["-H", `Origin: ${d.origin}`])).status, 403);
  assert.equal(
    (await post("/api/jobs/p1/cancel", [
      "-H",
      "Origin: http://evil.example",
      "-H",
      `X-CSRF-Token: ${csrf}`,
    ]))
      .status,
    403,
  );
  assert.equal((await post("/api/jobs/p1/cancel", ["-H", `X-CSRF-Token: ${csrf}`])).status, 403);
  assert.equal(
    JSON.parse((await curl(`${d.origin}/api/jobs/p1`, bearer(d.token))).body).job.state,
    "pending",
  );

  const cancelled = await post("/api/jobs/p1/cancel", good);
  assert.equal(cancelled.status, 200, cancelled.body);
  assert.equal(
    JSON.parse((await curl(`${d.origin}/api/jobs/p1`, bearer(d.token))).body).job.state,
    "cancelled",
  );
  // The CLI's rule: a cancelled job cannot be cancelled again.
  const again = await post("/api/jobs/p1/cancel", good);
  assert.equal(again.status, 409);
  assert.match(JSON.parse(again.body).message, /is cancelled; nothing to do/);
  assert.equal((await post("/api/jobs/p1/retry", good)).status, 200);
  assert.equal(
    JSON.parse((await curl(`${d.origin}/api/jobs/p1`, bearer(d.token))).body).job.state,
    "pending",
  );
  assert.equal((await post("/api/jobs/nope/retry", good)).status, 404);
});

Deno.test("dashboard: --read-only serves no action; --metrics-public serves only /metrics without the token", async () => {
  await using tmp = await tempDb();
  await cliOk(tmp.db, ["enqueue", JSON.stringify({ id: "r1", command: "true" })]);
  await using d = await startDashboard(tmp.db, ["--read-only", "--metrics-public"]);
  const page = await curl(d.origin + "/", bearer(d.token));
  const csrf = page.body.match(/<meta name="csrf" content="([^"]+)">/)![1];
  assert.match(page.body, /<meta name="read-only" content="true">/);
  const r = await curl(d.origin + "/api/jobs/r1/cancel", [
    "-X",
    "POST",
    ...bearer(d.token),
    "-H",
    `Origin: ${d.origin}`,
    "-H",
    `X-CSRF-Token: ${csrf}`,
  ]);
  assert.equal(r.status, 403);
  assert.equal(
    JSON.parse((await curl(`${d.origin}/api/jobs/r1`, bearer(d.token))).body).job.state,
    "pending",
  );
  const open = await curl(d.origin + "/metrics");
  assert.equal(open.status, 200);
  assert.match(open.body, /^queuectl_jobs_enqueued_total 1$/m);
  assert.equal((await curl(d.origin + "/api/overview")).status, 401);
});

Deno.test("dashboard: run as the deno.json task runs it (no --allow-net), it gains its address alone and serves", async () => {
  await using tmp = await tempDb();
  await cliOk(tmp.db, ["enqueue", JSON.stringify({ id: "x", command: "true" })]);
  const port = 7791;
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--quiet",
      ...PERMS.filter((p) => !p.startsWith("--allow-net")),
      MAIN,
      "dashboard",
      "--port",
      String(port),
    ],
    env: { QUEUECTL_DB: tmp.db, NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const output = child.output();
  try {
    let answered = false;
    const deadline = Date.now() + 20_000;
    while (!answered && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      answered = (await curl(`http://127.0.0.1:${port}/api/overview`)).status === 401;
    }
    assert.ok(answered, "the dashboard answered on its port (401 without the token)");
  } finally {
    child.kill("SIGTERM");
  }
  const r = await output;
  const text = new TextDecoder().decode(r.stdout);
  assert.match(text, new RegExp(`^open http://127\\.0\\.0\\.1:${port}/\\?token=`, "m"));
  assert.equal(r.code, 0, new TextDecoder().decode(r.stderr));
});

Deno.test("dashboard: a bad --host or --port is refused in one line, exit 2", async () => {
  await using tmp = await tempDb();
  await cliOk(tmp.db, ["enqueue", JSON.stringify({ id: "x", command: "true" })]);
  for (
    const [args, pattern] of [
      [["--host", "bad host!"], /--host must be a host name or an IP address/],
      [["--port", "99999"], /--port must be an integer between 0 and 65535/],
    ] as const
  ) {
    assertOneLineError(await runCli(tmp.db, ["dashboard", ...args]), 2, pattern);
  }
});
