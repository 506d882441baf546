/** An invalid `QUEUECTL_LOG` is refused like an invalid `--log-level`: one line, exit 2. */
import assert from "node:assert/strict";
import { UsageError } from "../lib/errors.ts";
import { resolveLogLevel } from "../lib/log.ts";
import { startWorkers, tempDb, waitFor } from "./helpers.ts";

Deno.test("[log] resolveLogLevel refuses a bad QUEUECTL_LOG like a bad --log-level", () => {
  assert.equal(resolveLogLevel(undefined, undefined), "info");
  assert.equal(resolveLogLevel(undefined, ""), "info");
  assert.equal(resolveLogLevel(undefined, "WARN"), "warning");
  assert.equal(resolveLogLevel("debug", "error"), "debug");
  for (
    const [flag, env, message] of [
      [undefined, "loud", 'QUEUECTL_LOG must be debug, info, warn or error, got "loud"'],
      ["debug", "loud", 'QUEUECTL_LOG must be debug, info, warn or error, got "loud"'],
      ["loud", undefined, '--log-level must be debug, info, warn or error, got "loud"'],
    ] as const
  ) {
    assert.throws(() => resolveLogLevel(flag, env), (e) => {
      assert.ok(e instanceof UsageError);
      assert.equal(e.message, message);
      return true;
    });
  }
});

Deno.test("[log] worker start should refuse an invalid QUEUECTL_LOG with exit 2", async () => {
  await using t = await tempDb();
  const w = startWorkers(t.db, 1, { QUEUECTL_LOG: "loud" });
  let exited = false;
  const done = w.done().then((s) => {
    exited = true;
    return s;
  });
  try {
    await waitFor(() => exited, { timeoutMs: 30_000, what: "worker start to exit" });
  } finally {
    if (!exited) {
      w.signal("SIGTERM");
      w.signal("SIGTERM");
    }
  }
  const status = await done;
  assert.equal(status.code, 2, w.log());
  assert.equal(
    w.log(),
    'queuectl: QUEUECTL_LOG must be debug, info, warn or error, got "loud"\n',
  );
});
