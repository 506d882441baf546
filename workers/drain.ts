/**
 * `worker start --drain`: decides when the queue is drained and shows how far the drain has come.
 * The supervisor asks `poll` before it starts its workers and every `DRAIN_POLL_MS` after; once
 * it says drained, the supervisor stops its workers gracefully, as on Ctrl+C. Reads the store
 * only (kept counts, plus the waiting jobs), never writes it; prints progress to stderr.
 *
 * Drained: no job these workers may claim is ready or due within `DRAIN_WINDOW_MS`, none of
 * their queues' jobs is running, and no job of theirs waits on a job that can still move (one
 * running, or ready in a queue they claim from). Left in the queue, and counted in the summary
 * with the reason: jobs due later (a `--delay 1h`, a retry whose backoff runs past the window),
 * the jobs of a paused queue, of queues outside `--queue`, and jobs waiting on jobs that cannot
 * move (a waiting job whose dependency dies goes to dead, so it is not left waiting).
 */
import { formatDuration } from "../lib/duration.ts";
import type { DrainBacklog, JobCounts, Store } from "../lib/store/store.ts";
import { writeAll } from "../lib/write_all.ts";

/** How often the supervisor polls the store during a drain. */
export const DRAIN_POLL_MS = 250;
/** A job due within this much of now is waited for. */
export const DRAIN_WINDOW_MS = 1000;
/** The backlog is read again once this many times the cost of its last read has passed. */
const BACKLOG_EVERY = 20;
/** When stderr is not a terminal: at most one progress line this often. */
const PLAIN_EVERY_MS = 5000;

/** What a drain did, for its summary line and exit code. */
export interface DrainSummary {
  /** True when the queue was drained; false when the drain was stopped first (Ctrl+C). */
  drained: boolean;
  completed: number;
  dead: number;
  cancelled: number;
  /**
   * Failed jobs of the drained queues left waiting for a retry (due after the window once
   * drained).
   */
  failed: number;
  /** Pending jobs of the drained queues left (due after the window once drained). */
  pending: number;
  /** Jobs left in a paused queue, by queue. */
  paused: Record<string, number>;
  /** Jobs left in queues these workers do not claim from, by queue. */
  otherQueues: Record<string, number>;
  /** Jobs left waiting on jobs that cannot move for these workers. */
  stuck: number;
  elapsedMs: number;
}

/** Splits the backlog into what keeps the drain going (`live`) and what is left, and why. */
export function splitBacklog(
  rows: readonly DrainBacklog[],
  queues?: readonly string[],
): Pick<DrainSummary, "failed" | "pending" | "paused" | "otherQueues" | "stuck"> & {
  live: number;
} {
  const r = { live: 0, failed: 0, pending: 0, stuck: 0, paused: {}, otherQueues: {} } as
    & Pick<DrainSummary, "failed" | "pending" | "paused" | "otherQueues" | "stuck">
    & { live: number };
  const add = (to: Record<string, number>, q: string, n: number) => to[q] = (to[q] ?? 0) + n;
  for (const { queue, paused, kind, n } of rows) {
    const served = !queues || queues.includes(queue);
    // A running job finishes even when its queue was paused after the claim.
    if (kind === "processing") {
      if (served) r.live += n;
    } else if (!served) add(r.otherQueues, queue, n);
    else if (paused) add(r.paused, queue, n);
    else if (kind === "waiting_stuck") r.stuck += n;
    else {
      // Once drained none is ready or live; when stopped first, these are left too.
      if (kind !== "later_pending" && kind !== "later_failed") r.live += n;
      if (kind === "ready_failed" || kind === "later_failed") r.failed += n;
      else r.pending += n;
    }
  }
  return r;
}

export class DrainWatch {
  #base: JobCounts | null = null;
  #last: JobCounts | null = null;
  #startedAt = Date.now();
  #drained = false;
  #lastLineAt = 0;
  #lastLine = "";
  #drawn = false;
  #left: ReturnType<typeof splitBacklog> | null = null;
  #nextBacklogAt = 0;
  #finishedAtBacklog = 0;
  readonly #tty: boolean;
  readonly #queues?: readonly string[];

  /** `queues`: the ones the workers claim from (`worker start --queue`), every one when absent. */
  constructor(tty = Deno.stderr.isTerminal(), queues?: readonly string[]) {
    this.#tty = tty;
    this.#queues = queues;
  }

