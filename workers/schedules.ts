/**
 * Recurring jobs, fired by the supervisor of `worker start` (no daemon of their own): about once
 * a second, each due schedule's latest tick becomes one job. However many supervisors run, on
 * however many hosts, a tick is enqueued once: the store's `fireSchedule` moves the schedule's next
 * run with a compare-and-set, and the tick's job id is the same everywhere. No SQL here.
 */
import { parseCron, planFire, tickJobId } from "../lib/cron.ts";
import type { Logger } from "../lib/log.ts";
import { formatDuration } from "../lib/duration.ts";
import { sleep } from "../lib/sleep.ts";
import type { Schedule, Store } from "../lib/store/store.ts";

/** What one due schedule did in one pass. */
export interface Fired {
  name: string;
  /** The tick fired or skipped. */
  tick: number;
  /** The job enqueued for it; `null` when a missed tick was skipped (`catch-up none`). */
  jobId: string | null;
}

/**
 * Fires every schedule due at `now` (the store's clock): the latest tick that passed, once;
 * under `catch-up none` a tick found more than a minute late is skipped instead. Returns what
 * this caller fired; a tick another supervisor fired first is not in it. A schedule whose
 * expression no longer parses is logged and left as it is.
 */
export async function fireDueSchedules(
  store: Store,
  now: number,
  log?: Logger,
): Promise<Fired[]> {
  const fired: Fired[] = [];
  for (const s of await store.dueSchedules(now)) {
    let plan;
    try {
      plan = planFire(parseCron(s.cron, s.tz), s.nextRunAt!, now, s.catchUp);
    } catch (e) {
      log?.warn("schedule.invalid", { schedule: s.name, error: (e as Error).message });
      continue;
    }
    const tick = plan.tick;
    const job = plan.fire ? tickJob(s, tick) : null;
    if (!await store.fireSchedule(s.name, s.nextRunAt!, job, plan.nextRunAt, now)) continue;
    // A job with a unique key is not stored while an earlier tick's job holds the key.
    const held = job?.uniqueKey ? (await store.getJob(job.id)) === null : false;
    fired.push({ name: s.name, tick, jobId: held ? null : job?.id ?? null });
    if (held) {
      log?.info("schedule.skipped", {
        schedule: s.name,
        tick: new Date(tick).toISOString(),
        reason: `a job with unique key ${job!.uniqueKey} is still pending, failed or processing`,
      });
    } else if (job) {
      log?.info("schedule.fired", {
        schedule: s.name,
        job: job.id,
        late: now - tick >= 1000 ? formatDuration(now - tick) : undefined,
      });
    } else {
      log?.info("schedule.skipped", {
        schedule: s.name,
        tick: new Date(tick).toISOString(),
        reason: "missed while no supervisor ran (catch-up none)",
      });
    }
  }
  return fired;
}

/** The job of one tick of a schedule. */
function tickJob(s: Schedule, tick: number) {
  return { ...s.job, id: tickJobId(s.name, tick), runAt: tick };
}

/**
 * Fires due schedules until `signal` aborts: just after each second of the clock (so an every-
 * second schedule runs on time), one indexed query when nothing is due. A store error is logged
 * and tried again a second later.
 */
export async function runScheduler(store: Store, log: Logger, signal: AbortSignal) {
  while (!signal.aborted) {
    try {
      await fireDueSchedules(store, await store.now(), log);
    } catch (e) {
      log.warn("schedule.fire_failed", { error: (e as Error).message });
    }
    await sleep(1005 - (Date.now() % 1000), signal);
  }
}
