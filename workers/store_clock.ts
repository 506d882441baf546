/**
 * This host's view of the store's clock (`Store.now`: the database server's for PostgreSQL):
 * `Date.now()` corrected by the offset measured at the last `sync`. A worker syncs at each
 * heartbeat and uses it for every time it hands the store (claims, results, retry times), so a
 * host whose own clock is off neither claims jobs early or late nor misjudges leases.
 */
import type { Store } from "../lib/store/store.ts";

export class StoreClock {
  #offset = 0;

  /** Measures the offset once (one round trip) and returns the store's time. */
  async sync(store: Store): Promise<number> {
    const before = Date.now();
    const t = await store.now();
    this.#offset = t - (before + Date.now()) / 2;
    return t;
  }

  /** The store's time now, as of the last sync. */
  now(): number {
    return Math.round(Date.now() + this.#offset);
  }
}
