/**
 * The job state machine: states, events, and the pure decisions that move a job between states.
 *
 * Terminology:
 * - attempt: one run of a job's command by a worker. `attempts` counts the runs started so far, for
 *   the job's whole life: attempt numbers never restart, so attempt 4 follows attempt 3 even when a
 *   person retried the job from the DLQ in between.
 * - retry budget: a job runs at most `1 + maxRetries` times since `retryBase`, the value of
 *   `attempts` when a person last retried it from `dead` or `cancelled` (0 before that). The runs
 *   that count against the budget are `attempts - retryBase` (see `attemptsUsed`).
 * - backoff: the wait before a retry, `backoffBase ^ n` seconds after the budget's failed run `n`.
 *
 * This module decides; the store records. No I/O and no clock here: every function takes `now`
 * (milliseconds since the Unix epoch) from its caller.
 */

/** Every state a job can be in. The same strings appear in SQL, CLI output and `--json`. */
export const JOB_STATES = [
  "pending",
  "processing",
  "completed",
  "failed",
  "dead",
  "cancelled",
] as const;

/**
 * - `pending`: waiting to run at `runAt`. Left by a claim (→ processing) or `cancel`.
 * - `processing`: owned by one worker. Left when that worker reports an outcome, by the rescue of
 *   a lost worker (→ failed or dead), or by `cancel` (→ cancelled; the worker then stops the run).
 * - `completed`: exited 0. Final, until purged.
 * - `failed`: an attempt failed and a retry is scheduled at `runAt`. Left by a claim, `retry`
 *   (→ pending now) or `cancel`.
 * - `dead`: the last allowed attempt failed; the job sits in the dead letter queue (`dlq list`).
 *   Left only by `dlq retry` / `retry` (→ pending).
 * - `cancelled`: stopped by a person, before it ran again or while it ran. Left only by `retry`
 *   (→ pending).
 */
export type JobState = typeof JOB_STATES[number];

/** States in which a job waits to be claimed once `runAt` has come. */
export const READY_STATES: readonly JobState[] = ["pending", "failed"];

/**
 * States in which a job will still run or is running: waiting (`pending`, `failed`) or held by a
 * worker (`processing`). Its output may still grow; it cannot be purged or removed.
 */
export const ACTIVE_STATES: readonly JobState[] = ["pending", "processing", "failed"];

/**
 * States a job only leaves when a person acts (`retry`): it will not run again on its own. Only
 * these can be purged or removed. Together with `ACTIVE_STATES`, every state exactly once.
 */
export const FINISHED_STATES: readonly JobState[] = ["completed", "dead", "cancelled"];

/** True when `state` is one of `states` (a `readonly JobState[]` narrowed for `includes`). */
export function isIn(state: string, states: readonly JobState[]): state is JobState {
  return (states as readonly string[]).includes(state);
}

/** How an attempt ended. Kept apart from the state: a non-zero exit, a failed spawn, a timeout and
 * a lost worker are different outcomes that all lead to `failed` or `dead`; `cancelled` is a run
 * that a person stopped with `cancel` (the job became `cancelled`). */
export type AttemptOutcome =
  | "completed"
  | "exited"
  | "spawn_error"
  | "timeout"
  | "signalled"
  | "worker_lost"
  | "interrupted"
  | "cancelled";

/**
 * The event that a run's outcome is for the state machine: `completed` succeeds, `interrupted`
 * gives the run back, every other outcome fails the attempt.
 */
export function eventForOutcome(outcome: AttemptOutcome): JobEvent {
  if (outcome === "completed") return { type: "succeed" };
  if (outcome === "interrupted") return { type: "interrupt" };
  return { type: "fail", outcome };
}

/** The fields of a job that the state machine reads. */
export interface JobCore {
  state: JobState;
  /** Runs started in the job's whole life; numbers attempts, never reset. */
  attempts: number;
  maxRetries: number;
  /** `attempts` when a person last gave the job a fresh retry budget; 0 (the default) before. */
  retryBase?: number;
}

/** What can happen to a job. */
export type JobEvent =
  | { type: "claim" }
  | { type: "succeed" }
  | { type: "fail"; outcome: Exclude<AttemptOutcome, "completed" | "interrupted"> }
  | { type: "interrupt" }
  | { type: "retry" }
  | { type: "cancel" };

/** The result of a legal transition: the new state and the fields that change with it. */
export interface Transition {
  state: JobState;
  attempts: number;
  /** When the job may next be claimed; `null` leaves `runAt` unchanged. */
  runAt: number | null;
  /** A fresh retry budget starts after this many runs; absent leaves `retryBase` unchanged. */
  retryBase?: number;
}

