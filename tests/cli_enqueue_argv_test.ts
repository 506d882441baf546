/**
 * `enqueue -- WORDS…`: one word is a shell command line as written; several are a program and its
 * arguments, run exactly as given (each quoted where the shell would change it). Run for real by a
 * worker, so the test sees what the job printed.
 */
import assert from "node:assert/strict";
import { cliOk, startWorkers, tempDb, waitFor } from "./helpers.ts";

Deno.test("[enqueue --] several words run as that argv; one word is a command line", async () => {
  await using t = await tempDb();
  const cases: Array<[string, string[], string]> = [
    ["argv", ["sh", "-c", "echo hi; echo there"], "hi\nthere\n"],
    ["quotes", ["printf", "%s|", "it's", "a b", "$HOME", ""], "it's|a b|$HOME||"],
    ["line", ["echo one two | tr a-z A-Z"], "ONE TWO\n"],
    ["plain", ["echo", "plain", "words"], "plain words\n"],
  ];
  for (const [id, words] of cases) {
    await cliOk(t.db, ["enqueue", "--id", id, "--cwd", t.dir, "--", ...words]);
  }
  const shown = JSON.parse(await cliOk(t.db, ["show", "argv", "--json"]));
  assert.equal(shown.command, "sh -c 'echo hi; echo there'");
  const w = startWorkers(t.db, 1);
  try {
    await waitFor(async () => {
      const jobs = JSON.parse(await cliOk(t.db, ["list", "--state", "completed", "--json"]));
      return jobs.length === cases.length;
    }, { what: "every job completed" });
  } finally {
    w.signal("SIGTERM");
    await w.done();
  }
  for (const [id, , output] of cases) {
    assert.equal(await cliOk(t.db, ["logs", id]), output, id);
  }
});
