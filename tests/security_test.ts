/** What a worker process may do, and the modes of the files queuectl creates. */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { workerCommand } from "../workers/supervisor.ts";
import { cliOk, jobState, startWorkers, tempDb, waitFor } from "./helpers.ts";

const PROBE = fileURLToPath(new URL("./fixtures/probe_permissions.ts", import.meta.url));

Deno.test("security: a worker's permissions deny the network and reads outside its data directory", async () => {
  await using t = await tempDb();
  const cmd = workerCommand(t.db, "host", "info");
  const mainAt = cmd.args.indexOf("__worker") - 1;
  assert.ok(mainAt > 0, "expected deno run … main.ts __worker …");
  const flags = cmd.args.slice(0, mainAt);
  assert.ok(!flags.includes("-A") && !flags.includes("--allow-all"));
  assert.ok(!flags.some((f) => f.startsWith("--allow-net")));
  const out = await new Deno.Command(cmd.exec, {
    args: [...flags, PROBE, `${t.dir}/probe.txt`],
    cwd: cmd.cwd,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout).trim();
  assert.equal(
    text,
    "net:denied read-outside:denied write-data:allowed",
    new TextDecoder().decode(out.stderr),
  );
});

Deno.test("security: the data directory is 0700 and the database and job logs are 0600", async () => {
  await using t = await tempDb();
  const db = `${t.dir}/data/queue.db`;
  await cliOk(db, ["enqueue", JSON.stringify({ id: "j", command: "echo secret-output" })]);
  const w = startWorkers(db, 1);
  try {
    await waitFor(async () => (await jobState(db, "j")) === "completed", { what: "j completed" });
  } finally {
    w.signal("SIGTERM");
  }
  await w.done();
  const mode = async (p: string) => ((await Deno.stat(p)).mode! & 0o777).toString(8);
  assert.equal(await mode(`${t.dir}/data`), "700");
  assert.equal(await mode(db), "600");
  assert.equal(await mode(`${db}-wal`).catch(() => "600"), "600");
  // Output is kept in the database itself: no other file holds it.
  await assert.rejects(() => Deno.stat(`${db}-logs`), Deno.errors.NotFound);
});
