/**
 * queuectl's entry point: runs the command tree and maps errors to exit codes. The only
 * `Deno.exit`. Exit codes: 0 success, 2 usage mistake, 1 user-level failure (job not found, store
 * unusable) or internal error (printed with its stack).
 *
 * Every error is one line on stderr, `queuectl: <message>`, including the parser's own, which are
 * reworded here so that they read like ours and point at the right `--help`.
 *
 * `queuectl __worker …` is the worker process the supervisor spawns; it skips the CLI entirely.
 */
if (Deno.args[0] === "__worker") {
  const { workerMain } = await import("./workers/worker.ts");
  Deno.exit(await workerMain(Deno.args.slice(1)));
}

import {
  AliasNotFoundError,
  ArgumentParseError,
  type ArgumentScannerError,
  type Command,
  type CommandContext,
  EnumValidationError,
  FlagNotFoundError,
  formatMessageForArgumentScannerError,
  InvalidNegatedFlagSyntaxError,
  run,
  text_en,
  UnexpectedFlagError,
  UnexpectedPositionalError,
  UnsatisfiedFlagError,
  UnsatisfiedPositionalError,
} from "@stricli/core";
import type { RouteMap } from "@stricli/core";
import { QueuectlError } from "./lib/errors.ts";
import { buildProgram } from "./lib/cli/program.ts";
import { writeAll } from "./lib/write_all.ts";

// `deno task queuectl` runs from the project root; jobs and relative paths belong to the
// directory the user typed the command in.
const invokedFrom = Deno.env.get("QUEUECTL_CWD");
if (invokedFrom) Deno.chdir(invokedFrom);

function describe(e: unknown): string {
  if (e instanceof Deno.errors.BrokenPipe) return ""; // the reader of stdout went away
  if (e instanceof QueuectlError) return `queuectl: ${e.message}`;
  const stack = e instanceof Error ? (e.stack ?? e.message) : String(e);
  return `queuectl: internal error: ${stack}`;
}

/**
 * A user mistake is reported on one line, and the user's own text in it (an id, a file name, a
 * JSON key) can hold newlines or terminal escape sequences: show those as escapes, never raw.
 */
