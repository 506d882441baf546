/**
 * The Prometheus text format (version 0.0.4) of a store's state: what `queuectl metrics` prints
 * and the dashboard's `/metrics` serves. Reads through the Store only; no SQL here.
 *
 * - `queuectl_jobs{state,queue}`, `queuectl_jobs_scheduled`: gauges from the kept counts (the
 *   queues other than `default` counted from their own index).
 * - `queuectl_jobs_enqueued_total`, `queuectl_attempts_total{outcome}` and the histograms
 *   `queuectl_attempt_duration_seconds`, `queuectl_queue_wait_seconds`: from the stored rows plus
 *   what purge and remove deleted (see `MetricTotals`), so deleting jobs never lowers them.
 * - `queuectl_workers{host}`: live workers (not stopped, heartbeat within the lease) per host.
 */
import { type AttemptOutcome, JOB_STATES } from "../job.ts";
import { loadSetting } from "../settings.ts";
import { type HistogramCounts, METRIC_BUCKETS_SECONDS, type Store } from "../store/store.ts";
import { isWorkerLive } from "../../workers/liveness.ts";

/** The content type Prometheus scrapers expect for this text. */
export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** Every attempt outcome, so each series exists (at 0) before its first attempt. */
const OUTCOMES: readonly AttemptOutcome[] = [
  "completed",
  "exited",
  "spawn_error",
  "timeout",
  "signalled",
  "worker_lost",
  "interrupted",
  "cancelled",
];

/** A label value with `\`, `"` and newlines escaped, as the format asks. */
function label(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

function header(lines: string[], name: string, type: string, help: string) {
  lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
}

function histogram(lines: string[], name: string, help: string, h: HistogramCounts) {
  header(lines, name, "histogram", help);
  let cumulative = 0;
  METRIC_BUCKETS_SECONDS.forEach((le, i) => {
    cumulative += h.buckets[i];
    lines.push(`${name}_bucket{le="${le}"} ${cumulative}`);
  });
  cumulative += h.buckets[METRIC_BUCKETS_SECONDS.length];
  lines.push(`${name}_bucket{le="+Inf"} ${cumulative}`);
  lines.push(`${name}_sum ${Number(h.sumSeconds.toFixed(6))}`);
  lines.push(`${name}_count ${cumulative}`);
}

/** The metrics of `store` now, as Prometheus text (ends with a newline). */
export async function renderMetrics(store: Store): Promise<string> {
  const now = await store.now();
  const [counts, queues, totals, workers, leaseMs] = await Promise.all([
    store.counts(now),
    store.listQueues(),
    store.metricTotals(),
    store.listWorkers(),
    loadSetting(store, "lease-timeout"),
  ]);
  const lines: string[] = [];
  header(lines, "queuectl_jobs", "gauge", "Jobs stored now, by state and queue.");
  for (const q of queues) {
    for (const s of JOB_STATES) {
      lines.push(`queuectl_jobs{state="${s}",queue="${label(q.name)}"} ${q.counts[s]}`);
    }
  }
  header(
    lines,
    "queuectl_jobs_scheduled",
    "gauge",
    "Pending or failed jobs whose run time is still to come.",
  );
  lines.push(`queuectl_jobs_scheduled ${counts.scheduled}`);
  header(
    lines,
    "queuectl_jobs_enqueued_total",
    "counter",
    "Jobs ever stored: those stored now plus those purged or removed.",
  );
  lines.push(`queuectl_jobs_enqueued_total ${totals.enqueuedTotal}`);
  header(lines, "queuectl_attempts_total", "counter", "Finished attempts, by outcome.");
  for (const o of OUTCOMES) {
    lines.push(`queuectl_attempts_total{outcome="${o}"} ${totals.attemptsByOutcome[o] ?? 0}`);
  }
  histogram(
    lines,
    "queuectl_attempt_duration_seconds",
    "Run time of finished attempts.",
    totals.attemptDuration,
  );
  histogram(
    lines,
    "queuectl_queue_wait_seconds",
    "Wait of every claim, retries included: its start minus the later of run time and enqueue time.",
    totals.queueWait,
  );
  header(lines, "queuectl_workers", "gauge", "Live workers (heartbeat within the lease), by host.");
  const perHost = new Map<string, number>();
  for (const w of workers) {
    if (isWorkerLive(w, leaseMs, now)) perHost.set(w.host, (perHost.get(w.host) ?? 0) + 1);
  }
  for (const [host, n] of [...perHost].sort()) {
    lines.push(`queuectl_workers{host="${label(host)}"} ${n}`);
  }
  return lines.join("\n") + "\n";
}