/** Retry timing, resolved from config by the caller. */
export interface BackoffPolicy {
  /** Delay after failed attempt `a` is `backoffBaseSeconds ^ a` seconds. */
  backoffBaseSeconds: number;
  /** Upper bound of any single delay, in seconds. */
  backoffMaxSeconds: number;
  /** When true, each delay is scaled by a random factor in [0.5, 1.5) from `random`. */
  jitter: boolean;
}

export const DEFAULT_BACKOFF: BackoffPolicy = {
  backoffBaseSeconds: 2,
  backoffMaxSeconds: 3600,
  jitter: false,
};

/** Thrown for an event that is not allowed in the job's current state. */
export class IllegalTransition extends Error {
  constructor(readonly from: JobState, readonly event: JobEvent["type"]) {
    super(`cannot ${event} a job that is ${from}`);
  }
}

/**
 * Seconds to wait after failed attempt `attempt` (1-based): `base ^ attempt`, optionally jittered
 * by a factor `0.5 + random()` in [0.5, 1.5), and never more than `backoffMaxSeconds` (the cap is
 * applied after the jitter, so it bounds every delay).
 */
export function backoffSeconds(
  attempt: number,
  policy: BackoffPolicy,
  random: () => number = Math.random,
): number {
  const raw = Math.pow(policy.backoffBaseSeconds, attempt);
  const capped = Math.min(Number.isFinite(raw) ? raw : Infinity, policy.backoffMaxSeconds);
  return policy.jitter ? Math.min(capped * (0.5 + random()), policy.backoffMaxSeconds) : capped;
}

/** When a job whose attempt `attempt` failed at `now` may run again (ms since the epoch). */
export function nextRunAt(
  attempt: number,
  now: number,
  policy: BackoffPolicy,
  random?: () => number,
): number {
  return now + Math.round(backoffSeconds(attempt, policy, random) * 1000);
}

/**
 * Runs that count against the job's current retry budget: `attempts - retryBase`, so 1 during the
 * first run after a person's retry (shown as "attempt 1 of 1 + maxRetries").
 */
export function attemptsUsed(job: Pick<JobCore, "attempts" | "retryBase">): number {
  return job.attempts - (job.retryBase ?? 0);
}

/** True when a job whose budget has run `attemptsUsed` times may not run again after a failure. */
export function isLastAttempt(
  job: Pick<JobCore, "attempts" | "maxRetries" | "retryBase">,
): boolean {
  return attemptsUsed(job) >= 1 + job.maxRetries;
}

/**
 * The one transition table. Returns the job's next state, or throws `IllegalTransition` when
 * `event` is not allowed from `job.state`.
 *
 * - claim: pending|failed → processing; `attempts + 1`.
 * - succeed: processing → completed.
 * - fail: processing → failed (retry at `nextRunAt(attemptsUsed)`) or, on the last attempt of the
 *   budget, dead.
 * - interrupt (a forced shutdown killed the run): processing → pending now; the interrupted run
 *   does not use up a retry (`attempts - 1`, so its number is given to the next run).
 * - retry (a person asks): failed|dead|cancelled → pending now. Dead and cancelled jobs get a fresh
 *   retry budget (`retryBase = attempts`) and keep their attempt count, so the next run is
 *   attempt `attempts + 1`; a failed job keeps its budget and just runs sooner.
 * - cancel: pending|failed|processing → cancelled. For a processing job the store records the run
 *   as an attempt with outcome `cancelled` and its worker stops the command; the run counts as
 *   used (`attempts` unchanged).
 */
export function transition(
  job: JobCore,
  event: JobEvent,
  now: number,
  policy: BackoffPolicy = DEFAULT_BACKOFF,
  random?: () => number,
): Transition {
  const illegal = () => new IllegalTransition(job.state, event.type);
  switch (event.type) {
    case "claim":
      if (job.state !== "pending" && job.state !== "failed") throw illegal();
      return { state: "processing", attempts: job.attempts + 1, runAt: null };
    case "succeed":
      if (job.state !== "processing") throw illegal();
      return { state: "completed", attempts: job.attempts, runAt: null };
    case "fail":
      if (job.state !== "processing") throw illegal();
      if (isLastAttempt(job)) return { state: "dead", attempts: job.attempts, runAt: null };
      return {
        state: "failed",
        attempts: job.attempts,
        runAt: nextRunAt(attemptsUsed(job), now, policy, random),
      };
    case "interrupt":
      if (job.state !== "processing") throw illegal();
      return { state: "pending", attempts: Math.max(0, job.attempts - 1), runAt: now };
    case "retry":
      if (job.state === "failed") return { state: "pending", attempts: job.attempts, runAt: now };
      if (job.state === "dead" || job.state === "cancelled") {
        return { state: "pending", attempts: job.attempts, runAt: now, retryBase: job.attempts };
      }
      throw illegal();
    case "cancel":
      if (!isIn(job.state, ACTIVE_STATES)) throw illegal();
      return { state: "cancelled", attempts: job.attempts, runAt: null };
  }
}
