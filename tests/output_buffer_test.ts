/** The bounded buffer a run's output passes through on its way to the store. */
import assert from "node:assert/strict";
import { OutputBuffer } from "../workers/output_buffer.ts";

const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => new TextDecoder().decode(b);

Deno.test("output buffer: takes what is new, with its offset in the whole stream", () => {
  const b = new OutputBuffer(10);
  assert.equal(b.take(), null);
  b.write(bytes("abc"));
  b.write(bytes("de"));
  const first = b.take()!;
  assert.deepEqual([first.offset, text(first.data)], [0, "abcde"]);
  assert.equal(b.take(), null);
  b.write(bytes("fg"));
  const second = b.take()!;
  assert.deepEqual([second.offset, text(second.data)], [5, "fg"]);
  assert.equal(b.total, 7);
});

Deno.test("output buffer: keeps only the newest maxBytes between takes", () => {
  const b = new OutputBuffer(4);
  b.write(bytes("abc"));
  b.write(bytes("def"));
  b.write(bytes("g"));
  const c = b.take()!;
  assert.deepEqual([c.offset, text(c.data)], [3, "defg"]);
  b.write(bytes("0123456789"));
  const d = b.take()!;
  assert.deepEqual([d.offset, text(d.data)], [13, "6789"]);
  assert.equal(b.total, 17);
});
