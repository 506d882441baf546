/**
 * Writes a whole buffer to a file or stream that takes partial writes (`Deno.stdout`, `Deno.stderr`,
 * a `Deno.FsFile`). `writeSync` may write fewer bytes than asked (a pipe that is nearly full); the
 * rest must follow, or output is lost in the middle. No other I/O here.
 */

const encoder = new TextEncoder();

/** Something with a synchronous, possibly partial `writeSync`. */
export interface SyncWriter {
  writeSync(p: Uint8Array): number;
}

/** Writes all of `data` (text is UTF-8 encoded) to `to`, looping over partial writes. */
export function writeAll(to: SyncWriter, data: string | Uint8Array): void {
  const bytes = typeof data === "string" ? encoder.encode(data) : data;
  for (let off = 0; off < bytes.length;) off += to.writeSync(bytes.subarray(off));
}
