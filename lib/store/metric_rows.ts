/**
 * Rows of the stores' `metric_counts` tables → `MetricTotals`. Shared by the SQLite and PostgreSQL
 * stores, whose tables hold the same names: `duration` (label: outcome; bucket: histogram index),
 * `wait` (bucket: histogram index), `deleted` (jobs deleted since the totals were kept) and
 * `present` (jobs stored now).
 */
import type { AttemptOutcome } from "../job.ts";
import { type HistogramCounts, METRIC_BUCKETS_SECONDS, type MetricTotals } from "./store.ts";

export interface MetricRow {
  name: string;
  label: string;
  bucket: number;
  n: number;
  sum: number;
}

const emptyHistogram = (): HistogramCounts => ({
  buckets: new Array(METRIC_BUCKETS_SECONDS.length + 1).fill(0),
  sumSeconds: 0,
});

/** Sums the rows (a store with slots has several per key) into totals. */
export function metricTotalsFrom(rows: MetricRow[]): MetricTotals {
  const totals: MetricTotals = {
    enqueuedTotal: 0,
    attemptsByOutcome: {},
    attemptDuration: emptyHistogram(),
    queueWait: emptyHistogram(),
  };
  for (const r of rows) {
    const n = Number(r.n);
    const b = Math.min(Math.max(Number(r.bucket), 0), METRIC_BUCKETS_SECONDS.length);
    if (r.name === "deleted" || r.name === "present") totals.enqueuedTotal += n;
    else if (r.name === "duration") {
      const outcome = r.label as AttemptOutcome;
      totals.attemptsByOutcome[outcome] = (totals.attemptsByOutcome[outcome] ?? 0) + n;
      totals.attemptDuration.buckets[b] += n;
      totals.attemptDuration.sumSeconds += Number(r.sum);
    } else if (r.name === "wait") {
      totals.queueWait.buckets[b] += n;
      totals.queueWait.sumSeconds += Number(r.sum);
    }
  }
  return totals;
}
