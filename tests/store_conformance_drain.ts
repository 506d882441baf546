/**
 * Store conformance for `drainBacklog`: the unfinished jobs per queue and kind, as
 * `worker start --drain` sees them (paused queues, served queues, waiting jobs).
 */
import assert from "node:assert/strict";
import type { DrainBacklog, Store } from "../lib/store/store.ts";
import { conformanceTest, type DatabaseFactory, newJob } from "./store_conformance.ts";

const T0 = 1_800_000_000_000;

/** `queue/kind[/paused]=n`, sorted, for one-line comparisons. */
function brief(rows: DrainBacklog[]): string[] {
  return rows.map((r) => `${r.queue}/${r.kind}${r.paused ? "/paused" : ""}=${r.n}`).sort();
}

export function drainConformance(name: string, newDatabase: DatabaseFactory): void {
  const test = conformanceTest(`store(${name}) drain`, newDatabase);
  const storeTest = (title: string, fn: (store: Store) => Promise<void>) =>
    test(title, ({ store }) => fn(store));

  storeTest("counts ready, later, processing and waiting jobs per queue", async (store) => {
    await store.enqueue([
      newJob("a"),
      newJob("b"),
      newJob("later", { runAt: T0 + 60_000 }),
      newJob("r1", { queue: "reports" }),
      newJob("x1", { queue: "x" }),
    ], T0);
    await store.enqueue([
      newJob("w-live", { after: ["a"] }),
      newJob("w-paused", { after: ["r1"] }),
      newJob("w-other", { after: ["x1"] }),
    ], T0);
    await store.setQueue("reports", { paused: true });
    const [claimed] = await store.claimNext("w1", T0, 1, ["default"]);
    assert.equal(claimed.id, "a");
    assert.deepEqual(brief(await store.drainBacklog(T0 + 1000, ["default"])), [
      "default/later_pending=1",
      "default/processing=1",
      "default/ready_pending=1",
      "default/waiting_live=1",
      "default/waiting_stuck=2",
      "reports/ready_pending/paused=1",
      "x/ready_pending=1",
    ]);
    // Serving every queue, x1 can move, so w-other is live; r1's queue is still paused.
    assert.deepEqual(
      brief(await store.drainBacklog(T0 + 1000)).filter((s) => s.includes("waiting")),
      ["default/waiting_live=2", "default/waiting_stuck=1"],
    );
    // A wider window takes in the later job.
    assert.ok(
      brief(await store.drainBacklog(T0 + 60_000)).includes("default/ready_pending=2"),
    );
  });
}
