/**
 * An `enqueue` that exited 0 survives power loss: its commit syncs the write-ahead log before the
 * process exits (synchronous=FULL). Seen from outside, in the system calls, with strace; skipped
 * (with one line saying so) where strace is not installed. This test is about the SQLite file
 * itself, so it names its WAL.
 */
import assert from "node:assert/strict";
import { cliCommand, cliOk, openDb, tempDb } from "./helpers.ts";

/** True when `strace` can be run here. */
const hasStrace = (() => {
  try {
    return new Deno.Command("strace", { args: ["-V"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
})();
if (!hasStrace) {
  console.error("durability: skipped: strace is not installed (apt-get install strace)");
}

Deno.test({
  name: "durability: enqueue fsyncs the WAL after writing its commit and before exiting" +
    (hasStrace ? "" : " (skipped: strace is not installed; apt-get install strace)"),
  ignore: !hasStrace,
  fn: durability,
});

async function durability() {
  await using t = await tempDb();
  await cliOk(t.db, ["init"]);
  // Another connection stays open, as a running worker's would: then SQLite does not checkpoint
  // when the CLI closes, and the only sync left to see is the commit's own.
  const held = await openDb(t.db);
  try {
    await held.countJobs();
    const trace = `${t.dir}/trace.txt`;
    const out = await new Deno.Command("strace", {
      args: [
        "-f",
        "-y",
        "-e",
        "trace=pwrite64,write,fsync,fdatasync,exit_group",
        "-o",
        trace,
        ...cliCommand(),
        "enqueue",
        JSON.stringify({ id: "durable", command: "true" }),
      ],
      env: { QUEUECTL_DB: t.db },
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    const lines = (await Deno.readTextFile(trace)).split("\n");
    const wal = `${t.db}-wal>`;
    const lastWrite = lines.findLastIndex((l) => /\b(pwrite64|write)\(/.test(l) && l.includes(wal));
    const sync = lines.findIndex((l, i) =>
      i > lastWrite && /\b(fsync|fdatasync)\(/.test(l) && l.includes(wal)
    );
    const exit = lines.findIndex((l) => l.includes("exit_group("));
    assert.ok(lastWrite >= 0, "enqueue wrote no WAL frame");
    assert.ok(
      sync > lastWrite,
      "no fsync of the WAL after its last write: the commit is not durable",
    );
    assert.ok(exit < 0 || sync < exit, "the WAL sync came after exit");
    assert.equal((await held.getJob("durable"))?.state, "pending");
  } finally {
    await held.close();
  }
}
