/**
 * queuectl's command tree in citty: parses the arguments and prints what it got. No SQLite, no
 * command logic. citty has no repeatable string flag, so `--env` keeps the last value.
 */
import { type ArgsDef, defineCommand, runMain } from "npm:citty@0.2.2";

const print = (command: string, flags: object, args: string[] = []) =>
  console.log(JSON.stringify({ command, flags, args }));

const db = { db: { type: "string", description: "Database file" } } as const;
const json = { json: { type: "boolean", description: "Print JSON", default: false } } as const;
const page = {
  limit: { type: "string", description: "At most this many", default: "100" },
  offset: { type: "string", description: "Skip this many", default: "0" },
} as const;

/** A leaf command: parsed flags and positionals, printed. */
function leaf<const T extends ArgsDef>(name: string, description: string, args: T) {
  return defineCommand({
    meta: { name: name.split(" ").at(-1), description },
    args,
    run: ({ args: { _, ...flags } }) => print(name, flags, _),
  });
}

const main = defineCommand({
  meta: {
    name: "queuectl",
    version: "0.1.0",
    description: "queuectl: a durable background job queue for shell commands",
  },
  subCommands: {
    enqueue: leaf("enqueue", "Add a job to the queue", {
      ...db,
      id: { type: "string", description: "Job id" },
      retries: { type: "string", alias: "r", description: "Retries after the first attempt" },
      priority: { type: "string", alias: "p", description: "Higher runs first" },
      delay: { type: "string", description: "Run after this long" },
      runAt: { type: "string", description: "Run at this time" },
      timeout: { type: "string", description: "Kill the job after this long" },
      cwd: { type: "string", description: "Directory to run in" },
      env: { type: "string", description: "Extra environment variable NAME=VALUE" },
      file: { type: "string", alias: "f", description: "NDJSON file" },
      ...json,
    }),
    worker: defineCommand({
      meta: { name: "worker", description: "Start, stop and list workers" },
      subCommands: {
        start: leaf("worker start", "Run workers", {
          ...db,
          count: { type: "string", alias: "c", description: "Workers", default: "1" },
          quiet: { type: "boolean", alias: "q", description: "Warnings and errors only" },
          verbose: { type: "boolean", alias: "v", description: "Debug detail too" },
          logLevel: { type: "string", description: "Log level" },
        }),
        stop: leaf("worker stop", "Stop workers", {
          ...db,
          timeout: { type: "string", description: "Grace period", default: "60s" },
        }),
        list: leaf("worker list", "List workers", {
          ...db,
          all: { type: "boolean", description: "Include stopped workers", default: false },
          ...json,
        }),
      },
    }),
    status: leaf("status", "Job counts by state", { ...db, ...json }),
    list: leaf("list", "List jobs", {
      ...db,
      state: { type: "string", alias: "s", description: "State" },
      ...page,
      limit: { ...page.limit, alias: "n" },
      ...json,
    }),
    show: leaf("show", "Show one job", {
      ...db,
      ...json,
      id: { type: "positional", description: "Job id", required: true },
    }),
    logs: leaf("logs", "Print a job's output", {
      ...db,
      follow: { type: "boolean", alias: "f", description: "Keep printing", default: false },
      id: { type: "positional", description: "Job id", required: true },
    }),
    dlq: defineCommand({
      meta: { name: "dlq", description: "The dead letter queue" },
      subCommands: {
        list: leaf("dlq list", "List dead jobs", { ...db, ...page, ...json }),
        retry: leaf("dlq retry", "Retry dead jobs", {
          ...db,
          all: { type: "boolean", description: "Every dead job", default: false },
        }),
      },
    }),
    retry: leaf("retry", "Retry jobs", { ...db }),
    cancel: leaf("cancel", "Cancel jobs", { ...db }),
    purge: leaf("purge", "Delete finished jobs", {
      ...db,
      state: { type: "string", description: "State", required: true },
      olderThan: { type: "string", description: "Age", default: "0" },
    }),
    config: defineCommand({
      meta: { name: "config", description: "Configuration" },
      subCommands: {
        get: leaf("config get", "Print a config value", {
          ...db,
          ...json,
          key: { type: "positional", description: "Key", required: false },
        }),
        set: leaf("config set", "Store a config value", {
          ...db,
          key: { type: "positional", description: "Key", required: true },
          value: { type: "positional", description: "Value", required: true },
        }),
        list: leaf("config list", "List every key", { ...db, ...json }),
      },
    }),
    init: leaf("init", "Create the database", { ...db }),
  },
});

await runMain(main, { rawArgs: Deno.args });
