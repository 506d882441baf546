/** `status` with recurring jobs: one line counting them, and `schedules` in --json. */
import assert from "node:assert/strict";
import { cliOk, tempDb } from "./helpers.ts";

Deno.test("[status] should count schedules and paused ones only once there are any", async () => {
  await using t = await tempDb();
  await cliOk(t.db, ["enqueue", "--", "true"]);
  const before = await cliOk(t.db, ["status"]);
  assert.doesNotMatch(before, /schedules/);
  assert.equal(JSON.parse(await cliOk(t.db, ["status", "--json"])).schedules, 0);
  await cliOk(t.db, ["schedule", "add", "a", "@daily", "--", "true"]);
  await cliOk(t.db, ["schedule", "add", "b", "@hourly", "--", "true"]);
  await cliOk(t.db, ["schedule", "pause", "b"]);
  const after = await cliOk(t.db, ["status"]);
  assert.match(after, /\nschedules: 2 \(1 paused\) \(queuectl schedule list\)\n/);
  // Everything else is as it was.
  assert.equal(after.replace(/schedules: .*\n/, ""), before);
  const json = JSON.parse(await cliOk(t.db, ["status", "--json"]));
  assert.deepEqual([json.schedules, json.paused_schedules], [2, 1]);
});