  /**
   * Reads the store: true once nothing these workers may run is ready, due within the window,
   * running, or waiting on a job that can still move. Shows progress as it goes. Safe to call
   * again after it said drained; `fresh` (the last call, which counts the jobs that finished
   * while the workers stopped) always reads the backlog.
   *
   * The backlog walks the unfinished jobs (about 1 ms per 1,000 on SQLite), so it is read again
   * only once `BACKLOG_EVERY` times its last cost has passed; between reads, progress counts
   * down from it by the jobs finished since.
   */
  async poll(store: Store, fresh = false): Promise<boolean> {
    const now = await store.now();
    const c = await store.counts(now + DRAIN_WINDOW_MS);
    this.#base ??= c;
    this.#last = c;
    if (fresh || this.#left === null || Date.now() >= this.#nextBacklogAt) {
      const started = Date.now();
      // The counts and the backlog are two reads: a job that ends between them is in neither
      // (progress would say 2/2 of 3). Counted again after the backlog, until nothing ended
      // in between (a few tries; the next backlog read corrects what is left).
      for (let tries = 0;; tries++) {
        const before = this.#finished();
        const backlog = await store.drainBacklog(now + DRAIN_WINDOW_MS, this.#queues);
        this.#last = await store.counts(now + DRAIN_WINDOW_MS);
        if (this.#finished() === before || tries === 3) {
          this.#left = splitBacklog(backlog, this.#queues);
          break;
        }
      }
      this.#finishedAtBacklog = this.#finished();
      this.#nextBacklogAt = Date.now() + (Date.now() - started) * BACKLOG_EVERY;
      if (this.#left.live === 0) {
        this.#drained = true;
        this.#show(0);
        return true;
      }
    }
    this.#show(Math.max(1, this.#left.live - (this.#finished() - this.#finishedAtBacklog)));
    return false;
  }

  #finished(): number {
    return this.#done("completed") + this.#done("dead") + this.#done("cancelled");
  }

  /** The jobs that reached a final state since the first poll, per state. */
  #done(state: "completed" | "dead" | "cancelled"): number {
    // Never below 0: a purge or a `dlq retry` during the drain lowers a count.
    return Math.max(0, (this.#last?.[state] ?? 0) - (this.#base?.[state] ?? 0));
  }

  #show(left: number) {
    const done = this.#finished();
    const total = done + left;
    const elapsed = Date.now() - this.#startedAt;
    const rate = elapsed > 0 ? done / (elapsed / 1000) : 0;
    const eta = rate > 0 && left > 0
      ? `, eta ${formatDuration(Math.ceil(left / rate) * 1000)}`
      : "";
    const line = `draining: ${done}/${total} done, ${rate.toFixed(1)} jobs/s${eta}`;
    if (this.#tty) {
      // Back to the start of the line after drawing, so any log line overwrites it.
      writeAll(Deno.stderr, `\r\x1b[K${line}\r`);
      this.#drawn = true;
      return;
    }
    const now = Date.now();
    if (left === 0) return; // the summary says it
    if (
      this.#lastLineAt > 0 && (now - this.#lastLineAt < PLAIN_EVERY_MS || line === this.#lastLine)
    ) {
      return;
    }
    this.#lastLineAt = now;
    this.#lastLine = line;
    writeAll(Deno.stderr, line + "\n");
  }

  /** Clears the progress line and tells what the drain did. */
  summary(): DrainSummary {
    if (this.#drawn) writeAll(Deno.stderr, "\r\x1b[K");
    const l = this.#left;
    return {
      drained: this.#drained,
      completed: this.#done("completed"),
      dead: this.#done("dead"),
      cancelled: this.#done("cancelled"),
      failed: l?.failed ?? 0,
      pending: l?.pending ?? 0,
      paused: l?.paused ?? {},
      otherQueues: l?.otherQueues ?? {},
      stuck: l?.stuck ?? 0,
      elapsedMs: Date.now() - this.#startedAt,
    };
  }
}

/** `drained in 3.2s: 40 completed, 1 dead; 2 failed waiting for a retry` */
export function summaryLine(s: DrainSummary): string {
  const took = formatDuration(s.elapsedMs);
  const head = s.drained
    ? `drained in ${took}`
    : `stopped after ${took}, before the queue was drained`;
  const parts = [`${s.completed} completed`, `${s.dead} dead`];
  if (s.cancelled > 0) parts.push(`${s.cancelled} cancelled`);
  const left: string[] = [];
  if (s.failed > 0) left.push(`${s.failed} failed waiting for a retry`);
  if (s.pending > 0) left.push(`${s.pending} pending`);
  for (const [q, n] of Object.entries(s.paused)) left.push(`${n} pending in paused queue ${q}`);
  const others = Object.keys(s.otherQueues);
  if (others.length > 0) {
    const n = Object.values(s.otherQueues).reduce((a, b) => a + b, 0);
    left.push(
      `${n} pending in queue${others.length === 1 ? "" : "s"} ${
        others.join(", ")
      } (not in --queue)`,
    );
  }
  if (s.stuck > 0) left.push(`${s.stuck} waiting on jobs that cannot run now`);
  return `${head}: ${parts.join(", ")}` +
    (left.length > 0 ? `; left in the queue: ${left.join(", ")}` : "");
}
