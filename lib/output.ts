/**
 * Where a run's output lives and how it is read back. Each run (attempt) of a job writes its own
 * files, named by the random key the store gave that run at claim (`Job.outputKey`):
 * `<db>-logs/<key>.log` and, once the output outgrew half the cap, `<key>.log.1` holding the
 * previous half. A file that is not the run's first generation starts with `DROPPED_MARKER`, so a
 * reader knows whether output was dropped before the older file. Files are never rewritten in
 * place, so a follower can track them by inode across a rotation.
 *
 * The writer is in workers/executor.ts; this module holds the naming and the readers.
 */
import { join } from "./paths.ts";

/** The first line of every output file after a run's first: earlier output was dropped. */
export const DROPPED_MARKER = new TextEncoder().encode(
  "[queuectl: earlier output dropped; output is capped per attempt, keeping the tail]\n",
);

/** The output file of the run with `key`; the previous half is at the same path + ".1". */
export function outputPath(dbPath: string, key: string): string {
  return join(`${dbPath}-logs`, `${key}.log`);
}

function startsWithMarker(bytes: Uint8Array): boolean {
  if (bytes.length < DROPPED_MARKER.length) return false;
  for (let i = 0; i < DROPPED_MARKER.length; i++) if (bytes[i] !== DROPPED_MARKER[i]) return false;
  return true;
}

async function readIfThere(path: string): Promise<Uint8Array | null> {
  try {
    return await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

/**
 * A run's whole stored output (null when it wrote none): the older half, then the newer one
 * without its marker. The older half keeps its marker, which says that output before it was
 * dropped.
 */
export async function readOutput(path: string): Promise<Uint8Array | null> {
  const old = await readIfThere(path + ".1");
  let cur = await readIfThere(path);
  if (cur && startsWithMarker(cur)) cur = cur.subarray(DROPPED_MARKER.length);
  if (!old) return cur;
  const all = new Uint8Array(old.length + (cur?.length ?? 0));
  all.set(old);
  if (cur) all.set(cur, old.length);
  return all;
}

/**
 * Deletes the output of runs with these keys. Returns one message per file that exists but could
 * not be deleted (a file that is not there is fine: the run printed nothing).
 */
export async function removeOutput(dbPath: string, keys: Iterable<string>): Promise<string[]> {
  const failures: string[] = [];
  for (const key of keys) {
    for (const p of [outputPath(dbPath, key), outputPath(dbPath, key) + ".1"]) {
      try {
        await Deno.remove(p);
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) failures.push(`${p}: ${(e as Error).message}`);
      }
    }
  }
  return failures;
}

const NOTE_MISSED = new TextEncoder().encode(
  "[queuectl: output dropped while following: the job printed faster than the cap keeps]\n",
);

/**
 * Follows one run's output as it is written, like `tail -F`: it keeps the file it reads open, so
 * a rotation (the file renamed to ".1" and a new one started) loses nothing that was written
 * before it; it notes output that was dropped between two polls. `poll()` copies what is new.
 */
export class OutputFollower {
  #file: Deno.FsFile | null = null;
  #ino: number | null = null;
  #atStart = true;
  #opened = false;
  #buf = new Uint8Array(64 * 1024);

  constructor(readonly path: string, readonly sink: (bytes: Uint8Array) => void) {}

  /** Copies everything written since the last call. */
  async poll(): Promise<void> {
    if (!this.#file) {
      if (!await this.#open()) return;
    }
    for (let rotations = 0; rotations < 8; rotations++) {
      await this.#drain();
      const now = await this.#pathIno(this.path);
      // Unchanged, or between the writer's rename and its new file: look again next time.
      if (now === this.#ino || now === null) return;
      // Rotated: the writer closed our file before renaming it, so one more drain reads its end;
      // then move on to the new file.
      await this.#drain();
      const oldIno = this.#ino;
      this.#close();
      const dotOne = await this.#pathIno(this.path + ".1");
      if (dotOne !== oldIno) this.sink(NOTE_MISSED);
      if (!await this.#open()) return;
    }
  }

  close() {
    this.#close();
  }

  #close() {
    try {
      this.#file?.close();
    } catch { /* already closed */ }
    this.#file = null;
  }

  async #pathIno(path: string): Promise<number | null> {
    try {
      return (await Deno.stat(path)).ino;
    } catch {
      return null;
    }
  }

  /** Opens the current file; on the first open also prints the older half already rotated. */
  async #open(): Promise<boolean> {
    try {
      this.#file = await Deno.open(this.path, { read: true });
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return false;
      throw e;
    }
    this.#ino = (await this.#file.stat()).ino;
    this.#atStart = true;
    const first = !this.#opened;
    this.#opened = true;
    if (first && await this.#pathIno(this.path + ".1") !== this.#ino) {
      const old = await readIfThere(this.path + ".1");
      if (old) this.sink(old);
    }
    return true;
  }

  async #drain() {
    const file = this.#file!;
    for (;;) {
      const n = await file.read(this.#buf);
      if (n === null || n === 0) return;
      let chunk = this.#buf.subarray(0, n);
      if (this.#atStart) {
        this.#atStart = false;
        // The marker is written whole by one write before any output, so one read holds it.
        if (startsWithMarker(chunk)) chunk = chunk.subarray(DROPPED_MARKER.length);
      }
      if (chunk.length > 0) this.sink(chunk.slice());
    }
  }
}
