/**
 * One worker process: claim → run `sh -c` through the executor → record the outcome → repeat.
 * It holds at most one job at a time, renews its lease by heartbeat while it runs, and rescues the
 * jobs of workers whose lease ran out. Started by the supervisor as `queuectl __worker …`.
 *
 * Stopping (the protocol is in `stop.ts`): SIGTERM (or its supervisor going away, seen as EOF on
 * stdin) stops claiming and lets the current job finish, however often it comes; the worker marks
 * itself stopping in the store. SIGQUIT kills the job's process tree and puts the job back to
 * pending (`interrupt`). SIGINT is ignored here: Ctrl+C reaches the whole terminal group, and the
 * supervisor alone decides what it means.
 */
import { type Config, heartbeatIntervalMs } from "../lib/config.ts";
import { backoffPolicy } from "../lib/config.ts";
import { formatDuration } from "../lib/duration.ts";
import { StoreError } from "../lib/errors.ts";
import { eventForOutcome, transition } from "../lib/job.ts";
import { type Logger, parseLogLevel, setupLogging } from "../lib/log.ts";
import { loadConfig } from "../lib/settings.ts";
import { openStore, redactUrl } from "../lib/store/open.ts";
import type { AttemptResult, Job, OutputAppend, RunEnd, Store } from "../lib/store/store.ts";
import { EXIT_STORE_REPLACED } from "./exit_codes.ts";
import { runJob, spawnLogFields } from "./executor.ts";
import { StoreClock } from "./store_clock.ts";
import { OutputBuffer } from "./output_buffer.ts";
import { sleep } from "../lib/sleep.ts";
import { enableSubreaper } from "./reaper.ts";
import { pruneFinished, rescueStaleJobs } from "./rescue.ts";
import { FORCE_SIGNAL, GRACEFUL_SIGNAL } from "./stop.ts";
import { workerIdOf } from "./worker_id.ts";

export interface WorkerArgs {
  db: string;
  host: string;
  supervisorPid: number;
  logLevel: string;
  /** Makes the worker id unique even when a pid is reused. */
  nonce: string;
  /** How many jobs this worker runs at once. */
  concurrency: number;
  /** The queues it claims from (`worker start --queue`); every queue when absent. */
  queues?: string[];
}

/** Parses `--name value` pairs given by the supervisor. */
export function parseWorkerArgs(args: string[]): WorkerArgs {
  const get = (name: string) => {
    const i = args.indexOf(`--${name}`);
    if (i < 0 || i + 1 >= args.length) throw new Error(`worker: missing --${name}`);
    return args[i + 1];
  };
  return {
    // From the environment (never argv, which `ps` shows); `--db` is still read where given.
    db: args.includes("--db") ? get("db") : Deno.env.get("QUEUECTL_DB") ?? get("db"),
    host: get("host"),
    supervisorPid: Number(get("supervisor")),
    logLevel: get("log-level"),
    nonce: get("nonce"),
    concurrency: args.includes("--concurrency") ? Number(get("concurrency")) : 1,
    ...(args.includes("--queue") ? { queues: get("queue").split(",") } : {}),
  };
}

const IDLE_MAX_WAIT_MS = 1000;
/**
 * How often a worker checks that the job it runs is still its own (not cancelled or rescued), and
 * moves the job's new output to the store (so `logs --follow` sees it from any host).
 */
const OWNERSHIP_CHECK_MS = 1000;

const TRANSIENT_BACKOFF_MAX_MS = 30_000;

/** A store error that may pass by itself (a lock, a full disk, a lost connection). */
function isTransient(e: unknown): boolean {
  return e instanceof StoreError && e.transient;
}

/**
 * The worker process's entry point. Returns its exit code: 0 after a stop, 1 when the store could
 * not be used (said in one log line; the supervisor restarts it later, with backoff).
 */
export async function workerMain(argv: string[]): Promise<number> {
  const args = parseWorkerArgs(argv);
  // Jobs inherit this process's environment: the URL they see there names the queue without its
  // password (the store's client keeps it), so a job cannot print it or pass it on.
  if (Deno.env.get("QUEUECTL_DB") === args.db) Deno.env.set("QUEUECTL_DB", redactUrl(args.db));
  const log = await setupLogging(parseLogLevel(args.logLevel) ?? "info");
  const wlog = log.with({ worker: Deno.pid });
  try {
    return await runWorker(args, wlog);
  } catch (e) {
    if (e instanceof StoreReplaced) return EXIT_STORE_REPLACED;
    // A call that found the store gone (a dropped PostgreSQL queue) before the heartbeat did.
    if (e instanceof StoreError && e.kind === "replaced") {
      wlog.error("worker.store_replaced", { error: e.message, action: "stopping" });
      return EXIT_STORE_REPLACED;
    }
    wlog.error("worker.failed", { error: (e as Error).message });
    return 1;
  }
}

