/**
 * Resolves the effective configuration of a running process from a store and the environment,
 * following the precedence in `lib/config.ts`.
 */
import { type Config, type ConfigKey, resolveAll, type ResolvedValue, toConfig } from "./config.ts";
import type { Store } from "./store/store.ts";

export async function resolveConfig(
  store: Store,
  flags: Partial<Record<ConfigKey, string>> = {},
): Promise<ResolvedValue[]> {
  return resolveAll(await store.getConfig(), (name) => Deno.env.get(name), flags);
}

export async function loadConfig(
  store: Store,
  flags: Partial<Record<ConfigKey, string>> = {},
): Promise<Config> {
  return toConfig(await resolveConfig(store, flags));
}
