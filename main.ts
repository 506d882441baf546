/**
 * queuectl's entry point: runs the command tree and maps errors to exit codes. The only
 * `Deno.exit`. Exit codes: 0 success, 2 usage mistake, 1 user-level failure (job not found, store
 * unusable) or internal error (printed with its stack).
 *
 * `queuectl __worker …` is the worker process the supervisor spawns; it skips the CLI entirely.
 */
if (Deno.args[0] === "__worker") {
  const { workerMain } = await import("./workers/worker.ts");
  Deno.exit(await workerMain(Deno.args.slice(1)));
}

import {
  ArgumentParseError,
  type ArgumentScannerError,
  formatMessageForArgumentScannerError,
  run,
  text_en,
} from "@stricli/core";
import { QueuectlError } from "./lib/errors.ts";
import { buildProgram } from "./lib/cli/program.ts";

// `deno task queuectl` runs from the project root; jobs and relative paths belong to the
// directory the user typed the command in.
const invokedFrom = Deno.env.get("QUEUECTL_CWD");
if (invokedFrom) Deno.chdir(invokedFrom);

function describe(e: unknown): string {
  if (e instanceof QueuectlError) return `queuectl: ${e.message}\n`;
  const stack = e instanceof Error ? (e.stack ?? e.message) : String(e);
  return `queuectl: internal error: ${stack}\n`;
}

const helpHint = () => {
  const words = Deno.args.filter((a) => !a.startsWith("-")).slice(0, 2).join(" ");
  return `; see queuectl ${words ? words + " " : ""}--help`;
};

const app = buildProgram({
  ...text_en,
  exceptionWhileRunningCommand: describe,
  exceptionWhileParsingArguments: (e) => {
    if (e instanceof ArgumentParseError && e.exception instanceof QueuectlError) {
      return `queuectl: ${e.exception.message}\n`;
    }
    const msg = formatMessageForArgumentScannerError(e as ArgumentScannerError, {});
    return `queuectl: ${msg}${helpHint()}\n`;
  },
  noCommandRegisteredForInput: ({ input, corrections }) =>
    `queuectl: unknown command "${input}"` +
    (corrections.length > 0
      ? `; did you mean ${corrections.map((c) => `"${c}"`).join(" or ")}?`
      : "") +
    `; see queuectl --help\n`,
});

const proc = {
  stdout: { write: (s: string) => void Deno.stdout.writeSync(new TextEncoder().encode(s)) },
  stderr: { write: (s: string) => void Deno.stderr.writeSync(new TextEncoder().encode(s)) },
  exitCode: undefined as number | string | null | undefined,
};
await run(app, Deno.args, { process: proc });
const code = Number(proc.exitCode ?? 0);
// Stricli's own codes are negative: unknown command (-5) and bad arguments (-4) are usage mistakes.
Deno.exit(code === -4 || code === -5 ? 2 : code < 0 ? 1 : code);