/** Thrown out of the worker loop when its database file is no longer the one at its path. */
class StoreReplaced extends Error {}

async function runWorker(args: WorkerArgs, wlog: Logger): Promise<number> {
  const workerId = workerIdOf(args.host, Deno.pid, args.nonce);
  // Whatever a job starts and abandons comes back to this process, which ends it (reaper.ts).
  const subreaper = enableSubreaper();
  // Which way jobs start (posix_spawn or Deno.Command), checked once before any is claimed.
  const spawn = await spawnLogFields();
  const store: Store = await openStore(args.db, { durable: false, create: false });
  const clock = new StoreClock();

  const stopping = new AbortController();
  const forced = new AbortController();
  let registered = false;
  /** `worker list` shows a draining worker as stopping. */
  const markStopping = async () => {
    try {
      await store.markWorkerStopping(workerId, clock.now());
    } catch (e) {
      wlog.warn("worker.mark_stopping_failed", { error: (e as Error).message });
    }
  };
  // Graceful, however often asked: only FORCE_SIGNAL interrupts the running job.
  const onTerm = () => {
    if (stopping.signal.aborted) return;
    stopping.abort();
    if (registered) markStopping();
  };
  const onForce = () => {
    onTerm();
    forced.abort();
  };
  const ignore = () => {};
  Deno.addSignalListener(GRACEFUL_SIGNAL, onTerm);
  Deno.addSignalListener(FORCE_SIGNAL, onForce);
  Deno.addSignalListener("SIGINT", ignore);
  // EOF on stdin: the supervisor is gone (even by SIGKILL). Finish the current job, then exit.
  (async () => {
    try {
      for await (const _ of Deno.stdin.readable) { /* the supervisor never writes */ }
    } catch { /* closed */ }
    if (!stopping.signal.aborted) {
      wlog.warn("worker.orphaned", { reason: "supervisor gone; stopping after the current job" });
      onTerm();
    }
  })();

  let config: Config = await loadConfig(store);
  // Every time this worker hands the store goes by the store's clock (the database server's),
  // never this host's: see Store.now and StoreClock.
  const now = await clock.sync(store);
  await store.registerWorker({
    id: workerId,
    pid: Deno.pid,
    host: args.host,
    supervisorPid: args.supervisorPid,
    startedAt: now,
    heartbeatAt: now,
  });
  registered = true;
  if (stopping.signal.aborted) await markStopping();
  wlog.info("worker.started", { subreaper, ...spawn });

  /** The jobs running now (up to `concurrency`), checked against the store every second. */
  const running = new Map<string, Run>();
  const checkOwnership = async () => {
    const checked = [...running.values()].filter((r) => !r.ended && !r.lost.signal.aborted);
    if (checked.length === 0) return;
    const held = new Map((await store.jobsHeldBy(workerId)).map((j) => [j.id, j]));
    for (const r of checked) {
      const now = held.get(r.job.id);
      if (running.get(r.job.id) !== r || r.ended || now?.outputKey === r.job.outputKey) continue;
      const current = await store.getJob(r.job.id);
      wlog.warn("job.no_longer_ours", {
        job: r.job.id,
        attempt: r.job.attempts,
        state: current?.state ?? "deleted",
        action: "stopping its processes",
      });
      r.lost.abort();
    }
  };
  let storeReplaced: string | null = null;

  // Heartbeats keep this worker's lease while a job runs for hours; the same tick re-reads config
  // and rescues jobs of workers whose lease ran out.
  let lastRescue = 0;
  const tick = async () => {
    try {
      try {
        await store.assertSameStore();
      } catch (e) {
        if (!storeReplaced) {
          storeReplaced = (e as Error).message;
          wlog.error("worker.store_replaced", {
            error: storeReplaced,
            action: "stopping after the current job; start workers again on the new queue",
          });
          stopping.abort();
        }
        return;
      }
      const leaseNow = await clock.sync(store);
      await store.heartbeat(workerId, leaseNow);
      await checkOwnership();
      config = await loadConfig(store);
      if (leaseNow - lastRescue >= config.leaseTimeoutMs / 2) {
        lastRescue = leaseNow;
        for (const r of await rescueStaleJobs(store, config, leaseNow)) {
          wlog.warn("job.rescued", {
            job: r.job.id,
            lost_worker: r.workerId,
            state: r.job.state,
            attempt: r.job.attempts,
          });
        }
        const pruned = await pruneFinished(store, config, leaseNow);
        if (pruned.completed + pruned.dead > 0) wlog.info("jobs.pruned", pruned);
      }
    } catch (e) {
      wlog.warn("worker.heartbeat_failed", { error: (e as Error).message });
    }
  };
  let beat = setInterval(tick, heartbeatIntervalMs(config));
  let beatEvery = heartbeatIntervalMs(config);
  await tick();

  const slots = args.concurrency;
  /** Runs that ended, waiting for their result to be recorded (together, in one commit). */
  const ended: Run[] = [];
  const wakeup = new Wakeup();
  stopping.signal.addEventListener("abort", () => wakeup.wake());
  const start = (job: Job) => {
    const run: Run = {
      job,
      lost: new AbortController(),
      output: new RunOutput(store, job, config.logMaxBytes, wlog),
      ended: false,
      result: null,
    };
    running.set(job.id, run);
    const done: Promise<void> = runJobOf(run, workerId, config, forced.signal, wlog).then(
      (result) => {
        run.ended = true;
        run.result = result;
        ended.push(run);
        runs.delete(done);
        wakeup.wake();
      },
    );
    runs.add(done);
  };
  /** Every run's end, so that a worker that must exit with jobs running ends them first. */
  const runs = new Set<Promise<void>>();
  // Every second: is each running job still ours, and its new output moved to the store.
  const check = setInterval(() => {
    checkOwnership().catch((e) =>
      wlog.warn("worker.check_failed", { error: (e as Error).message })
    );
    for (const r of running.values()) if (!r.ended) r.output.flush();
  }, OWNERSHIP_CHECK_MS);

  let transientDelay = 0;
  try {
    // Jobs claimed in the same commit as a stop request's arrival still run: they were claimed.
    while (!stopping.signal.aborted || running.size > 0) {
      if (heartbeatIntervalMs(config) !== beatEvery) {
        beatEvery = heartbeatIntervalMs(config);
        clearInterval(beat);
        beat = setInterval(tick, beatEvery);
      }
      if (ended.length > 0) {
        // Every result that arrived meanwhile goes in one commit, with claims for the free slots.
        const batch = ended.splice(0);
        const free = slots - running.size + batch.length;
        const claimed = await record(store, batch, workerId, config, {
          claim: stopping.signal.aborted ? 0 : free,
          queues: args.queues,
          interrupt: forced.signal,
          clock,
          log: wlog,
        });
        for (const r of batch) if (running.get(r.job.id) === r) running.delete(r.job.id);
        for (const job of claimed) start(job);
        continue;
      }
      let wait = IDLE_MAX_WAIT_MS;
      if (!stopping.signal.aborted && running.size < slots) {
        try {
          const claimedAt = clock.now();
          const jobs = await store.claimNext(
            workerId,
            claimedAt,
            slots - running.size,
            args.queues,
          );
          transientDelay = 0;
          for (const job of jobs) start(job);
          if (jobs.length > 0) continue;
          const due = await store.nextRunAt();
          // A job that was ready at the claim yet not given to us is another queue's, a paused
          // or full queue's, or another worker's: wait for a change instead of asking again now.
          if (due !== null && due > claimedAt) {
            wait = Math.max(0, Math.min(IDLE_MAX_WAIT_MS, due - clock.now()));
          }
        } catch (e) {
          // With jobs running, keep them and their results: back off and try again.
          if (!isTransient(e) && running.size === 0) throw e;
          transientDelay = Math.min(TRANSIENT_BACKOFF_MAX_MS, Math.max(250, transientDelay * 2));
          wlog.warn("worker.store_unavailable", {
            error: (e as Error).message,
            retry_in: formatDuration(transientDelay),
          });
          wait = transientDelay;
        }
        const woken = wakeup.signal();
        if (ended.length > 0 || stopping.signal.aborted) continue;
        // A new job, a run's end or a stop ends the wait early.
        if (wait > 0) await store.waitForChange(wait, woken);
        continue;
      }
      // Every slot is busy (or the worker is stopping): wait for a run to end.
      const woken = wakeup.signal();
      if (ended.length > 0) continue;
      await new Promise((r) => woken.addEventListener("abort", r, { once: true }));
    }
  } finally {
    // Leaving with jobs still running (the store failed for good): their processes must not
    // outlive this worker. The store could not take their results; the lease rescue will.
    if ([...running.values()].some((r) => !r.ended)) {
      wlog.warn("worker.interrupting", { jobs: running.size });
      forced.abort();
      await Promise.all(runs);
    }
    clearInterval(check);
    clearInterval(beat);
    Deno.removeSignalListener(GRACEFUL_SIGNAL, onTerm);
    Deno.removeSignalListener(FORCE_SIGNAL, onForce);
    Deno.removeSignalListener("SIGINT", ignore);
    try {
      await store.markWorkerStopped(workerId, clock.now());
    } catch (e) {
      wlog.warn("worker.unregister_failed", { error: (e as Error).message });
    }
    await store.close();
    wlog.info("worker.stopped");
  }
  if (storeReplaced) throw new StoreReplaced(storeReplaced);
  return 0;
}

