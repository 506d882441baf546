/**
 * The dashboard's bulk actions and sorting over real HTTP: a real `queuectl dashboard` process on a
 * real queue, asked with curl. The count a confirmation shows, the CLI's rules applied to each
 * matching job, the CSRF and Origin checks, read-only mode, and oldest-first paging.
 */
import assert from "node:assert/strict";
import { cliOk, tempDb } from "./helpers.ts";
import { curl, startDashboard } from "./dashboard_helpers.ts";

const bearer = (token: string) => ["-H", `Authorization: Bearer ${token}`];

async function csrfOf(origin: string, token: string): Promise<string> {
  const page = await curl(origin + "/", bearer(token));
  return page.body.match(/<meta name="csrf" content="([^"]+)">/)![1];
}

Deno.test("dashboard(bulk): the count says how many a filter's action touches; cancel and delete follow the CLI's rules", async () => {
  await using tmp = await tempDb();
  const lines = [];
  for (let i = 0; i < 12; i++) {
    lines.push(JSON.stringify({ id: `nightly-${i}`, command: `echo nightly ${i}` }));
  }
  for (let i = 0; i < 5; i++) {
    lines.push(JSON.stringify({ id: `hourly-${i}`, command: `echo hourly ${i}` }));
  }
  await cliOk(tmp.db, ["enqueue", "--file", "-"], { stdin: lines.join("\n") + "\n" });
  await using d = await startDashboard(tmp.db);
  const get = async (path: string) => {
    const r = await curl(d.origin + path, bearer(d.token));
    assert.equal(r.status, 200, `${path}: ${r.body}`);
    return JSON.parse(r.body);
  };
  const count = await get("/api/jobs/count?action=cancel&q=NIGHTLY");
  assert.equal(count.count, 12);
  assert.equal((await get("/api/jobs/count?action=cancel&state=pending")).count, 17);
  // Retry takes no pending job; delete takes no pending job: nothing to touch.
  assert.equal((await get("/api/jobs/count?action=retry&q=nightly")).count, 0);
  assert.equal((await get("/api/jobs/count?action=delete")).count, 0);

  const csrf = await csrfOf(d.origin, d.token);
  const post = (action: string, body: unknown, headers: string[]) =>
    curl(d.origin + `/api/bulk/${action}`, [
      "-X",
      "POST",
      ...bearer(d.token),
      "-H",
      "Content-Type: application/json",
      "--data",
      JSON.stringify(body),
      ...headers,
    ]);
  const good = ["-H", `Origin: ${d.origin}`, "-H", `X-CSRF-Token: ${csrf}`];
  const filter = { state: "", q: "nightly", upTo: count.upTo };
  assert.equal((await post("cancel", filter, ["-H", `Origin: ${d.origin}`])).status, 403);
  assert.equal(
    (await post("cancel", filter, [
      "-H",
      "Origin: http://evil.example",
      "-H",
      `X-CSRF-Token: ${csrf}`,
    ]))
      .status,
    403,
  );
  assert.equal((await get("/api/jobs/count?action=cancel&q=nightly")).count, 12, "nothing moved");

  // A job enqueued after the count is not touched.
  await cliOk(tmp.db, ["enqueue", JSON.stringify({ id: "nightly-late", command: "echo nightly" })]);
  const cancelled = await post("cancel", filter, good);
  assert.equal(cancelled.status, 200, cancelled.body);
  assert.deepEqual(JSON.parse(cancelled.body), {
    ok: true,
    done: 12,
    skipped: 0,
    message: "cancelled 12 jobs",
  });
  const states = async () =>
    Object.fromEntries(
      JSON.parse(await cliOk(tmp.db, ["list", "--json", "--limit", "100"])).map((
        j: { id: string; state: string },
      ) => [j.id, j.state]),
    );
  const s = await states();
  for (let i = 0; i < 12; i++) assert.equal(s[`nightly-${i}`], "cancelled");
  for (let i = 0; i < 5; i++) assert.equal(s[`hourly-${i}`], "pending");
  assert.equal(s["nightly-late"], "pending");

  // Delete: only finished jobs, as `queuectl remove`.
  const del = await get("/api/jobs/count?action=delete&q=nightly");
  assert.equal(del.count, 12);
  const deleted = await post("delete", { state: "", q: "nightly", upTo: del.upTo }, good);
  assert.equal(JSON.parse(deleted.body).done, 12, deleted.body);
  const after = await states();
  assert.equal(Object.keys(after).length, 6);
  assert.equal(after["nightly-late"], "pending");
  // A bad body is refused in one line.
  const bad = await post("retry", { state: "nope", upTo: 1 }, good);
  assert.equal(bad.status, 400);
  assert.match(JSON.parse(bad.body).message, /give state, q and upTo/);
});

Deno.test("dashboard(bulk): --read-only serves no bulk action", async () => {
  await using tmp = await tempDb();
  await cliOk(tmp.db, ["enqueue", JSON.stringify({ id: "ro1", command: "true" })]);
  await using d = await startDashboard(tmp.db, ["--read-only"]);
  const csrf = await csrfOf(d.origin, d.token);
  const r = await curl(d.origin + "/api/bulk/cancel", [
    "-X",
    "POST",
    ...bearer(d.token),
    "-H",
    "Content-Type: application/json",
    "--data",
    JSON.stringify({ state: "", q: "", upTo: 10 }),
    "-H",
    `Origin: ${d.origin}`,
    "-H",
    `X-CSRF-Token: ${csrf}`,
  ]);
  assert.equal(r.status, 403);
  assert.equal(
    JSON.parse((await curl(`${d.origin}/api/jobs/ro1`, bearer(d.token))).body).job.state,
    "pending",
  );
});

Deno.test("dashboard(sort): oldest first pages in enqueue order; newest first is the default", async () => {
  await using tmp = await tempDb();
  const lines = Array.from(
    { length: 120 },
    (_, i) => JSON.stringify({ id: `s${i}`, command: "true" }),
  );
  await cliOk(tmp.db, ["enqueue", "--file", "-"], { stdin: lines.join("\n") + "\n" });
  await using d = await startDashboard(tmp.db);
  const get = async (path: string) =>
    JSON.parse((await curl(d.origin + path, bearer(d.token))).body);
  const newest = await get("/api/jobs");
  assert.equal(newest.jobs[0].id, "s119");
  const first = await get("/api/jobs?sort=oldest");
  assert.deepEqual(first.jobs.slice(0, 3).map((j: { id: string }) => j.id), ["s0", "s1", "s2"]);
  const second = await get(`/api/jobs?sort=oldest&after=${first.next}`);
  assert.equal(second.jobs[0].id, "s50");
  const third = await get(`/api/jobs?sort=oldest&after=${second.next}`);
  assert.equal(third.jobs.length, 20);
  assert.equal(third.next, null);
  const searched = await get("/api/jobs?sort=oldest&q=s11");
  assert.deepEqual(
    searched.jobs.map((j: { id: string }) => j.id),
    ["s11", "s110", "s111", "s112", "s113", "s114", "s115", "s116", "s117", "s118", "s119"],
  );
});
