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
import { openStore } from "../lib/store/open.ts";
import type { Job, OutputAppend, Store } from "../lib/store/store.ts";
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
  const log = await setupLogging(parseLogLevel(args.logLevel) ?? "info");
  const wlog = log.with({ worker: Deno.pid });
  try {
    return await runWorker(args, wlog);
  } catch (e) {
    if (e instanceof StoreReplaced) return EXIT_STORE_REPLACED;
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

  /** The job running now, checked against the store on each heartbeat and every second. */
  let running: { job: Job; lost: AbortController } | null = null;
  const checkOwnership = async () => {
    const r = running;
    if (!r || r.lost.signal.aborted) return;
    const now = await store.getJob(r.job.id);
    if (
      running === r &&
      (!now || now.state !== "processing" || now.workerId !== workerId ||
        now.outputKey !== r.job.outputKey)
    ) {
      wlog.warn("job.no_longer_ours", {
        job: r.job.id,
        attempt: r.job.attempts,
        state: now?.state ?? "deleted",
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
            action: "stopping after the current job; start workers again on the new file",
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

  let transientDelay = 0;
  // A job claimed together with the previous job's result (one commit for both).
  let claimed: Job | null = null;
  try {
    // A job claimed in the same commit as a stop request's arrival still runs: it was claimed.
    while (claimed || !stopping.signal.aborted) {
      if (heartbeatIntervalMs(config) !== beatEvery) {
        beatEvery = heartbeatIntervalMs(config);
        clearInterval(beat);
        beat = setInterval(tick, beatEvery);
      }
      let job: Job | null = claimed;
      claimed = null;
      if (!job) {
        try {
          [job = null] = await store.claimNext(workerId, clock.now());
          transientDelay = 0;
        } catch (e) {
          if (!isTransient(e)) throw e;
          transientDelay = Math.min(TRANSIENT_BACKOFF_MAX_MS, Math.max(250, transientDelay * 2));
          wlog.warn("worker.store_unavailable", {
            error: (e as Error).message,
            retry_in: formatDuration(transientDelay),
          });
          await store.waitForChange(transientDelay, stopping.signal);
          continue;
        }
      }
      if (!job) {
        const due = await store.nextRunAt();
        const wait = due === null
          ? IDLE_MAX_WAIT_MS
          : Math.max(0, Math.min(IDLE_MAX_WAIT_MS, due - clock.now()));
        if (wait > 0) await store.waitForChange(wait, stopping.signal);
        continue;
      }
      const lost = new AbortController();
      running = { job, lost };
      const output = new RunOutput(store, job, config.logMaxBytes, wlog);
      const check = setInterval(() => {
        checkOwnership().catch((e) =>
          wlog.warn("worker.check_failed", { error: (e as Error).message })
        );
        output.flush();
      }, OWNERSHIP_CHECK_MS);
      try {
        claimed = await runOne(store, job, workerId, config, forced.signal, stopping.signal, wlog, {
          lost: lost.signal,
          output,
          clock,
        });
      } finally {
        clearInterval(check);
        running = null;
      }
    }
  } finally {
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

/**
 * Runs one claimed job and records its outcome; unless the worker is stopping, claims the next job
 * in the same commit and returns it.
 *
 * !!! The job is ours until `finishAttempt` succeeds: whatever happens below, the outcome must be
 * recorded, or the job sits in `processing` until its lease runs out. Store errors here are retried
 * until they pass or the process is forced to stop. !!!
 */
async function runOne(
  store: Store,
  job: Job,
  workerId: string,
  config: Config,
  interrupt: AbortSignal,
  stopping: AbortSignal,
  log: Logger,
  { lost, output, clock }: { lost: AbortSignal; output: RunOutput; clock: StoreClock },
): Promise<Job | null> {
  log.info("job.started", { job: job.id, attempt: job.attempts });
  log.debug("job.command", { job: job.id, command: job.command, cwd: job.cwd });
  const result = await runJob({
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
    lost,
  });
  await output.settled();
  Object.assign(result, output.finish());
  if (result.note) log.warn("job.output_lost", { job: job.id, note: result.note });
  const now = clock.now();
  const next = transition(job, eventForOutcome(result.outcome), now, backoffPolicy(config));

  let delay = 100;
  for (let first = true;; first = false) {
    try {
      let saved: Job | null;
      let claimed: Job | null = null;
      if (first && !stopping.aborted) {
        ({ finished: saved, claimed } = await store.finishAndClaim(
          job.id,
          workerId,
          next,
          result,
          now,
        ));
      } else {
        saved = await store.finishAttempt(job.id, workerId, next, result, now);
      }
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
      return claimed;
    } catch (e) {
      if (interrupt.aborted && !isTransient(e)) throw e;
      log.warn("job.record_failed", {
        job: job.id,
        error: (e as Error).message,
        retry_in: formatDuration(delay),
      });
      // A forced stop ends the wait at once: the job then stays processing until its lease runs
      // out or the supervisor rescues it.
      await sleep(delay, interrupt);
      if (interrupt.aborted) throw e;
      delay = Math.min(TRANSIENT_BACKOFF_MAX_MS, delay * 2);
    }
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
