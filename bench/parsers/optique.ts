/**
 * queuectl's command tree in @optique/core: parses the arguments and prints what it got. No
 * SQLite, no command logic.
 */
import { object, or } from "npm:@optique/core@1.3.6/constructs";
import { runParser } from "npm:@optique/core@1.3.6/facade";
import { message } from "npm:@optique/core@1.3.6/message";
import { multiple, optional, withDefault } from "npm:@optique/core@1.3.6/modifiers";
import { argument, command, constant, flag, option } from "npm:@optique/core@1.3.6/primitives";
import { integer, string } from "npm:@optique/core@1.3.6/valueparser";

const db = { db: optional(option("--db", string({ metavar: "PATH" }))) };
const json = { json: withDefault(flag("--json"), false) };
const page = {
  limit: withDefault(option("-n", "--limit", integer({ min: 1 })), 100),
  offset: withDefault(option("--offset", integer({ min: 0 })), 0),
};
const ids = { args: multiple(argument(string({ metavar: "ID" })), { min: 1 }) };
const id = { args: argument(string({ metavar: "ID" })) };
const opt = (...names: [`--${string}`, ...`-${string}`[]]) => optional(option(...names, string()));
const about = (text: string) => ({ brief: message`${text}` });

const parser = or(
  command(
    "enqueue",
    object({
      command: constant("enqueue"),
      ...db,
      id: opt("--id"),
      retries: opt("--retries", "-r"),
      priority: opt("--priority", "-p"),
      delay: opt("--delay"),
      runAt: opt("--run-at"),
      timeout: opt("--timeout"),
      cwd: opt("--cwd"),
      env: multiple(option("--env", string({ metavar: "NAME=VALUE" }))),
      file: opt("--file", "-f"),
      ...json,
      args: multiple(argument(string({ metavar: "JOB" }))),
    }),
    about("Add a job to the queue"),
  ),
  command(
    "worker",
    or(
      command(
        "start",
        object({
          command: constant("worker start"),
          ...db,
          count: withDefault(option("-c", "--count", integer({ min: 1, max: 256 })), 1),
          quiet: withDefault(flag("-q", "--quiet"), false),
          verbose: withDefault(flag("-v", "--verbose"), false),
          logLevel: opt("--log-level"),
        }),
        about("Run workers"),
      ),
      command(
        "stop",
        object({
          command: constant("worker stop"),
          ...db,
          timeout: withDefault(option("--timeout", string()), "60s"),
        }),
        about("Stop workers"),
      ),
      command(
        "list",
        object({
          command: constant("worker list"),
          ...db,
          all: withDefault(flag("--all"), false),
          ...json,
        }),
        about("List workers"),
      ),
    ),
    about("Start, stop and list workers"),
  ),
  command("status", object({ command: constant("status"), ...db, ...json }), about("Counts")),
  command(
    "list",
    object({ command: constant("list"), ...db, state: opt("--state", "-s"), ...page, ...json }),
    about("List jobs"),
  ),
  command("show", object({ command: constant("show"), ...db, ...json, ...id }), about("Show")),
  command(
    "logs",
    object({
      command: constant("logs"),
      ...db,
      follow: withDefault(flag("-f", "--follow"), false),
      ...id,
    }),
    about("Print a job's output"),
  ),
  command(
    "dlq",
    or(
      command(
        "list",
        object({ command: constant("dlq list"), ...db, ...page, ...json }),
        about("List dead jobs"),
      ),
      command(
        "retry",
        object({
          command: constant("dlq retry"),
          ...db,
          all: withDefault(flag("--all"), false),
          args: multiple(argument(string({ metavar: "ID" }))),
        }),
        about("Retry dead jobs"),
      ),
    ),
    about("The dead letter queue"),
  ),
  command("retry", object({ command: constant("retry"), ...db, ...ids }), about("Retry jobs")),
  command("cancel", object({ command: constant("cancel"), ...db, ...ids }), about("Cancel jobs")),
  command(
    "purge",
    object({
      command: constant("purge"),
      ...db,
      state: option("--state", string()),
      olderThan: withDefault(option("--older-than", string()), "0"),
    }),
    about("Delete finished jobs"),
  ),
  command(
    "config",
    or(
      command(
        "get",
        object({
          command: constant("config get"),
          ...db,
          ...json,
          key: optional(argument(string({ metavar: "KEY" }))),
        }),
        about("Print a config value"),
      ),
      command(
        "set",
        object({
          command: constant("config set"),
          ...db,
          key: argument(string({ metavar: "KEY" })),
          value: argument(string({ metavar: "VALUE" })),
        }),
        about("Store a config value"),
      ),
      command(
        "list",
        object({ command: constant("config list"), ...db, ...json }),
        about("List every key"),
      ),
    ),
    about("Configuration"),
  ),
  command("init", object({ command: constant("init"), ...db }), about("Create the database")),
);

const { command: name, ...flags } = runParser(parser, "queuectl", Deno.args, {
  brief: message`queuectl: a durable background job queue for shell commands`,
  help: { option: true, onShow: () => Deno.exit(0) },
  version: { option: true, value: "0.1.0", onShow: () => Deno.exit(0) },
  onError: (code) => Deno.exit(code),
});
const { args = [], ...rest } = flags as { args?: string | readonly string[] };
console.log(JSON.stringify({ command: name, flags: rest, args: [args].flat() }));