/** One claimed job this worker runs. */
interface Run {
  job: Job;
  /** Aborted when the job is no longer this worker's: its processes are stopped. */
  lost: AbortController;
  output: RunOutput;
  /** The run's processes have ended and `result` is set; the result is not recorded yet. */
  ended: boolean;
  result: (AttemptResult & { durationMs: number }) | null;
}

/**
 * Wakes the worker loop's current wait. `signal()` gives the signal for the next wait; a wake
 * after that call aborts it. (Check for work after taking the signal, before waiting.)
 */
class Wakeup {
  #ctl = new AbortController();
  wake() {
    this.#ctl.abort();
  }
  signal(): AbortSignal {
    if (this.#ctl.signal.aborted) this.#ctl = new AbortController();
    return this.#ctl.signal;
  }
}

/** Runs a claimed job's command to its end; never throws (an error becomes its outcome). */
async function runJobOf(
  run: Run,
  workerId: string,
  config: Config,
  interrupt: AbortSignal,
  log: Logger,
): Promise<AttemptResult & { durationMs: number }> {
  const { job, output } = run;
  log.info("job.started", { job: job.id, attempt: job.attempts });
  log.debug("job.command", { job: job.id, command: job.command, cwd: job.cwd });
  let result: AttemptResult & { durationMs: number };
  try {
    result = await runJob({
      command: job.command,
      cwd: job.cwd,
      // Set last, so a job's own env cannot hide which worker runs it (see killJobsOf).
      env: {
        ...job.env,
        QUEUECTL_JOB_ID: job.id,
        QUEUECTL_ATTEMPT: String(job.attempts),
        QUEUECTL_WORKER_ID: workerId,
      },
      timeoutMs: job.timeoutMs,
      killGraceMs: config.killGraceMs,
      output: output.buffer,
      interrupt,
      lost: run.lost.signal,
    });
  } catch (e) {
    result = {
      outcome: "spawn_error",
      exitCode: null,
      signal: null,
      error: `cannot run the job: ${(e as Error).message}`,
      durationMs: 0,
    };
  }
  await output.settled();
  Object.assign(result, output.finish());
  if (result.note) log.warn("job.output_lost", { job: job.id, note: result.note });
  return result;
}

/**
 * Records the results of runs that ended, in one commit, and claims up to `claim` jobs in the
 * same commit (none after the first failed try). Returns the jobs claimed.
 *
 * !!! A job is ours until its result is recorded: whatever happens below, it must be, or the job
 * sits in `processing` until its lease runs out. Store errors here are retried until they pass or
 * the process is forced to stop. !!!
 */
async function record(
  store: Store,
  runs: Run[],
  workerId: string,
  config: Config,
  { claim, queues, interrupt, clock, log }: {
    claim: number;
    queues?: string[];
    interrupt: AbortSignal;
    clock: StoreClock;
    log: Logger;
  },
): Promise<Job[]> {
  let delay = 100;
  for (let first = true;; first = false) {
    const now = clock.now();
    const ends: RunEnd[] = runs.map(({ job, result }) => ({
      jobId: job.id,
      next: transition(job, eventForOutcome(result!.outcome), now, backoffPolicy(config)),
      result: result!,
    }));
    try {
      const { finished, claimed } = await store.finishAndClaim(
        workerId,
        ends,
        first ? claim : 0,
        now,
        queues,
      );
      for (const [i, saved] of finished.entries()) await logEnd(store, runs[i], saved, now, log);
      return claimed;
    } catch (e) {
      if (interrupt.aborted && !isTransient(e)) throw e;
      // A store that was dropped under us takes no result, however long we wait.
      if (e instanceof StoreError && e.kind === "replaced") throw e;
      log.warn("job.record_failed", {
        jobs: runs.map((r) => r.job.id).join(","),
        error: (e as Error).message,
        retry_in: formatDuration(delay),
      });
      // A forced stop ends the wait at once: the jobs then stay processing until their lease
      // runs out or the supervisor rescues them.
      await sleep(delay, interrupt);
      if (interrupt.aborted) throw e;
      delay = Math.min(TRANSIENT_BACKOFF_MAX_MS, delay * 2);
    }
  }
}

/** Logs how a run ended, as recorded (`saved`), or that its result was dropped. */
async function logEnd(store: Store, run: Run, saved: Job | null, now: number, log: Logger) {
  const { job } = run;
  const result = run.result!;
  const fields = {
    job: job.id,
    attempt: job.attempts,
    duration: formatDuration(result.durationMs),
    exit_code: result.exitCode ?? undefined,
    signal: result.signal ?? undefined,
  };
  if (!saved) {
    log.warn("job.lost", {
      ...fields,
      reason: "the job was rescued or changed while it ran; this result is dropped",
    });
    // Its output still belongs to its own run: keep the last of it (best effort).
    if (result.output && job.outputKey) {
      await store.appendOutput(job.id, job.outputKey, result.output).catch(() => {});
    }
  } else if (saved.state === "completed") {
    log.info("job.completed", fields);
  } else if (saved.state === "failed") {
    log.warn("job.failed", {
      ...fields,
      outcome: result.outcome,
      next_run_in: formatDuration(saved.runAt - now),
    });
  } else if (saved.state === "dead") {
    log.error("job.dead", {
      ...fields,
      outcome: result.outcome,
      error: firstLine(result.error),
    });
  } else {
    log.warn("job.interrupted", { ...fields, state: saved.state });
  }
}

/**
 * One run's output on its way to the store: the executor writes into `buffer`; `flush` (every
 * second) appends what is new; `finish` hands the rest to the result, so it is stored in the
 * same commit. Output that cannot be stored (a full disk) is dropped and noted once; it never
 * changes the job's outcome.
 */
class RunOutput {
  readonly buffer: OutputBuffer;
  #pending: Promise<void> = Promise.resolve();
  #lost: string | null = null;
  #lostFrom = 0;

