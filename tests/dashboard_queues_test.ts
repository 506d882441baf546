/**
 * The dashboard's queue filter over real HTTP: the jobs list, its count and a bulk action keep
 * to one queue, and the page offers the filter.
 */
import assert from "node:assert/strict";
import { cliOk, tempDb } from "./helpers.ts";
import { curl, startDashboard } from "./dashboard_helpers.ts";

Deno.test("dashboard: the jobs list, its count and bulk actions filter by queue", async () => {
  await using tmp = await tempDb();
  for (const [id, queue] of [["m1", "emails"], ["m2", "emails"], ["d1", "default"]]) {
    await cliOk(tmp.db, ["enqueue", "--id", id, "--queue", queue, "--", "true"]);
  }
  await using d = await startDashboard(tmp.db);
  const auth = ["-H", `Authorization: Bearer ${d.token}`];
  const jobs = await curl(`${d.origin}/api/jobs?queue=emails`, auth);
  assert.equal(jobs.status, 200);
  const listed = JSON.parse(jobs.body).jobs as Array<{ id: string; queue: string }>;
  assert.deepEqual(listed.map((j) => [j.id, j.queue]), [["m2", "emails"], ["m1", "emails"]]);
  const all = JSON.parse((await curl(`${d.origin}/api/jobs`, auth)).body).jobs;
  assert.equal(all.length, 3);
  const count = await curl(`${d.origin}/api/jobs/count?action=cancel&queue=emails`, auth);
  assert.equal(JSON.parse(count.body).count, 2);
  const { upTo } = JSON.parse(count.body);
  const page = await curl(d.origin + "/", ["-b", `queuectl_token=${d.token}`]);
  assert.match(page.body, /id: "queue", name: "queue"/);
  const csrf = /<meta name="csrf" content="([^"]+)">/.exec(page.body)?.[1];
  assert.ok(csrf, "the page carries its CSRF token");
  const cancel = await curl(`${d.origin}/api/bulk/cancel`, [
    ...auth,
    "-X",
    "POST",
    "-H",
    `x-csrf-token: ${csrf}`,
    "-H",
    `Origin: ${d.origin}`,
    "-H",
    "content-type: application/json",
    "--data",
    JSON.stringify({ state: "", q: "", queue: "emails", upTo }),
  ]);
  assert.equal(cancel.status, 200, cancel.body);
  assert.equal(JSON.parse(cancel.body).done, 2);
  const left = JSON.parse(await cliOk(tmp.db, ["list", "--state", "pending", "--json"]));
  assert.deepEqual(left.map((j: { id: string }) => j.id), ["d1"]);
});
