/**
 * The job state machine of `lib/job.ts`: every (state, event) pair, the retry budget, and the
 * backoff values. Pure: no store and no clock; `now` is a fixed number.
 */
import assert from "node:assert/strict";
import {
  ACTIVE_STATES,
  type AttemptOutcome,
  attemptsUsed,
  type BackoffPolicy,
  backoffSeconds,
  DEFAULT_BACKOFF,
  FINISHED_STATES,
  IllegalTransition,
  isLastAttempt,
  JOB_STATES,
  type JobCore,
  type JobEvent,
  type JobState,
  nextRunAt,
  READY_STATES,
  type Transition,
  transition,
} from "../lib/job.ts";

const NOW = 1_800_000_000_000;
const MAX_RETRIES = 3;

/** One event of each type; `fail` is checked with every failure outcome further down. */
const EVENTS: Record<JobEvent["type"], JobEvent> = {
  claim: { type: "claim" },
  succeed: { type: "succeed" },
  fail: { type: "fail", outcome: "exited" },
  interrupt: { type: "interrupt" },
  retry: { type: "retry" },
  cancel: { type: "cancel" },
};

const FAIL_OUTCOMES: Exclude<AttemptOutcome, "completed" | "interrupted">[] = [
  "exited",
  "spawn_error",
  "timeout",
  "signalled",
  "worker_lost",
];

/** A typical job in each state (attempts as a real job in that state would have them). */
const JOBS: Record<JobState, JobCore> = {
  pending: { state: "pending", attempts: 0, maxRetries: MAX_RETRIES },
  processing: { state: "processing", attempts: 2, maxRetries: MAX_RETRIES },
  completed: { state: "completed", attempts: 1, maxRetries: MAX_RETRIES },
  failed: { state: "failed", attempts: 2, maxRetries: MAX_RETRIES },
  dead: { state: "dead", attempts: 1 + MAX_RETRIES, maxRetries: MAX_RETRIES },
  cancelled: { state: "cancelled", attempts: 1, maxRetries: MAX_RETRIES },
};

type Expected = Transition | "illegal";
const illegal = "illegal" as const;

/** The whole table: every state, every event. A missing pair fails the completeness test. */
const TABLE: Record<JobState, Record<JobEvent["type"], Expected>> = {
  pending: {
    claim: { state: "processing", attempts: 1, runAt: null },
    succeed: illegal,
    fail: illegal,
    interrupt: illegal,
    retry: illegal,
    cancel: { state: "cancelled", attempts: 0, runAt: null },
  },
  processing: {
    claim: illegal,
    succeed: { state: "completed", attempts: 2, runAt: null },
    // Attempt 2 failed: 2^2 = 4 s with the default base of 2.
    fail: { state: "failed", attempts: 2, runAt: NOW + 4_000 },
    interrupt: { state: "pending", attempts: 1, runAt: NOW },
    retry: illegal,
    // The run is stopped by its worker and recorded as an attempt with outcome "cancelled".
    cancel: { state: "cancelled", attempts: 2, runAt: null },
  },
  completed: {
    claim: illegal,
    succeed: illegal,
    fail: illegal,
    interrupt: illegal,
    retry: illegal,
    cancel: illegal,
  },
  failed: {
    claim: { state: "processing", attempts: 3, runAt: null },
    succeed: illegal,
    fail: illegal,
    interrupt: illegal,
    retry: { state: "pending", attempts: 2, runAt: NOW },
    cancel: { state: "cancelled", attempts: 2, runAt: null },
  },
  dead: {
    claim: illegal,
    succeed: illegal,
    fail: illegal,
    interrupt: illegal,
    retry: { state: "pending", attempts: 4, runAt: NOW, retryBase: 4 },
    cancel: illegal,
  },
  cancelled: {
    claim: illegal,
    succeed: illegal,
    fail: illegal,
    interrupt: illegal,
    retry: { state: "pending", attempts: 1, runAt: NOW, retryBase: 1 },
    cancel: illegal,
  },
};

/** Applies `event` and keeps only the fields the state machine reads. */
function apply(job: JobCore, event: JobEvent, now = NOW): JobCore {
  const { state, attempts, retryBase = job.retryBase } = transition(job, event, now);
  return { state, attempts, maxRetries: job.maxRetries, retryBase };
}

