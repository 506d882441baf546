/**
 * A run's output on its way to the store: the newest `maxBytes` of it, with the offset (in the
 * whole stream the job printed) of the first byte held. The worker takes what is new every second
 * and at the end (`take`) and appends it to the store, which keeps the same tail. Output that
 * passes the cap between two takes is dropped here, so memory stays bounded however fast a job
 * prints. No I/O here.
 */

/** Bytes of one run's output, starting at `offset` in everything the run printed. */
export interface OutputChunk {
  offset: number;
  data: Uint8Array;
}

export class OutputBuffer {
  #chunks: Uint8Array[] = [];
  #held = 0;
  /** Offset of the first byte held (or of the next byte, when nothing is held). */
  #start = 0;
  /** Every byte the run printed so far, kept or not. */
  total = 0;

  constructor(readonly maxBytes: number) {}

  write(chunk: Uint8Array) {
    if (chunk.length === 0) return;
    this.total += chunk.length;
    if (chunk.length >= this.maxBytes) {
      this.#chunks = [chunk.slice(chunk.length - this.maxBytes)];
      this.#held = this.maxBytes;
      this.#start = this.total - this.maxBytes;
      return;
    }
    this.#chunks.push(chunk.slice());
    this.#held += chunk.length;
    while (this.#held > this.maxBytes) {
      const first = this.#chunks[0];
      const over = this.#held - this.maxBytes;
      if (first.length <= over) {
        this.#chunks.shift();
        this.#held -= first.length;
        this.#start += first.length;
      } else {
        this.#chunks[0] = first.subarray(over);
        this.#held -= over;
        this.#start += over;
      }
    }
  }

  /** What was printed since the last take (its newest `maxBytes`), or `null` when nothing was. */
  take(): OutputChunk | null {
    if (this.#held === 0) return null;
    const data = new Uint8Array(this.#held);
    let at = 0;
    for (const c of this.#chunks) {
      data.set(c, at);
      at += c.length;
    }
    const chunk = { offset: this.#start, data };
    this.#chunks = [];
    this.#held = 0;
    this.#start = this.total;
    return chunk;
  }
}
