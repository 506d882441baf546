/**
 * `queuectl completions bash|zsh|fish`: prints a shell completion script. Each script is a thin
 * shim that calls `queuectl __complete SHELL WORD…` on every TAB; that asks the parser itself
 * (`proposeCompletions` of @stricli/core), so commands and flags complete exactly as they parse,
 * and adds the ids of recent jobs where a command takes job ids. No store is written, and a
 * missing database is never created.
 */
import { buildCommand, type Command, type CommandContext, proposeCompletions } from "@stricli/core";
import { UsageError } from "../errors.ts";
import type { JobState } from "../job.ts";
import { writeAll } from "../write_all.ts";
import { type Context, dbFlag, type DbFlags } from "./context.ts";

const SHELLS = ["bash", "zsh", "fish"] as const;
type Shell = typeof SHELLS[number];

function parseShell(text: string): Shell {
  if ((SHELLS as readonly string[]).includes(text)) return text as Shell;
  throw new UsageError(`the shell must be bash, zsh or fish, got "${text}"`);
}

const SCRIPTS: Record<Shell, string> = {
  bash:
    `# queuectl completion for bash. Install: queuectl completions bash > ~/.local/share/bash-completion/completions/queuectl
_queuectl() {
  local IFS=$'\\n'
  COMPREPLY=($(queuectl __complete bash "\${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null))
}
complete -o default -F _queuectl queuectl
`,
  zsh: `#compdef queuectl
# queuectl completion for zsh. Install: queuectl completions zsh > "\${fpath[1]}/_queuectl"
_queuectl() {
  local -a proposals
  proposals=("\${(@f)$(queuectl __complete zsh "\${(@)words[2,CURRENT]}" 2>/dev/null)}")
  if [[ -n "\${proposals[1]}" ]]; then
    _describe -t queuectl queuectl proposals
  else
    _files
  fi
}
if [[ "\${funcstack[1]}" == _queuectl ]]; then
  _queuectl "$@"
else
  compdef _queuectl queuectl
fi
`,
  fish:
    `# queuectl completion for fish. Install: queuectl completions fish > ~/.config/fish/completions/queuectl.fish
function __queuectl_complete
    set -l words (commandline -opc) (commandline -ct)
    set -l proposals (queuectl __complete fish $words[2..-1] 2>/dev/null)
    if test (count $proposals) -eq 0
        __fish_complete_path (commandline -ct)
    else
        printf '%s\\n' $proposals
    end
end
complete -c queuectl -f -a '(__queuectl_complete)'
`,
};

// `--db` is taken, as by every command, and not needed: the script reads the store on each TAB.
function completions(this: Context, _flags: DbFlags, shell: Shell) {
  writeAll(Deno.stdout, SCRIPTS[shell]);
}

export const completionsCommand = buildCommand({
  func: completions,
  parameters: {
    flags: { ...dbFlag },
    positional: {
      kind: "tuple",
      parameters: [{
        parse: parseShell,
        brief: "bash, zsh or fish",
        placeholder: "shell",
        proposeCompletions: () => SHELLS,
      }],
    },
  },
  docs: {
    brief: "Print a shell completion script (bash, zsh, fish)",
    fullDescription: [
      "Completes commands, flags, the ids of recent jobs (show, logs, retry, cancel,",
      "remove, dlq retry), queue names (after --queue; queue pause, resume, set) and",
      "schedule names (schedule show, remove, pause, resume). The script calls queuectl",
      "on each TAB, so queuectl must be on PATH (deno task install puts it there).",
      "",
      "Examples:",
      "  queuectl completions bash > ~/.local/share/bash-completion/completions/queuectl",
      '  queuectl completions zsh > "${fpath[1]}/_queuectl"',
      "  queuectl completions fish > ~/.config/fish/completions/queuectl.fish",
      "  source <(queuectl completions bash)     # this shell only",
    ].join("\n"),
  },
});

/** Commands whose arguments are job ids, by their command words: the states they act on. */
const TAKES_JOB_IDS: Record<string, readonly JobState[] | undefined> = {
  show: undefined,
  logs: undefined,
  retry: ["failed", "dead", "cancelled"],
  cancel: ["pending", "failed", "processing"],
  remove: ["completed", "dead", "cancelled"],
  "dlq retry": ["dead"],
};
/** How many of the newest jobs' ids are proposed. */
const RECENT_IDS = 200;

/**
 * `queuectl __complete SHELL WORD…`: prints what may come in place of the last word (the one
 * being completed, maybe empty), one per line, in the SHELL's format. Never fails: a problem
 * (an unreadable store, a bad word) means fewer proposals, and exit 0.
 */
