/**
 * queuectl's entry point: runs the command tree and maps errors to exit codes. The only
 * `Deno.exit`. Exit codes: 0 success, 2 usage mistake, 1 user-level failure (job not found, store
 * unusable) or internal error (printed with its stack).
 *
 * Every error is one line on stderr, `queuectl: <message>`, including the parser's own, which are
 * reworded here so that they read like ours and point at the right `--help`.
 *
 * `queuectl __worker …` is the worker process the supervisor spawns; it skips the CLI entirely, as
 * does `queuectl __complete …`, which the shell completion scripts call.
 * The common shapes of `enqueue` skip the parser (see `simpleEnqueueInput`): nothing but that
 * command's own modules is loaded for them. Every other input goes through the parser, which loads
 * only the module of the command it names (lib/cli/program.ts).
 */
if (Deno.args[0] === "__worker") {
  const { workerMain } = await import("./workers/worker.ts");
  Deno.exit(await workerMain(Deno.args.slice(1)));
}
// What a shell's completion script (`queuectl completions`) asks on each TAB.
if (Deno.args[0] === "__complete") {
  const { completeMain } = await import("./lib/cli/completions.ts");
  Deno.exit(await completeMain(Deno.args.slice(1)));
}

import type {
  AliasNotFoundError,
  ArgumentParseError as ArgumentParseErrorType,
  ArgumentScannerError,
  Command,
  CommandContext,
  EnumValidationError,
  FlagNotFoundError,
  InvalidNegatedFlagSyntaxError,
  RouteMap,
  UnexpectedFlagError,
  UnexpectedPositionalError,
  UnsatisfiedFlagError,
  UnsatisfiedPositionalError,
} from "@stricli/core";
import { QueuectlError } from "./lib/errors.ts";
import { netNeedsOf } from "./lib/cli/net.ts";
import { writeAll } from "./lib/write_all.ts";

// A PostgreSQL store needs network permission for its server alone, and `dashboard` for the
// address it listens on, which the tasks cannot name in advance: under `deno run`, run again with
// `--allow-net=HOST:PORT,…` added (once).
{
  // An address Deno cannot read is left to the command, which says what is wrong with it.
  const granted = (host: string) => {
    try {
      return Deno.permissions.querySync({ name: "net", host }).state === "granted";
    } catch {
      return null;
    }
  };
  const nets = netNeedsOf(Deno.args).filter((host) => granted(host) !== null);
  const net = nets.join(",");
  const self = net && !Deno.env.get("QUEUECTL_NET_GRANTED") && nets.some((h) => !granted(h))
    ? await import("./lib/self.ts")
    : null;
  if (self?.underDeno()) {
    const { queuectlCommand } = self;
    const cmd = queuectlCommand(Deno.args, [`--allow-net=${net}`]);
    const child = new Deno.Command(cmd.exec, {
      args: cmd.args,
      env: { QUEUECTL_NET_GRANTED: "1" },
      stdin: "inherit",
      stdout: "inherit",
      stderr: "inherit",
    }).spawn();
    // Ctrl+C and Ctrl+\ reach both processes (one process group): the child alone acts on them.
    // A SIGTERM sent to this process is passed on.
    for (const sig of ["SIGINT", "SIGQUIT"] as const) Deno.addSignalListener(sig, () => {});
    Deno.addSignalListener("SIGTERM", () => {
      try {
        child.kill("SIGTERM");
      } catch { /* exited */ }
    });
    const status = await child.status;
    Deno.exit(status.signal ? 128 + signalNumber(status.signal) : status.code);
  }
}

function signalNumber(sig: Deno.Signal): number {
  return ({ SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGTERM: 15 } as Record<string, number>)[sig] ?? 1;
}

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

/** The exit code of an error a command threw (see the top of this file). */
function exitCodeOf(e: unknown): number {
  // A reader that went away (`queuectl list | head`) got what it wanted: exit 0, quietly.
  if (e instanceof Deno.errors.BrokenPipe) return 0;
  return e && typeof e === "object" && "exitCode" in e ? Number(e.exitCode) : 1;
}

