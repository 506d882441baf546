/**
 * How queuectl runs itself again: under `deno run` (with the permissions of the deno.json tasks,
 * plus any asked for) or as a compiled binary (whose permissions were fixed when it was built).
 * Used for `worker start --detach` and to gain `--allow-net` for a PostgreSQL server.
 */
import { basename, dirname, join } from "./paths.ts";
import { fileURLToPath } from "node:url";

/** The permissions of `queuectl` itself (as the deno.json tasks grant them). */
const CLI_PERMISSIONS = [
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-run",
  "--allow-sys=hostname",
];

/** The command line that runs `queuectl ARGS` again, under `deno run` or as a compiled binary. */
export function queuectlCommand(args: string[], extraPermissions: string[] = []) {
  const exec = Deno.execPath();
  if (!/^deno(\.exe)?$/i.test(basename(exec))) return { exec, args };
  const main = Deno.mainModule;
  const pre = ["run", "--quiet", "--no-prompt", ...CLI_PERMISSIONS, ...extraPermissions];
  if (main.startsWith("file:")) {
    const config = join(dirname(fileURLToPath(main)), "deno.json");
    try {
      Deno.statSync(config);
      pre.push("--config", config);
    } catch {
      // Installed without a config file: the module graph resolves on its own.
    }
  }
  return { exec, args: [...pre, main, ...args] };
}
