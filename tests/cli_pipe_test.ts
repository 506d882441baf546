/** Output into a pipe whose reader goes away early (`queuectl list | head -1`). */
import assert from "node:assert/strict";
import { cliCommand, cliOk, tempDb } from "./helpers.ts";

Deno.test("[list] should exit 0 quietly when the reader of its output goes away", async () => {
  await using t = await tempDb();
  const lines = Array.from({ length: 3000 }, (_, i) => JSON.stringify({ command: `echo ${i}` }));
  await cliOk(t.db, ["enqueue", "--file", "-"], { stdin: lines.join("\n") });
  const quoted = cliCommand().map((a) => `'${a.replaceAll("'", `'\\''`)}'`).join(" ");
  const out = await new Deno.Command("bash", {
    args: ["-c", `set -o pipefail; ${quoted} list --limit 3000 | head -1 >/dev/null`],
    env: { QUEUECTL_DB: t.db, NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(stderr, "");
  assert.equal(out.code, 0);
});