  constructor(
    readonly store: Store,
    readonly job: Job,
    readonly capBytes: number,
    readonly log: Logger,
  ) {
    this.buffer = new OutputBuffer(capBytes);
  }

  flush() {
    const key = this.job.outputKey;
    const chunk = this.buffer.take();
    if (!chunk || !key) return;
    this.#pending = this.#pending.then(() =>
      this.store.appendOutput(this.job.id, key, { ...chunk, capBytes: this.capBytes }).catch(
        (e) => {
          if (this.#lost === null) {
            this.#lost = (e as Error).message;
            this.#lostFrom = chunk.offset;
            this.log.warn("job.output_lost", { job: this.job.id, error: this.#lost });
          }
        },
      )
    );
  }

  /** Resolves when every flush started so far has ended. */
  settled(): Promise<void> {
    return this.#pending;
  }

  /** The rest of the output and any note, for the attempt's result. */
  finish(): { output: OutputAppend | null; note?: string } {
    const chunk = this.buffer.take();
    const output = chunk ? { ...chunk, capBytes: this.capBytes } : null;
    if (this.#lost === null) return { output };
    return {
      output,
      note:
        `output from byte ${this.#lostFrom} up to the last second was not stored: ${this.#lost}`,
    };
  }
}

function firstLine(text: string | null): string | undefined {
  return text?.split("\n")[0]?.slice(0, 200);
}
