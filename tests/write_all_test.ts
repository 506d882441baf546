/** `lib/write_all.ts`: a whole buffer reaches a writer that takes a few bytes per call. */
import assert from "node:assert/strict";
import { writeAll } from "../lib/write_all.ts";

/** A writer that takes at most `step` bytes per call, as a nearly full pipe does. */
function trickle(step: number) {
  const got: number[] = [];
  return {
    got,
    calls: 0,
    writeSync(p: Uint8Array): number {
      this.calls++;
      const n = Math.min(step, p.length);
      got.push(...p.subarray(0, n));
      return n;
    },
  };
}

Deno.test("writeAll: writes every byte of a buffer through partial writes, in order", () => {
  const data = Uint8Array.from({ length: 1000 }, (_, i) => i % 251);
  const w = trickle(7);
  writeAll(w, data);
  assert.deepEqual(Uint8Array.from(w.got), data);
  assert.equal(w.calls, Math.ceil(1000 / 7));
});

Deno.test("writeAll: encodes text as UTF-8 and writes all of it", () => {
  const w = trickle(3);
  writeAll(w, "héllo ✓ 日本\n");
  assert.equal(new TextDecoder().decode(Uint8Array.from(w.got)), "héllo ✓ 日本\n");
});

Deno.test("writeAll: an empty buffer makes no write", () => {
  const w = trickle(3);
  writeAll(w, "");
  assert.equal(w.calls, 0);
});