function describe(e: Expected): string {
  if (e === "illegal") return "IllegalTransition";
  const runAt = e.runAt === null ? "run_at unchanged" : `run_at now+${(e.runAt - NOW) / 1000}s`;
  const base = e.retryBase === undefined ? "" : `, retry_base ${e.retryBase}`;
  return `${e.state} (attempts ${e.attempts}${base}, ${runAt})`;
}

Deno.test("job: the transition table names every state and every event", () => {
  assert.deepEqual(Object.keys(TABLE).sort(), [...JOB_STATES].sort());
  for (const state of JOB_STATES) {
    assert.deepEqual(Object.keys(TABLE[state]).sort(), Object.keys(EVENTS).sort(), state);
  }
});

for (const state of JOB_STATES) {
  for (const [type, event] of Object.entries(EVENTS) as [JobEvent["type"], JobEvent][]) {
    const expected = TABLE[state][type];
    Deno.test(`job: ${state} + ${type} → ${describe(expected)}`, () => {
      const job = { ...JOBS[state] };
      if (expected === "illegal") {
        assert.throws(
          () => transition(job, event, NOW),
          (e: unknown) =>
            e instanceof IllegalTransition && e.from === state && e.event === type &&
            e.message === `cannot ${type} a job that is ${state}`,
        );
      } else {
        assert.deepEqual(transition(job, event, NOW), expected);
      }
      assert.deepEqual(job, JOBS[state], "transition must not modify the job it is given");
    });
  }
}

Deno.test("job: processing + fail → failed for every failure outcome", () => {
  for (const outcome of FAIL_OUTCOMES) {
    assert.deepEqual(
      transition(JOBS.processing, { type: "fail", outcome }, NOW),
      { state: "failed", attempts: 2, runAt: NOW + 4_000 },
      outcome,
    );
  }
});

Deno.test("job: processing + fail on last attempt → dead, for every failure outcome", () => {
  const job: JobCore = { state: "processing", attempts: 4, maxRetries: 3 };
  for (const outcome of FAIL_OUTCOMES) {
    assert.deepEqual(
      transition(job, { type: "fail", outcome }, NOW),
      { state: "dead", attempts: 4, runAt: null },
      outcome,
    );
  }
});

Deno.test("job: processing + fail with max_retries 0 → dead on the first attempt", () => {
  assert.deepEqual(
    transition({ state: "processing", attempts: 1, maxRetries: 0 }, EVENTS.fail, NOW),
    { state: "dead", attempts: 1, runAt: null },
  );
});

Deno.test("job: processing + fail on the attempt before the last → failed, not dead", () => {
  assert.equal(
    transition({ state: "processing", attempts: 3, maxRetries: 3 }, EVENTS.fail, NOW).state,
    "failed",
  );
});

Deno.test("job: a job that always fails runs exactly 1 + maxRetries times, then is dead", () => {
  for (const maxRetries of [0, 1, 3, 10]) {
    let job: JobCore = { state: "pending", attempts: 0, maxRetries };
    let runs = 0;
    while (job.state !== "dead") {
      assert.ok(runs <= maxRetries, `max_retries ${maxRetries}: ran more than ${1 + maxRetries}×`);
      job = apply(job, EVENTS.claim);
      runs++;
      assert.equal(job.attempts, runs);
      job = apply(job, EVENTS.fail);
    }
    assert.equal(runs, 1 + maxRetries, `max_retries ${maxRetries}`);
    assert.throws(() => transition(job, EVENTS.claim, NOW), IllegalTransition);
  }
});

Deno.test("job: isLastAttempt is true from attempt 1 + maxRetries on", () => {
  assert.equal(isLastAttempt({ attempts: 0, maxRetries: 0 }), false);
  assert.equal(isLastAttempt({ attempts: 1, maxRetries: 0 }), true);
  assert.equal(isLastAttempt({ attempts: 3, maxRetries: 3 }), false);
  assert.equal(isLastAttempt({ attempts: 4, maxRetries: 3 }), true);
  assert.equal(isLastAttempt({ attempts: 5, maxRetries: 3 }), true);
});

