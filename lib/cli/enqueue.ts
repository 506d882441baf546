/**
 * `queuectl enqueue`: its flags and help. What it does is in `enqueue_run.ts`, loaded when the
 * command runs.
 */
import { buildCommand } from "@stricli/core";
import { dbFlag, jsonFlag } from "./context.ts";
import { JOB_FLAGS } from "./job_flags.ts";
import type { EnqueueFlags } from "./enqueue_run.ts";

export const enqueueCommand = buildCommand<EnqueueFlags, string[]>({
  loader: async () => (await import("./enqueue_run.ts")).enqueue,
  parameters: {
    flags: {
      ...dbFlag,
      id: {
        kind: "parsed",
        parse: String,
        brief: "Job id (default: generated)",
        optional: true,
        placeholder: "id",
      },
      retries: JOB_FLAGS.retries,
      priority: JOB_FLAGS.priority,
      delay: {
        kind: "parsed",
        parse: String,
        brief: "Run after this long: seconds, or 90s, 5m, 2h",
        optional: true,
        placeholder: "duration",
      },
      runAt: {
        kind: "parsed",
        parse: String,
        brief: "Run at this ISO 8601 time and offset, e.g. 2026-12-01T09:00Z",
        optional: true,
        placeholder: "time",
      },
      timeout: JOB_FLAGS.timeout,
      cwd: JOB_FLAGS.cwd,
      env: JOB_FLAGS.env,
      unique: JOB_FLAGS.unique,
      after: {
        kind: "parsed",
        parse: String,
        brief: "Run only after these jobs completed: ID[,ID…]",
        optional: true,
        placeholder: "ids",
      },
      queue: JOB_FLAGS.queue,
      file: {
        kind: "parsed",
        parse: String,
        brief: "Jobs from NDJSON or a JSON array (- = stdin), all or nothing",
        optional: true,
        placeholder: "path",
      },
      json: { ...jsonFlag.json, brief: "Print the new job ids and run times as JSON" },
    },
    aliases: { f: "file", r: "retries", p: "priority" },
    positional: {
      kind: "array",
      parameter: {
        brief: "A JSON job spec (or an array of them), or the command after --",
        parse: String,
        placeholder: "job",
      },
    },
  },
  docs: {
    brief: "Add a job to the queue",
    fullDescription: [
      "Adds a job and prints its id; it is stored durably before this command exits.",
      "",
      "A job is one argument of JSON (an object, or an array of objects), or a command",
      "after --. Text that is not JSON is refused, never run as a command. After --, one",
      "word is a shell command line as written; several are a program and its arguments,",
      "kept as given (-- sh -c 'echo hi; sleep 3' runs exactly that).",
      "",
      "Job spec fields: id, command (required), max_retries (retries after the first",
      "attempt: 3 means at most 4 runs), priority, run_at (with Z or an offset such as",
      "+02:00) or delay, timeout (up to 30d), cwd (default: the current directory),",
      "env (an object of strings), unique_key, after (ids of jobs that must complete first;",
      "each must exist, or come earlier in the same --file), queue (a name like emails;",
      "default: default). Unknown fields are refused.",
      "",
      'With a unique key (--unique, "unique_key"), a job is not added while another job',
      "with that key is pending, failed or processing: the command prints that job's id",
      'and exits 0 (--json: "existing": true). Once it completed, died or was cancelled,',
      "the key is free again.",
      "",
      "--file takes NDJSON or a JSON array, all stored or none; an error names the line",
      "or the element. A file of 1 MiB or more shows its steps on a terminal (stderr).",
      "",
      "Examples:",
      `  queuectl enqueue '{"id":"job1","command":"sleep 2"}'`,
      `  queuectl enqueue '{"command":"./backup.sh","max_retries":5,"timeout":"10m"}'`,
      "  queuectl enqueue --id j1 --retries 2 --delay 10s -- echo hi",
      "  queuectl enqueue --env TOKEN=abc --cwd /srv/app -- ./deploy.sh",
      "  queuectl enqueue --queue emails -- ./send.sh 42",
      "  queuectl enqueue --unique sync -- ./sync.sh   # skipped while one is queued",
      `  queuectl enqueue '{"command":"./report.sh","unique_key":"report-2026-12-01"}'`,
      "  queuectl enqueue --id test --after build -- make test  # after build completed",
      "  queuectl enqueue --after build,test -- ./deploy.sh      # waits for both",
      "  queuectl enqueue --file jobs.ndjson   # one JSON spec per line; - reads stdin",
      "  queuectl enqueue --file jobs.json     # or a JSON array of specs",
    ].join("\n"),
  },
});
