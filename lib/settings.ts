/**
 * Resolves the effective configuration of a running process from a store and the environment,
 * following the precedence in `lib/config.ts`. Settings are checked where they are used: a
 * command loads the whole config (`loadConfig`) only if it uses it, and otherwise the one key it
 * needs (`loadSetting`), so a bad value elsewhere does not stop it.
 */
import {
  type Config,
  type ConfigKey,
  type ConfigValue,
  describeAll,
  type ListedValue,
  resolveAll,
  resolveKey,
  toConfig,
} from "./config.ts";
import type { Store } from "./store/store.ts";

type Flags = Partial<Record<ConfigKey, string>>;
const env = (name: string) => Deno.env.get(name);

/** Every key, with invalid values marked instead of thrown (for `config list`). */
export async function describeConfig(store: Store, flags: Flags = {}): Promise<ListedValue[]> {
  return describeAll(await store.getConfig(), env, flags);
}

/**
 * The whole configuration. Throws a one-line `UsageError` naming the first invalid key and the
 * variable or stored value it came from, with the allowed range.
 */
export async function loadConfig(store: Store, flags: Flags = {}): Promise<Config> {
  return toConfig(resolveAll(await store.getConfig(), env, flags));
}

/** One key's value; throws a one-line `UsageError` only when this key is invalid. */
export async function loadSetting<K extends ConfigKey>(
  store: Store,
  key: K,
  flags: Flags = {},
): Promise<ConfigValue<K>> {
  return resolveKey(key, await store.getConfig(), env, flags).value as ConfigValue<K>;
}