// Several problems may be found at once; one line is enough to act on, so show the first.
let errorShown = false;
const stderr = {
  write: (s: string) => {
    if (errorShown || s.trim() === "") return; // "" is a closed pipe: nothing to say
    errorShown = s.startsWith("queuectl: ");
    if (errorShown && !s.startsWith("queuectl: internal error:")) s = oneLine(s);
    writeAll(Deno.stderr, s);
  },
};

// The common shapes of `enqueue` (a job argument, --file, a command after --; with --db and
// --json) run without loading the parser: one enqueue's start-up is what users wait for.
// Anything else goes through the parser below, as every other command does.
if (Deno.args.includes("enqueue")) {
  const { enqueue, simpleEnqueueInput } = await import("./lib/cli/enqueue_run.ts");
  const simple = simpleEnqueueInput(Deno.args);
  if (simple !== null) {
    let code = 0;
    try {
      await enqueue(simple.flags, ...simple.args);
    } catch (e) {
      stderr.write(`${describe(e)}\n`);
      code = exitCodeOf(e);
    }
    Deno.exit(code);
  }
}

const {
  ArgumentParseError,
  formatMessageForArgumentScannerError,
  run,
  text_en,
} = await import("@stricli/core");
const { buildProgram } = await import("./lib/cli/program.ts");

type Target = Command<CommandContext> | RouteMap<CommandContext>;

interface Routed {
  /** The command words of the input (`dlq retry`). */
  words: string[];
  /** Index in the input just past the last command word. */
  end: number;
  /** What the words name: a command, or a group (route map) when no command followed. */
  target: Target;
}

/** Follows the command words of `args` from the root, skipping flags. */
function route(root: Target, args: string[]): Routed {
  const words: string[] = [];
  let target: Target = root;
  let end = 0;
  for (const [i, arg] of args.entries()) {
    if (arg === "--") break;
    if (arg.startsWith("-")) continue;
    // Past a command, the remaining words are its arguments.
    if (!("getRoutingTargetForInput" in target)) break;
    const next = target.getRoutingTargetForInput(arg);
    if (!next) break;
    target = next;
    words.push(arg);
    end = i + 1;
  }
  return { words, end, target };
}

/** The command words of the input (`dlq retry`), for "see queuectl dlq retry --help". */
function commandWords(root: Target, args: string[]): string[] {
  return route(root, args).words;
}

/**
 * Reads what is global in the input before the parser sees it:
 * - `--no-color` anywhere before `--`, removed;
 * - `--db PATH` (or `--db=PATH`) before the command, moved after the command words, where every
 *   command takes it (`queuectl --db x.db status`);
 * - `queuectl help [COMMAND…]`, which becomes `queuectl [COMMAND…] --help`;
 * - a group without its command (`queuectl worker`), which prints the group's help and, being
 *   an incomplete command, exits 2.
 */
function globalInput(root: Target, raw: string[]) {
  const dashes = raw.indexOf("--");
  const stop = dashes === -1 ? raw.length : dashes;
  const noColor = raw.slice(0, stop).includes("--no-color");
  let rest = raw.filter((a, i) => i >= stop || a !== "--no-color");
  const globals: string[] = [];
  while (rest.length > 0) {
    if (rest[0] === "--db" && rest.length > 1) globals.push(...rest.splice(0, 2));
    else if (rest[0].startsWith("--db=")) globals.push(...rest.splice(0, 1));
    else if (rest[0] === "--db") {
      const why = "--db needs a value: a database file or a postgres:// URL";
      return { args: [], noColor, incomplete: why };
    } else break;
  }
  if (rest[0] === "help") rest = [...rest.slice(1), "--help"];
  const { words, end, target } = route(root, rest);
  // Nothing but --db after the group's words: no command was named. (Anything else, such as an
  // unknown flag, is the parser's to report.)
  const group = words.length > 0 && "getAllEntries" in target ? target : null;
  const incomplete = group !== null &&
    rest.every((a, i) =>
      i < end || a === "--db" || a.startsWith("--db=") || (rest[i - 1] === "--db" && i - 1 >= end)
    );
  if (incomplete) {
    const commands = group.getAllEntries().filter((e) => !e.hidden).map((e) => e.name.original);
    const missing = `"${words.join(" ")}" needs a command: ${orList(commands)}; ` +
      `see queuectl ${words.join(" ")} --help`;
    return { args: [...words, "--help"], noColor, incomplete: missing };
  }
  // Nothing but global flags: the root help, as for no input at all.
  if (rest.length === 0) return { args: [], noColor, incomplete: null };
  // The root takes no --db (`queuectl --db x --help`): it only matters to a command.
  const args = words.length === 0 ? rest : [...rest.slice(0, end), ...globals, ...rest.slice(end)];
  return { args, noColor, incomplete: null };
}

