/**
 * The one rule for whether a registered worker is alive, used by every command that counts or
 * signals workers (`status`, `worker list`, `worker stop`). It is the complement of the rescue
 * rule in `Store.findStaleJobs`: a worker is live exactly as long as its job would not be rescued.
 * No I/O here.
 */
import type { WorkerInfo } from "../lib/store/store.ts";

/** Not stopped, and its last heartbeat no older than the lease at `now`. */
export function isWorkerLive(
  w: Pick<WorkerInfo, "heartbeatAt" | "stoppedAt">,
  leaseTimeoutMs: number,
  now: number,
): boolean {
  return w.stoppedAt === null && now - w.heartbeatAt <= leaseTimeoutMs;
}

/**
 * What `worker list` shows: `running`, `stopping` (draining after a graceful stop: it claims
 * nothing more and exits after its job), `stopped`, or `lost` (no heartbeat within the lease).
 */
export type WorkerStatus = "running" | "stopping" | "stopped" | "lost";

export function workerStatus(
  w: Pick<WorkerInfo, "heartbeatAt" | "stoppedAt" | "stoppingAt">,
  leaseTimeoutMs: number,
  now: number,
): WorkerStatus {
  if (w.stoppedAt !== null) return "stopped";
  if (!isWorkerLive(w, leaseTimeoutMs, now)) return "lost";
  return w.stoppingAt !== null ? "stopping" : "running";
}
