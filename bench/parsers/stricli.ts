/**
 * queuectl's command tree in @stricli/core (the parser the CLI uses): parses the arguments and
 * prints what it got. No SQLite, no command logic.
 */
import {
  buildApplication,
  buildCommand,
  buildRouteMap,
  type CommandContext,
  run,
} from "npm:@stricli/core@1.3.0";

const print = (command: string, flags: object, args: string[] = []) =>
  console.log(JSON.stringify({ command, flags, args }));

const str = (brief: string) =>
  ({ kind: "parsed", parse: String, brief, optional: true, placeholder: "value" }) as const;
const bool = (brief: string) => ({ kind: "boolean", brief, default: false }) as const;
const db = { db: str("Database file") } as const;
const json = { json: bool("Print JSON") } as const;
const page = {
  limit: { kind: "parsed", parse: Number, brief: "At most this many", default: "100" },
  offset: { kind: "parsed", parse: Number, brief: "Skip this many", default: "0" },
} as const;
const ids = {
  kind: "array",
  parameter: { brief: "Job ids", parse: String, placeholder: "id" },
} as const;
const one = (brief: string) =>
  ({ kind: "tuple", parameters: [{ brief, parse: String, placeholder: "id" }] }) as const;

/** A command that takes only `--db` and `--json`. */
const plain = (name: string, brief: string) =>
  buildCommand({
    func(flags: Db & Json) {
      print(name, flags);
    },
    parameters: { flags: { ...db, ...json } },
    docs: { brief },
  });

interface Db {
  db?: string;
}
interface Json {
  json: boolean;
}
type Page = { limit: number; offset: number } & Db & Json;
type Opt = string | undefined;
interface EnqueueFlags extends Db, Json {
  id: Opt;
  retries: Opt;
  priority: Opt;
  delay: Opt;
  runAt: Opt;
  timeout: Opt;
  cwd: Opt;
  env?: string[];
  file: Opt;
}

const enqueue = buildCommand({
  func(flags: EnqueueFlags, ...job: string[]) {
    print("enqueue", flags, job);
  },
  parameters: {
    flags: {
      ...db,
      id: str("Job id"),
      retries: str("Retries after the first attempt"),
      priority: str("Higher runs first"),
      delay: str("Run after this long"),
      runAt: str("Run at this time"),
      timeout: str("Kill the job after this long"),
      cwd: str("Directory to run in"),
      env: { ...str("NAME=VALUE (repeatable)"), variadic: true },
      file: str("NDJSON file"),
      ...json,
    },
    aliases: { f: "file", r: "retries", p: "priority" },
    positional: {
      kind: "array",
      parameter: { brief: "A JSON job spec", parse: String, placeholder: "job" },
    },
  },
  docs: { brief: "Add a job to the queue" },
});

const worker = buildRouteMap({
  routes: {
    start: buildCommand({
      func(flags: Db & { count: number; quiet: boolean; verbose: boolean; logLevel: Opt }) {
        print("worker start", flags);
      },
      parameters: {
        flags: {
          ...db,
          count: { kind: "parsed", parse: Number, brief: "Workers", default: "1" },
          quiet: bool("Warnings and errors only"),
          verbose: bool("Debug detail too"),
          logLevel: str("Log level"),
        },
        aliases: { c: "count", q: "quiet", v: "verbose" },
      },
      docs: { brief: "Run workers" },
    }),
    stop: buildCommand({
      func(flags: Db & { timeout: string }) {
        print("worker stop", flags);
      },
      parameters: {
        flags: {
          ...db,
          timeout: { kind: "parsed", parse: String, brief: "Grace period", default: "60s" },
        },
      },
      docs: { brief: "Stop workers" },
    }),
    list: buildCommand({
      func(flags: Db & Json & { all: boolean }) {
        print("worker list", flags);
      },
      parameters: { flags: { ...db, all: bool("Include stopped workers"), ...json } },
      docs: { brief: "List workers" },
    }),
  },
  docs: { brief: "Start, stop and list workers" },
});