Deno.test("job: processing + interrupt → pending now, and the run does not use up a retry", () => {
  let job: JobCore = { state: "pending", attempts: 0, maxRetries: 1 };
  for (let i = 0; i < 5; i++) {
    job = apply(job, EVENTS.claim);
    assert.equal(job.attempts, 1);
    assert.deepEqual(
      transition(job, EVENTS.interrupt, NOW + i),
      { state: "pending", attempts: 0, runAt: NOW + i },
    );
    job = apply(job, EVENTS.interrupt);
  }
  // Still the whole budget left: two failures are needed to reach the DLQ.
  job = apply(job, EVENTS.claim);
  job = apply(job, EVENTS.fail);
  assert.equal(job.state, "failed");
});

Deno.test("job: processing + interrupt never makes attempts negative", () => {
  assert.deepEqual(
    transition({ state: "processing", attempts: 0, maxRetries: 3 }, EVENTS.interrupt, NOW),
    { state: "pending", attempts: 0, runAt: NOW },
  );
});

Deno.test("job: retry of a dead or cancelled job gives a fresh retry budget, numbers continue", () => {
  for (const state of ["dead", "cancelled"] as const) {
    let job: JobCore = { state, attempts: 7, maxRetries: 2 };
    job = apply(job, EVENTS.retry);
    assert.deepEqual(job, { state: "pending", attempts: 7, maxRetries: 2, retryBase: 7 });
    assert.equal(attemptsUsed(job), 0);
    const numbers: number[] = [];
    const delays: number[] = [];
    while (job.state !== "dead") {
      job = apply(job, EVENTS.claim);
      numbers.push(job.attempts);
      const next = transition(job, EVENTS.fail, NOW);
      if (next.runAt !== null) delays.push(next.runAt - NOW);
      job = apply(job, EVENTS.fail);
    }
    assert.deepEqual(numbers, [8, 9, 10], `${state}: attempt 8 follows attempt 7`);
    // The backoff restarts with the budget: 2^1, 2^2 seconds, not 2^8.
    assert.deepEqual(delays, [2_000, 4_000], state);
    // A second retry starts another budget after the tenth run.
    job = apply(job, EVENTS.retry);
    assert.deepEqual(job, { state: "pending", attempts: 10, maxRetries: 2, retryBase: 10 });
  }
});

Deno.test("job: an interrupt after a retry gives the run back without touching the budget", () => {
  let job: JobCore = { state: "dead", attempts: 4, maxRetries: 0 };
  job = apply(apply(job, EVENTS.retry), EVENTS.claim);
  assert.equal(attemptsUsed(job), 1);
  job = apply(job, EVENTS.interrupt);
  assert.deepEqual(job, { state: "pending", attempts: 4, maxRetries: 0, retryBase: 4 });
  assert.equal(isLastAttempt(job), false);
});

Deno.test("job: the state sets split every state into active and finished, once each", () => {
  assert.deepEqual([...ACTIVE_STATES, ...FINISHED_STATES].sort(), [...JOB_STATES].sort());
  for (const s of READY_STATES) assert.ok(ACTIVE_STATES.includes(s), s);
  // Exactly the states a job cannot leave on its own: the ones only a person's retry moves.
  for (const s of JOB_STATES) {
    const selfLeaving = (["claim", "succeed", "fail", "interrupt"] as const).some((type) => {
      try {
        transition(JOBS[s], EVENTS[type], NOW);
        return true;
      } catch {
        return false;
      }
    });
    assert.equal(FINISHED_STATES.includes(s), !selfLeaving, s);
  }
});

Deno.test("job: retry of a failed job keeps its attempts and runs it now", () => {
  assert.deepEqual(
    transition({ state: "failed", attempts: 3, maxRetries: 3 }, EVENTS.retry, NOW),
    { state: "pending", attempts: 3, runAt: NOW },
  );
});

const BASE2: BackoffPolicy = { backoffBaseSeconds: 2, backoffMaxSeconds: 3600, jitter: false };

