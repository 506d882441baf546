/**
 * Generated ids of a batch: random, 12 characters of [0-9a-z] as ever, and in increasing order
 * within the batch, so that the store adds them to its id index one after the other.
 */
import assert from "node:assert/strict";
import { orderedIds, parseJobsText, parseNdjson, type SpecContext } from "../lib/spec.ts";

const CTX: SpecContext = {
  config: { maxRetries: 3, jobTimeoutMs: 0 },
  cwd: "/home/ada/work",
  now: Date.UTC(2026, 0, 1),
};

const increasing = (ids: string[]) => ids.every((id, i) => i === 0 || ids[i - 1] < id);

Deno.test("spec: orderedIds(n) gives n ids in increasing order, the k-th in the k-th nth of the space", () => {
  for (const n of [1, 2, 7, 1_000, 50_000]) {
    const next = orderedIds(n);
    const ids = Array.from({ length: n }, next);
    assert.ok(ids.every((id) => /^[0-9a-z]{12}$/.test(id)), `n=${n}: the id format`);
    assert.ok(increasing(ids), `n=${n}: increasing`);
    const space = 36 ** 6;
    for (const k of [0, Math.floor(n / 2), n - 1]) {
      const head = parseInt(ids[k].slice(0, 6), 36);
      assert.ok(head >= Math.floor((k * space) / n) && head < Math.floor(((k + 1) * space) / n));
    }
  }
});

Deno.test("spec: orderedIds differ from one batch to the next, and go on at random past n", () => {
  const a = Array.from({ length: 100 }, orderedIds(100));
  const b = Array.from({ length: 100 }, orderedIds(100));
  assert.equal(new Set([...a, ...b]).size, 200);
  const next = orderedIds(2);
  const past = Array.from({ length: 50 }, next).slice(2);
  assert.ok(!increasing(past), "past n, ids are random");
  assert.ok(past.every((id) => /^[0-9a-z]{12}$/.test(id)));
});

Deno.test("spec: the generated ids of a job file increase in file order; given ids are kept", () => {
  const lines = Array.from(
    { length: 500 },
    (_, i) => i % 100 === 0 ? `{"id":"given-${i}","command":"x"}` : `{"command":"echo ${i}"}`,
  );
  for (const text of [lines.join("\n"), `[${lines.join(",\n")}]`]) {
    const jobs = text.startsWith("[")
      ? parseJobsText(text, CTX, "jobs.json")
      : parseNdjson(text, CTX, "jobs.ndjson");
    assert.equal(jobs.length, 500);
    const generated = jobs.filter((j) => !j.id.startsWith("given-")).map((j) => j.id);
    assert.equal(generated.length, 495);
    assert.ok(increasing(generated));
    assert.deepEqual(jobs.filter((j) => j.id.startsWith("given-")).map((j) => j.id), [
      "given-0",
      "given-100",
      "given-200",
      "given-300",
      "given-400",
    ]);
  }
});