function oneLine(message: string): string {
  const end = message.endsWith("\n") ? "\n" : "";
  const body = end ? message.slice(0, -1) : message;
  return body.replace(
    // deno-lint-ignore no-control-regex -- control characters are exactly what is replaced
    /[\x00-\x1f\x7f]/g,
    (c) =>
      c === "\n"
        ? "\\n"
        : c === "\t"
        ? "\\t"
        : `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  ) + end;
}

type Target = Command<CommandContext> | RouteMap<CommandContext>;

/** The command words of the input (`dlq retry`), for "see queuectl dlq retry --help". */
function commandWords(root: Target, args: string[]): string[] {
  const words: string[] = [];
  let target: Target | undefined = root;
  for (const arg of args) {
    if (arg === "--") break;
    if (arg.startsWith("-")) continue;
    // Past a command, the remaining words are its arguments.
    if (!target || !("getRoutingTargetForInput" in target)) break;
    target = target.getRoutingTargetForInput(arg);
    if (!target) break;
    words.push(arg);
  }
  return words;
}

const orList = (items: string[]) =>
  items.length <= 1 ? items.join("") : `${items.slice(0, -1).join(", ")} or ${items.at(-1)}`;

/** The parser's messages, reworded: what was wrong, in our words. */
const scannerMessages = {
  FlagNotFoundError: (e: FlagNotFoundError) =>
    `unknown flag --${e.input}` +
    (e.corrections.length > 0
      ? `; did you mean ${orList(e.corrections.map((c) => `--${c}`))}?`
      : ""),
  AliasNotFoundError: (e: AliasNotFoundError) => `unknown flag -${e.input}`,
  ArgumentParseError: (e: ArgumentParseError) =>
    `bad value "${e.input}" for ${e.externalFlagNameOrPlaceholder}: ${
      e.exception instanceof Error ? e.exception.message : String(e.exception)
    }`,
  EnumValidationError: (e: EnumValidationError) =>
    `--${e.externalFlagName} must be one of ${orList(e.values.map(String))}, got "${e.input}"`,
  UnsatisfiedFlagError: (e: UnsatisfiedFlagError) => {
    // The same error means "given without its value" (the flag, or its -x alias, came last or
    // right before another flag) and "required but not given".
    const last = Deno.args.at(-1) ?? "";
    const dangling = e.nextFlagName !== undefined || last === `--${e.externalFlagName}` ||
      /^-[a-zA-Z]$/.test(last);
    if (!dangling) return `--${e.externalFlagName} is required`;
    return `--${e.externalFlagName} needs a value` +
      (e.nextFlagName ? ` (got --${e.nextFlagName} instead)` : "");
  },
  UnsatisfiedPositionalError: (e: UnsatisfiedPositionalError) =>
    `missing argument <${e.placeholder}>`,
  UnexpectedPositionalError: (e: UnexpectedPositionalError) =>
    `unexpected argument "${e.input}"` +
    (e.expectedCount === 0 ? "; this command takes none" : ` (takes at most ${e.expectedCount})`),
  UnexpectedFlagError: (e: UnexpectedFlagError) =>
    `--${e.externalFlagName} was given twice ("${e.previousInput}", then "${e.input}"); give it once`,
  InvalidNegatedFlagSyntaxError: (e: InvalidNegatedFlagSyntaxError) =>
    `--no-${e.externalFlagName} takes no value, got "${e.valueText}"`,
};

/** "see queuectl dlq retry --help", for the command that `args` name. */
function helpHint(args: string[]): string {
  const words = commandWords(app.root, args).join(" ");
  return `see queuectl ${words ? words + " " : ""}--help`;
}

const app = buildProgram({
  ...text_en,
  exceptionWhileRunningCommand: describe,
  commandErrorResult: describe,
  exceptionWhileParsingArguments: (e) => {
    if (e instanceof ArgumentParseError && e.exception instanceof QueuectlError) {
      return `queuectl: ${e.exception.message}`;
    }
    if (e instanceof Error && e.constructor.name in scannerMessages) {
      const msg = formatMessageForArgumentScannerError(
        e as ArgumentScannerError,
        scannerMessages as never,
      );
      return `queuectl: ${msg}; ${helpHint(Deno.args)}`;
    }
    return describe(e);
  },
  noCommandRegisteredForInput: ({ input, corrections }) => {
    const before = Deno.args.slice(0, Math.max(0, Deno.args.indexOf(input)));
    const what = input.startsWith("-") ? "flag" : "command";
    // Corrections are command names: no help for a mistyped flag, and "help" is not a typo of
    // "dlq" but a request that --help answers.
    const fixes = what === "flag" || input === "help"
      ? []
      : corrections.map((c) => `"${c.replaceAll("`", "")}"`);
    return `queuectl: unknown ${what} "${input}"` +
      (fixes.length > 0 ? `; did you mean ${orList(fixes)}?` : "") +
      `; ${helpHint(before)}`;
  },
});

// The parser reports every problem it found; one line is enough to act on, so show the first.
let errorShown = false;
const proc = {
  stdout: { write: (s: string) => writeAll(Deno.stdout, s) },
  stderr: {
    write: (s: string) => {
      if (errorShown || s.trim() === "") return; // "" is a closed pipe: nothing to say
      errorShown = s.startsWith("queuectl: ");
      if (errorShown && !s.startsWith("queuectl: internal error:")) s = oneLine(s);
      writeAll(Deno.stderr, s);
    },
  },
  exitCode: undefined as number | string | null | undefined,
};
await run(app, Deno.args, { process: proc });
const code = Number(proc.exitCode ?? 0);
// Stricli's own codes are negative: unknown command (-5) and bad arguments (-4) are usage mistakes.
Deno.exit(code === -4 || code === -5 ? 2 : code < 0 ? 1 : code);
