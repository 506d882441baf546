/**
 * `queuectl queue list|pause|resume|set`: named queues, their job counts and their rules (paused,
 * concurrency limit). The rules are kept and enforced by the store, for every worker on every
 * host; this module only parses, calls the store and prints.
 */
import { buildCommand, buildRouteMap } from "@stricli/core";
import { UsageError } from "../errors.ts";
import { JOB_STATES } from "../job.ts";
import { checkQueueName } from "../spec.ts";
import type { QueueInfo } from "../store/store.ts";
import { type Context, dbFlag, type DbFlags, intParser, jsonFlag, withStore } from "./context.ts";
import { out, outJson, table } from "./format.ts";

/** A queue as `--json` shows it (`queue list`, `status`): counts per state, then its rules. */
export function queueJson(q: QueueInfo) {
  return { name: q.name, ...q.counts, paused: q.paused, concurrency: q.concurrency };
}

/** The table of queues, as `queue list` and `status` print it. */
export function queueTable(queues: QueueInfo[]): string {
  return table(
    ["QUEUE", ...JOB_STATES.map((s) => s.toUpperCase()), "LIMIT", "PAUSED"],
    queues.map((q) => [
      q.name,
      ...JOB_STATES.map((s) => String(q.counts[s])),
      q.concurrency > 0 ? String(q.concurrency) : "-",
      q.paused ? "yes" : "no",
    ]),
  );
}

async function list(this: Context, flags: DbFlags & { json: boolean }) {
  await withStore(flags, async (store) => {
    const queues = await store.listQueues();
    if (flags.json) return outJson(queues.map(queueJson));
    out(queueTable(queues));
  }, { create: false });
}

const queueName = {
  kind: "tuple",
  parameters: [{
    brief: "Queue name (letters, digits, _ . -)",
    parse: (text: string) => checkQueueName(text, "the queue name"),
    placeholder: "name",
  }],
} as const;

async function pause(this: Context, flags: DbFlags, name: string) {
  await withStore(flags, (store) => store.setQueue(name, { paused: true }));
  out(`paused queue ${name}: its jobs are not started until queuectl queue resume ${name}`);
  out("(running jobs finish)");
}

async function resume(this: Context, flags: DbFlags, name: string) {
  await withStore(flags, (store) => store.setQueue(name, { paused: false }));
  out(`resumed queue ${name}`);
}

async function set(this: Context, flags: DbFlags & { concurrency?: number }, name: string) {
  const concurrency = flags.concurrency;
  if (concurrency === undefined) {
    throw new UsageError(
      `nothing to set: give --concurrency N (0 = no limit), e.g. queuectl queue set ${name} --concurrency 2`,
    );
  }
  await withStore(flags, (store) => store.setQueue(name, { concurrency }));
  out(
    concurrency === 0
      ? `queue ${name}: no concurrency limit`
      : `queue ${name}: at most ${concurrency} of its jobs run at once, over every worker`,
  );
}

export const queueRoutes = buildRouteMap({
  routes: {
    list: buildCommand({
      func: list,
      parameters: { flags: { ...dbFlag, ...jsonFlag } },
      docs: {
        brief: "List queues: jobs per state, limit, paused",
        fullDescription: [
          "Every queue that has jobs or rules; `default` always.",
          "",
          "Examples:",
          "  queuectl queue list",
          "  queuectl queue list --json",
        ].join("\n"),
      },
    }),
    pause: buildCommand({
      func: pause,
      parameters: { flags: { ...dbFlag }, positional: queueName },
      docs: {
        brief: "Stop starting a queue's jobs (running ones finish)",
        fullDescription: [
          "Workers on every host stop claiming the queue's jobs; jobs already running finish.",
          "A queue may be paused before it has any job.",
          "",
          "Example:",
          "  queuectl queue pause emails",
        ].join("\n"),
      },
    }),
    resume: buildCommand({
      func: resume,
      parameters: { flags: { ...dbFlag }, positional: queueName },
      docs: {
        brief: "Start a paused queue's jobs again",
        fullDescription: "Example:\n  queuectl queue resume emails",
      },
    }),
    set: buildCommand({
      func: set,
      parameters: {
        flags: {
          ...dbFlag,
          concurrency: {
            kind: "parsed",
            parse: intParser("concurrency", 0, 1_000_000),
            brief: "At most this many of its jobs run at once, over every worker; 0 = no limit",
            optional: true,
            placeholder: "n",
          },
        },
        positional: queueName,
      },
      docs: {
        brief: "Set a queue's concurrency limit",
        fullDescription: [
          "The limit holds across every worker and host: a worker claims a job of the queue",
          "only while fewer than N of its jobs are running. Lowering it stops no running job.",
          "A queue may be limited before it has any job.",
          "",
          "Examples:",
          "  queuectl queue set emails --concurrency 2",
          "  queuectl queue set emails --concurrency 0   # no limit",
        ].join("\n"),
      },
    }),
  },
  docs: {
    brief: "List, pause, resume and limit named queues",
    fullDescription: [
      "Jobs wait in a named queue (enqueue --queue NAME; default: default). Workers take",
      "from every queue unless started with worker start --queue a,b.",
      "",
      "Examples:",
      "  queuectl enqueue --queue emails -- ./send.sh 42",
      "  queuectl queue set emails --concurrency 2",
      "  queuectl queue pause emails",
      "  queuectl queue list",
    ].join("\n"),
  },
});