const orList = (items: string[]) =>
  items.length <= 1 ? items.join("") : `${items.slice(0, -1).join(", ")} or ${items.at(-1)}`;

/** The parser's messages, reworded: what was wrong, in our words. */
const scannerMessages = {
  FlagNotFoundError: (e: FlagNotFoundError) =>
    `unknown flag --${e.input}` +
    (e.corrections.length > 0
      ? ` (did you mean ${orList(e.corrections.map((c) => `--${c}`))}?)`
      : ""),
  AliasNotFoundError: (e: AliasNotFoundError) => `unknown flag -${e.input}`,
  ArgumentParseError: (e: ArgumentParseErrorType) =>
    `bad value "${e.input}" for ${e.externalFlagNameOrPlaceholder}: ${
      e.exception instanceof Error ? e.exception.message : String(e.exception)
    }`,
  EnumValidationError: (e: EnumValidationError) =>
    `--${e.externalFlagName} must be one of ${orList(e.values.map(String))}, got "${e.input}"`,
  UnsatisfiedFlagError: (e: UnsatisfiedFlagError) => {
    // The same error means "given without its value" (the flag, or its -x alias, came last or
    // right before another flag) and "required but not given".
    const last = args.at(-1) ?? "";
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

const app = await buildProgram(
  {
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
        return `queuectl: ${msg}; ${helpHint(args)}`;
      }
      return describe(e);
    },
    noCommandRegisteredForInput: ({ input, corrections }) => {
      const before = args.slice(0, Math.max(0, args.indexOf(input)));
      const what = input.startsWith("-") ? "flag" : "command";
      // Corrections are command names: none for a mistyped flag.
      const fixes = what === "flag" ? [] : corrections.map((c) => `"${c.replaceAll("`", "")}"`);
      return `queuectl: unknown ${what} "${input}"` +
        (fixes.length > 0 ? ` (did you mean ${orList(fixes)}?)` : "") +
        `; ${helpHint(before)}`;
    },
  },
  Deno.args,
  exitCodeOf,
);

const input = globalInput(app.root, Deno.args);
const args = input.args;
// Tables and help are formatted by format.ts, which a command that prints neither never loads.
if (input.noColor) (await import("./lib/cli/format.ts")).disableColor();

/** Help, and any output after it, held until format.ts is loaded to fit it. */
const held: string[] = [];
const proc = {
  // Help comes from the parser with columns as wide as its longest line: fit it in 80.
  stdout: {
    write: (s: string) => {
      if (held.length > 0 || s.startsWith("USAGE\n")) held.push(s);
      else writeAll(Deno.stdout, s);
    },
  },
  stderr,
  exitCode: undefined as number | string | null | undefined,
};
await run(app, args, { process: proc });
if (held.length > 0) {
  const { fitHelp } = await import("./lib/cli/format.ts");
  try {
    for (const s of held) writeAll(Deno.stdout, s.startsWith("USAGE\n") ? fitHelp(s) : s);
  } catch (e) {
    // A reader that went away (`queuectl --help | head -1`) got what it wanted.
    if (!(e instanceof Deno.errors.BrokenPipe)) throw e;
  }
}
// A group without its command printed its help: still a usage mistake, said in one line.
if (input.incomplete !== null && proc.exitCode === 0) {
  proc.stderr.write(`queuectl: ${input.incomplete}\n`);
}
const code = input.incomplete !== null && proc.exitCode === 0 ? 2 : Number(proc.exitCode ?? 0);
// Stricli's own codes are negative: unknown command (-5) and bad arguments (-4) are usage mistakes.
Deno.exit(code === -4 || code === -5 ? 2 : code < 0 ? 1 : code);
