/**
 * `queuectl config get|set|unset|list|show` and `queuectl init`. Keys, bounds and precedence live
 * in `lib/config.ts`; values are validated when set, so a stored value is always usable.
 */
import { buildCommand, buildRouteMap } from "@stricli/core";
import { CONFIG_KEYS, envName, findKey } from "../config.ts";
import { resolveConfig } from "../settings.ts";
import { type Context, dbFlag, type DbFlags, jsonFlag, withStore } from "./context.ts";
import { out, outJson, table } from "./format.ts";

type Flags = DbFlags & { json: boolean };

async function list(this: Context, flags: Flags) {
  await withStore(flags, async (store) => {
    const values = await resolveConfig(store);
    if (flags.json) {
      return outJson(
        Object.fromEntries(values.map((v) => [v.key, { value: v.value, source: v.source }])),
      );
    }
    out(table(
      ["KEY", "VALUE", "SOURCE", "DESCRIPTION"],
      values.map((v) => [
        v.key,
        v.shown,
        v.source === "env" ? `env ${envName(v.key)}` : v.source,
        v.doc,
      ]),
    ));
  }, { create: false });
}

async function get(this: Context, flags: Flags, key?: string) {
  if (key === undefined) return await list.call(this, flags);
  const def = findKey(key);
  await withStore(flags, async (store) => {
    const v = (await resolveConfig(store)).find((r) => r.key === def.name)!;
    if (flags.json) return outJson({ key: v.key, value: v.value, source: v.source });
    out(v.shown);
  }, { create: false });
}

type KeyDef = ReturnType<typeof findKey>;

/**
 * The text to store for a parsed value. Stored text is read back with the key's own parser, where
 * a bare number means seconds for a duration; so a duration of 600000 ms is stored as "600000ms",
 * never as "600000" (which would read back as 600000 s).
 */
function storedText(def: KeyDef, value: number | boolean): string {
  for (const text of [String(value), `${value}ms`]) {
    try {
      if (def.parse(text) === value) return text;
    } catch {
      // Not a form this key reads: try the next one.
    }
  }
  throw new Error(`config ${def.name}: no stored form reads back as ${value}`);
}

/** Warns (on stderr) when an environment variable hides the stored value of `def`. */
function noteEnvOverride(def: KeyDef) {
  const name = envName(def.name);
  const env = Deno.env.get(name);
  if (env !== undefined && env !== "") {
    Deno.stderr.writeSync(
      new TextEncoder().encode(
        `note: ${name}=${env} is set and overrides the stored value; unset it to use this one\n`,
      ),
    );
  }
}

async function set(this: Context, flags: DbFlags, key: string, value: string) {
  const def = findKey(key);
  const parsed = def.parse(value);
  await withStore(flags, async (store) => {
    await store.setConfig(def.name, storedText(def, parsed));
    out(`${def.name} = ${def.show(parsed)}`);
    noteEnvOverride(def);
  });
}

async function unset(this: Context, flags: DbFlags, key: string) {
  const def = findKey(key);
  await withStore(flags, async (store) => {
    await store.setConfig(def.name, null);
    out(`${def.name} = ${def.show(def.default)} (default)`);
    noteEnvOverride(def);
  });
}

async function init(this: Context, flags: DbFlags) {
  await withStore(flags, (store) => {
    out(`database ready: ${store.location}`);
    return Promise.resolve();
  });
}

const keyList = CONFIG_KEYS.map((k) => k.name).join(", ");
const keyParam = { brief: "Config key", parse: String, placeholder: "key" } as const;

export const configRoutes = buildRouteMap({
  routes: {
    get: buildCommand({
      func: get,
      parameters: {
        flags: { ...dbFlag, ...jsonFlag },
        positional: { kind: "tuple", parameters: [{ ...keyParam, optional: true }] },
      },
      docs: {
        brief: "Print one config value (or all of them without a key)",
        fullDescription: `Keys: ${keyList}.\n\nExample:\n  queuectl config get max-retries`,
      },
    }),
    set: buildCommand({
      func: set,
      parameters: {
        flags: { ...dbFlag },
        positional: {
          kind: "tuple",
          parameters: [keyParam, {
            brief: "A number, a duration (90s, 10m), a size (4MiB) or true/false",
            parse: String,
            placeholder: "value",
          }],
        },
      },
      docs: {
        brief: "Store a config value (validated against its bounds)",
        fullDescription: `Keys: ${keyList} (max_retries and other _ spellings work too).\n\n` +
          "Examples:\n  queuectl config set max-retries 5\n  queuectl config set backoff-base 3\n" +
          "  queuectl config set job-timeout 10m",
      },
    }),
    unset: buildCommand({
      func: unset,
      parameters: {
        flags: { ...dbFlag },
        positional: { kind: "tuple", parameters: [keyParam] },
      },
      docs: {
        brief: "Remove a stored value (back to the default)",
        fullDescription: "Example:\n  queuectl config unset max-retries",
      },
    }),
    list: buildCommand({
      func: list,
      parameters: { flags: { ...dbFlag, ...jsonFlag } },
      docs: {
        brief: "List every key with its value and where it comes from",
        fullDescription:
          "Precedence: flag > QUEUECTL_<KEY> environment variable > stored > default.",
      },
    }),
    show: buildCommand({
      func: list,
      parameters: { flags: { ...dbFlag, ...jsonFlag } },
      docs: { brief: "Same as config list" },
    }),
  },
  docs: { brief: "Get, set and list configuration" },
});

export const initCommand = buildCommand({
  func: init,
  parameters: { flags: { ...dbFlag } },
  docs: {
    brief: "Create the database now (optional: any command creates it on first use)",
    fullDescription: "Example:\n  queuectl init --db ./queue.db",
  },
});