const root = buildRouteMap({
  routes: {
    enqueue,
    worker,
    status: plain("status", "Job counts by state"),
    list: buildCommand({
      func(flags: Page & { state: Opt }) {
        print("list", flags);
      },
      parameters: {
        flags: { ...db, state: str("State"), ...page, ...json },
        aliases: { s: "state", n: "limit" },
      },
      docs: { brief: "List jobs" },
    }),
    show: buildCommand({
      func(flags: Db & Json, id: string) {
        print("show", flags, [id]);
      },
      parameters: { flags: { ...db, ...json }, positional: one("Job id") },
      docs: { brief: "Show one job" },
    }),
    logs: buildCommand({
      func(flags: Db & { follow: boolean }, id: string) {
        print("logs", flags, [id]);
      },
      parameters: {
        flags: { ...db, follow: bool("Keep printing") },
        aliases: { f: "follow" },
        positional: one("Job id"),
      },
      docs: { brief: "Print a job's output" },
    }),
    dlq: buildRouteMap({
      routes: {
        list: buildCommand({
          func(flags: Page) {
            print("dlq list", flags);
          },
          parameters: { flags: { ...db, ...page, ...json } },
          docs: { brief: "List dead jobs" },
        }),
        retry: buildCommand({
          func(flags: Db & { all: boolean }, ...id: string[]) {
            print("dlq retry", flags, id);
          },
          parameters: { flags: { ...db, all: bool("Every dead job") }, positional: ids },
          docs: { brief: "Retry dead jobs" },
        }),
      },
      docs: { brief: "The dead letter queue" },
    }),
    retry: buildCommand({
      func(flags: Db, ...id: string[]) {
        print("retry", flags, id);
      },
      parameters: { flags: { ...db }, positional: ids },
      docs: { brief: "Retry jobs" },
    }),
    cancel: buildCommand({
      func(flags: Db, ...id: string[]) {
        print("cancel", flags, id);
      },
      parameters: { flags: { ...db }, positional: ids },
      docs: { brief: "Cancel jobs" },
    }),
    purge: buildCommand({
      func(flags: Db & { state: string; olderThan: string }) {
        print("purge", flags);
      },
      parameters: {
        flags: {
          ...db,
          state: { kind: "parsed", parse: String, brief: "State" },
          olderThan: { kind: "parsed", parse: String, brief: "Age", default: "0" },
        },
      },
      docs: { brief: "Delete finished jobs" },
    }),
    config: buildRouteMap({
      routes: {
        get: buildCommand({
          func(flags: Db & Json, key?: string) {
            print("config get", flags, key === undefined ? [] : [key]);
          },
          parameters: {
            flags: { ...db, ...json },
            positional: {
              kind: "tuple",
              parameters: [{ brief: "Key", parse: String, optional: true }],
            },
          },
          docs: { brief: "Print a config value" },
        }),
        set: buildCommand({
          func(flags: Db, key: string, value: string) {
            print("config set", flags, [key, value]);
          },
          parameters: {
            flags: { ...db },
            positional: {
              kind: "tuple",
              parameters: [{ brief: "Key", parse: String }, { brief: "Value", parse: String }],
            },
          },
          docs: { brief: "Store a config value" },
        }),
        list: plain("config list", "List every key"),
      },
      docs: { brief: "Configuration" },
    }),
    init: buildCommand({
      func(flags: Db) {
        print("init", flags);
      },
      parameters: { flags: { ...db } },
      docs: { brief: "Create the database" },
    }),
  },
  docs: { brief: "queuectl: a durable background job queue for shell commands" },
});

const app = buildApplication<CommandContext>(root, {
  name: "queuectl",
  versionInfo: { currentVersion: "0.1.0" },
  scanner: { caseStyle: "allow-kebab-for-camel", allowArgumentEscapeSequence: true },
  documentation: { caseStyle: "convert-camel-to-kebab" },
});
const proc = {
  stdout: { write: (s: string) => void Deno.stdout.writeSync(new TextEncoder().encode(s)) },
  stderr: { write: (s: string) => void Deno.stderr.writeSync(new TextEncoder().encode(s)) },
  exitCode: undefined as number | string | null | undefined,
};
await run(app, Deno.args, { process: proc });
if (proc.exitCode) Deno.exit(1);