export async function completeMain(argv: string[]): Promise<number> {
  const shell = argv[0] as Shell;
  // The global flags, as main.ts reads them: `--no-color` anywhere, `--db PATH` before the
  // command; the parser would not know them there.
  const words = argv.slice(1).filter((w, i, all) => w !== "--no-color" || i === all.length - 1);
  let db: string | undefined;
  while (words.length > 1 && (words[0] === "--db" || words[0].startsWith("--db="))) {
    db = words[0] === "--db" ? words[1] : words[0].slice(5);
    words.splice(0, words[0] === "--db" ? 2 : 1);
  }
  // After the command too (not the word being completed).
  for (let i = 0; i < words.length - 1; i++) {
    if (words[i] === "--db" && i + 1 < words.length - 1) db = words[i + 1];
    else if (words[i].startsWith("--db=")) db = words[i].slice(5);
  }
  if (words.length === 0) words.push("");
  const { text_en } = await import("@stricli/core");
  const { buildProgram } = await import("./program.ts");
  // The whole tree: an empty input names no command.
  const app = await buildProgram(text_en, [], () => 1);
  const lines: string[] = [];
  const put = (word: string, brief: string) => {
    if (shell === "fish") lines.push(brief ? `${word}\t${brief}` : word);
    else if (shell === "zsh") lines.push(word.replaceAll(":", "\\:") + (brief ? `:${brief}` : ""));
    else lines.push(word);
  };
  try {
    for (const c of await proposeCompletions(app, words, { process: Deno } as never)) {
      put(c.completion, c.brief);
    }
  } catch {
    // An input the parser cannot read: nothing to propose from it.
  }
  try {
    for (const [word, what] of await storeWordsFor(app.root, words, db)) put(word, what);
  } catch {
    // No store, or not readable: no ids.
  }
  if (shell === "bash") {
    // bash shows what it is given: only the proposals that match the word.
    const partial = words.at(-1)!;
    writeAll(Deno.stdout, lines.filter((l) => l.startsWith(partial)).map((l) => l + "\n").join(""));
  } else {
    writeAll(Deno.stdout, lines.map((l) => l + "\n").join(""));
  }
  return 0;
}

type Target = Parameters<typeof proposeCompletions>[0]["root"];

/** Commands whose first argument is a queue name, or a schedule name. */
const TAKES_QUEUE = ["queue pause", "queue resume", "queue set"];
const TAKES_SCHEDULE = ["schedule show", "schedule remove", "schedule pause", "schedule resume"];

/**
 * Names from the store that start with the word being completed, with what they are: the ids of
 * the newest jobs where the command takes job ids; queue names after `--queue` and as the first
 * argument of `queue pause|resume|set`; schedule names as that of `schedule show|remove|pause|
 * resume`. None when the word before is another flag waiting for its value.
 */
async function storeWordsFor(
  root: Target,
  words: string[],
  db: string | undefined,
): Promise<Array<[string, string]>> {
  const partial = words.at(-1)!;
  if (partial.startsWith("-")) return [];
  let target: Target | Command<CommandContext> = root;
  const path: string[] = [];
  let i = 0;
  for (; i < words.length - 1; i++) {
    if (!("getRoutingTargetForInput" in target)) break;
    const next = target.getRoutingTargetForInput(words[i]);
    if (!next) return [];
    target = next;
    path.push(words[i]);
  }
  if ("getRoutingTargetForInput" in target) return [];
  const name = path.join(" ");
  const command = target as Command<CommandContext>;
  const flags = command.parameters.flags as Record<string, { kind: string }> | undefined;
  const prev = words.length - 2 >= i ? words[words.length - 2] : "";
  let want: "jobs" | "queues" | "schedules" | null = null;
  if (prev === "--queue" && flags?.queue) want = "queues";
  else if (prev.startsWith("--") && !prev.includes("=")) {
    const flagName = prev.slice(2).replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
    const flag = flags?.[flagName];
    if (flag && flag.kind !== "boolean") return []; // the word is that flag's value
  }
  if (prev === "--db") return [];
  // The first argument: the word being completed comes right after the command's words.
  const first = i === words.length - 1;
  if (want === null && Object.hasOwn(TAKES_JOB_IDS, name)) want = "jobs";
  if (want === null && first && TAKES_QUEUE.includes(name)) want = "queues";
  if (want === null && first && TAKES_SCHEDULE.includes(name)) want = "schedules";
  if (want === null) return [];
  const { openStore, resolveDbPath } = await import("../store/open.ts");
  const store = await openStore(resolveDbPath(db), { create: false });
  try {
    let found: Array<[string, string]>;
    if (want === "queues") {
      found = (await store.listQueues()).map((q) => [q.name, "queue"]);
    } else if (want === "schedules") {
      found = (await store.listSchedules()).map((x) => [x.name, "schedule"]);
    } else {
      const jobs = await store.listJobs({
        limit: RECENT_IDS,
        newestFirst: true,
        states: TAKES_JOB_IDS[name],
      });
      found = jobs.map((j) => [j.id, "job"]);
    }
    return found.filter(([w]) => w.startsWith(partial));
  } finally {
    await store.close();
  }
}