Deno.test("job: backoff with base 2 waits 2, 4, 8 seconds after attempts 1, 2, 3", () => {
  assert.deepEqual([1, 2, 3].map((a) => backoffSeconds(a, BASE2)), [2, 4, 8]);
  assert.deepEqual([1, 2, 3].map((a) => nextRunAt(a, NOW, BASE2) - NOW), [2_000, 4_000, 8_000]);
  assert.deepEqual(DEFAULT_BACKOFF, BASE2);
});

Deno.test("job: processing + fail schedules the retry at now + base ^ attempt seconds", () => {
  const policy = { ...BASE2, backoffBaseSeconds: 3 };
  for (const [attempts, delayMs] of [[1, 3_000], [2, 9_000], [3, 27_000]]) {
    assert.deepEqual(
      transition({ state: "processing", attempts, maxRetries: 5 }, EVENTS.fail, NOW, policy),
      { state: "failed", attempts, runAt: NOW + delayMs },
    );
  }
});

Deno.test("job: backoff is rounded to whole milliseconds for fractional bases", () => {
  const policy = { ...BASE2, backoffBaseSeconds: 1.5 };
  assert.equal(nextRunAt(1, NOW, policy), NOW + 1_500);
  assert.equal(nextRunAt(3, NOW, policy), NOW + 3_375);
  assert.equal(nextRunAt(4, NOW, { ...BASE2, backoffBaseSeconds: 1.1 }), NOW + 1_464);
  assert.equal(nextRunAt(5, NOW, policy), NOW + 7_594); // 7.59375 s rounds up
});

Deno.test("job: backoff with base 0 retries at once", () => {
  assert.equal(nextRunAt(3, NOW, { ...BASE2, backoffBaseSeconds: 0 }), NOW);
});

Deno.test("job: backoff is capped at backoffMaxSeconds, even when base ^ attempt overflows", () => {
  const policy = { ...BASE2, backoffMaxSeconds: 60 };
  assert.equal(backoffSeconds(5, policy), 32);
  assert.equal(backoffSeconds(6, policy), 60);
  assert.equal(backoffSeconds(100, policy), 60);
  assert.equal(backoffSeconds(5000, policy), 60); // 2^5000 is Infinity
  assert.equal(nextRunAt(5000, NOW, policy), NOW + 60_000);
});

Deno.test("job: jitter scales the delay by 0.5 + random(), within [0.5, 1.5)", () => {
  const policy = { ...BASE2, jitter: true };
  assert.equal(backoffSeconds(3, policy, () => 0), 4);
  assert.equal(backoffSeconds(3, policy, () => 0.5), 8);
  assert.equal(backoffSeconds(3, policy, () => 0.25), 6);
  const almostOne = 1 - Number.EPSILON;
  assert.ok(backoffSeconds(3, policy, () => almostOne) < 12);
  for (let i = 0; i < 200; i++) {
    const r = i / 200;
    const s = backoffSeconds(3, policy, () => r);
    assert.ok(s >= 4 && s < 12, `random ${r} gave ${s}s`);
  }
  assert.equal(nextRunAt(1, NOW, policy, () => 0.123), NOW + 1_246);
});

Deno.test("job: jitter never pushes a delay above backoffMaxSeconds", () => {
  const policy = { backoffBaseSeconds: 2, backoffMaxSeconds: 10, jitter: true };
  assert.equal(backoffSeconds(8, policy, () => 0.99), 10);
  assert.equal(backoffSeconds(8, policy, () => 0), 5);
  assert.equal(backoffSeconds(3, policy, () => 0.5), 8);
});

Deno.test("job: without jitter the random source is never consulted", () => {
  let calls = 0;
  const random = () => (calls++, 0.9);
  assert.equal(backoffSeconds(2, BASE2, random), 4);
  assert.equal(
    transition(JOBS.processing, EVENTS.fail, NOW, BASE2, random).runAt,
    NOW + 4_000,
  );
  assert.equal(calls, 0);
});

Deno.test("job: processing + fail passes the injected random to the backoff", () => {
  const policy = { ...BASE2, jitter: true };
  assert.deepEqual(
    transition(JOBS.processing, EVENTS.fail, NOW, policy, () => 0),
    { state: "failed", attempts: 2, runAt: NOW + 2_000 },
  );
});
