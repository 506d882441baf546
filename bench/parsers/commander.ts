/**
 * queuectl's command tree in commander 14 with @commander-js/extra-typings: parses the arguments
 * and prints what it got. No SQLite, no command logic.
 */
import { Command, Option } from "npm:@commander-js/extra-typings@14.0.0";
import "npm:commander@14.0.3";

const print = (command: string, flags: object, args: string[] = []) =>
  console.log(JSON.stringify({ command, flags, args }));

const program = new Command("queuectl")
  .description("queuectl: a durable background job queue for shell commands")
  .version("0.1.0");

program.command("enqueue").description("Add a job to the queue")
  .option("--db <path>", "Database file")
  .option("--id <id>", "Job id")
  .option("-r, --retries <n>", "Retries after the first attempt")
  .option("-p, --priority <n>", "Higher runs first")
  .option("--delay <duration>", "Run after this long")
  .option("--run-at <time>", "Run at this time")
  .option("--timeout <duration>", "Kill the job after this long")
  .option("--cwd <dir>", "Directory to run in")
  .addOption(
    new Option("--env <NAME=VALUE>", "Extra environment variable (repeatable)")
      .argParser((v, prev: string[] = []) => [...prev, v]),
  )
  .option("-f, --file <path>", "NDJSON file")
  .option("--json", "Print JSON", false)
  .argument("[job...]", "A JSON job spec")
  .action((job, flags) => print("enqueue", flags, job));

const worker = program.command("worker").description("Start, stop and list workers");
worker.command("start").description("Run workers")
  .option("--db <path>", "Database file")
  .option("-c, --count <n>", "Workers", "1")
  .option("-q, --quiet", "Warnings and errors only", false)
  .option("-v, --verbose", "Debug detail too", false)
  .option("--log-level <level>", "Log level")
  .action((flags) => print("worker start", flags));
worker.command("stop").description("Stop workers")
  .option("--db <path>", "Database file")
  .option("--timeout <duration>", "Grace period", "60s")
  .action((flags) => print("worker stop", flags));
worker.command("list").description("List workers")
  .option("--db <path>", "Database file")
  .option("--all", "Include stopped workers", false)
  .option("--json", "Print JSON", false)
  .action((flags) => print("worker list", flags));

program.command("status").description("Job counts by state")
  .option("--db <path>", "Database file")
  .option("--json", "Print JSON", false)
  .action((flags) => print("status", flags));
program.command("list").description("List jobs")
  .option("--db <path>", "Database file")
  .option("-s, --state <state>", "State")
  .option("-n, --limit <n>", "At most this many", "100")
  .option("--offset <n>", "Skip this many", "0")
  .option("--json", "Print JSON", false)
  .action((flags) => print("list", flags));
program.command("show").description("Show one job")
  .option("--db <path>", "Database file")
  .option("--json", "Print JSON", false)
  .argument("<id>", "Job id")
  .action((id, flags) => print("show", flags, [id]));
program.command("logs").description("Print a job's output")
  .option("--db <path>", "Database file")
  .option("-f, --follow", "Keep printing", false)
  .argument("<id>", "Job id")
  .action((id, flags) => print("logs", flags, [id]));

const dlq = program.command("dlq").description("The dead letter queue");
dlq.command("list").description("List dead jobs")
  .option("--db <path>", "Database file")
  .option("--limit <n>", "At most this many", "100")
  .option("--offset <n>", "Skip this many", "0")
  .option("--json", "Print JSON", false)
  .action((flags) => print("dlq list", flags));
dlq.command("retry").description("Retry dead jobs")
  .option("--db <path>", "Database file")
  .option("--all", "Every dead job", false)
  .argument("[id...]", "Job ids")
  .action((id, flags) => print("dlq retry", flags, id));

program.command("retry").description("Retry jobs")
  .option("--db <path>", "Database file")
  .argument("<id...>", "Job ids")
  .action((id, flags) => print("retry", flags, id));
program.command("cancel").description("Cancel jobs")
  .option("--db <path>", "Database file")
  .argument("<id...>", "Job ids")
  .action((id, flags) => print("cancel", flags, id));
program.command("purge").description("Delete finished jobs")
  .option("--db <path>", "Database file")
  .requiredOption("--state <state>", "State")
  .option("--older-than <age>", "Age", "0")
  .action((flags) => print("purge", flags));

const config = program.command("config").description("Configuration");
config.command("get").description("Print a config value")
  .option("--db <path>", "Database file")
  .option("--json", "Print JSON", false)
  .argument("[key]", "Key")
  .action((key, flags) => print("config get", flags, key === undefined ? [] : [key]));
config.command("set").description("Store a config value")
  .option("--db <path>", "Database file")
  .argument("<key>", "Key")
  .argument("<value>", "Value")
  .action((key, value, flags) => print("config set", flags, [key, value]));
config.command("list").description("List every key")
  .option("--db <path>", "Database file")
  .option("--json", "Print JSON", false)
  .action((flags) => print("config list", flags));

program.command("init").description("Create the database")
  .option("--db <path>", "Database file")
  .action((flags) => print("init", flags));

await program.parseAsync(Deno.args, { from: "user" });
