/**
 * `queuectl config get|set|unset|list|show` and `queuectl init`. Keys, bounds and precedence live
 * in `lib/config.ts`; values are validated when set, so a stored value is always usable.
 */
import { buildCommand, buildRouteMap } from "@stricli/core";
import {
  CONFIG_KEYS,
  envName,
  findKey,
  jsonName,
  type KeyInfo,
  type ListedValue,
  showTyped,
} from "../config.ts";
import { UsageError } from "../errors.ts";
import { describeConfig } from "../settings.ts";
import { type Context, dbFlag, type DbFlags, jsonFlag, withStore } from "./context.ts";
import { out, outJson, table } from "./format.ts";
import { writeAll } from "../write_all.ts";

type Flags = DbFlags & { json: boolean };

/** A key as `--json` shows it: durations in seconds, sizes in bytes, the typed text beside. */
function valueJson(v: ListedValue) {
  const def = findKey(v.key);
  const unit = def.kind === "duration" ? "seconds" : def.kind === "size" ? "bytes" : undefined;
  return {
    value: v.value === null ? null : def.json(v.value),
    ...(unit ? { unit } : {}),
    text: v.shown,
    source: v.source,
    ...("error" in v ? { error: v.error } : {}),
  };
}

/** Text from the environment or the store, with control characters shown as escapes. */
const visible = (text: string) =>
  // deno-lint-ignore no-control-regex -- control characters are exactly what is replaced
  text.replace(/[\x00-\x1f\x7f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);

/**
 * Lists every key. A value that does not parse is shown as given and marked invalid, with its
 * error on stderr, rather than failing the listing: this is where users look to find it.
 */
async function list(this: Context, flags: Flags) {
  await withStore(flags, async (store) => {
    const values = await describeConfig(store);
    if (flags.json) {
      return outJson(Object.fromEntries(values.map((v) => [jsonName(v.key), valueJson(v)])));
    }
    out(table(
      ["KEY", "VALUE", "SOURCE", "DESCRIPTION"],
      values.map((v) => [
        v.key,
        v.value === null ? `${visible(v.shown)} (invalid)` : v.shown,
        v.source === "env" ? `env ${envName(v.key)}` : v.source,
        v.doc,
      ]),
    ));
    for (const v of values) {
      if ("error" in v) {
        writeAll(
          Deno.stderr,
          `note: ${visible(v.error)}; commands that use ${v.key} refuse to run\n`,
        );
      }
    }
  }, { create: false });
}

/** Prints one key; fails (exit 2, one line) only when that key's value is invalid. */
async function get(this: Context, flags: Flags, key?: string) {
  if (key === undefined) return await list.call(this, flags);
  const def = findKey(key);
  await withStore(flags, async (store) => {
    const v = (await describeConfig(store)).find((r) => r.key === def.name)!;
    if ("error" in v) throw new UsageError(v.error);
    if (flags.json) return outJson({ key: jsonName(v.key), ...valueJson(v) });
    out(v.shown);
  }, { create: false });
}

/**
 * The text to store for a value the user typed: the text itself (trimmed, so `config list` shows
 * `1h` as typed), which the key's parser reads back to the same value.
 */
function storedText(def: KeyInfo, text: string, value: number | boolean): string {
  for (const t of [text.trim(), String(value), `${value}ms`]) {
    try {
      if (def.parse(t) === value) return t;
    } catch {
      // Not a form this key reads: try the next one.
    }
  }
  throw new Error(`config ${def.name}: no stored form reads back as ${value}`);
}

/** Warns (on stderr) when an environment variable hides the stored value of `def`. */
function noteEnvOverride(def: KeyInfo) {
  const name = envName(def.name);
  const env = Deno.env.get(name);
  if (env !== undefined && env !== "") {
    writeAll(
      Deno.stderr,
      `note: ${name}=${env} is set and overrides the stored value; unset it to use this one\n`,
    );
  }
}

async function set(this: Context, flags: DbFlags, key: string, value: string) {
  const def = findKey(key);
  const parsed = def.parse(value);
  await withStore(flags, async (store) => {
    const text = storedText(def, value, parsed);
    await store.setConfig(def.name, text);
    out(`${def.name} = ${showTyped(def, text, parsed)}`);
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

/** The keys, a few per line, so that help stays within 80 columns. */
const keyList = CONFIG_KEYS.map((k) => k.name).join(", ").replace(
  /(.{1,70})(, |$)/g,
  (_, names, sep) => `${names}${sep.trim()}\n  `,
).trimEnd();
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
        fullDescription: `Keys:\n  ${keyList}\n\nExample:\n  queuectl config get max-retries`,
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
        fullDescription: `Keys (max_retries and other _ spellings work too):\n  ${keyList}\n\n` +
          "max-retries counts retries after the first attempt: 3 means up to 4 attempts.\n" +
          "Durations are seconds or 90s, 10m, 2h, 7d; sizes bytes or 512KiB, 4MiB, 1GiB.\n\n" +
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
    brief: "Create the database now (optional: any command that writes creates it)",
    fullDescription: "Example:\n  queuectl init --db ./queue.db",
  },
});
