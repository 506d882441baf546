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

/**
 * `deno run` reads and hashes every module a static `import("…")` names before the program starts
 * (the whole CLI, the worker, the dashboard and `npm:postgres` for one `enqueue`); with this flag
 * it loads each when it is imported, under the process's own read permission. `deno compile` must
 * not get it: it would leave those modules out of the binary.
 */
export const LAZY_IMPORTS = "--unstable-lazy-dynamic-imports";

/** Whether queuectl runs as `deno run … main.ts` rather than as a compiled binary. */
export function underDeno(): boolean {
  return /^deno(\.exe)?$/i.test(basename(Deno.execPath()));
}

/**
 * The command line that runs queuectl's entry point with `args`: under `deno run`, with exactly
 * `permissions` and the project's deno.json (import map, lock file) when there is one; a compiled
 * binary runs itself, with the permissions it was built with. `projectDir` is where that
 * deno.json lives. Modules load as they are imported when `permissions` let the process read
 * them (unscoped `--allow-read`); otherwise (a worker, which may read its data directory alone)
 * all of them load before the program starts.
 */
export function selfCommand(args: string[], permissions: string[]) {
  const exec = Deno.execPath();
  if (!underDeno()) return { exec, args, projectDir: undefined };
  const main = Deno.mainModule;
  const pre = [
    "run",
    "--quiet",
    "--no-prompt",
    ...(permissions.includes("--allow-read") ? [LAZY_IMPORTS] : []),
    ...permissions,
  ];
  let projectDir: string | undefined;
  if (main.startsWith("file:")) {
    projectDir = dirname(fileURLToPath(main));
    try {
      Deno.statSync(join(projectDir, "deno.json"));
      pre.push("--config", join(projectDir, "deno.json"));
    } catch {
      // Installed without a config file: the module graph resolves on its own.
    }
  }
  return { exec, args: [...pre, main, ...args], projectDir };
}

/** The command line that runs `queuectl ARGS` again, under `deno run` or as a compiled binary. */
export function queuectlCommand(args: string[], extraPermissions: string[] = []) {
  const { exec, args: all } = selfCommand(args, [...CLI_PERMISSIONS, ...extraPermissions]);
  return { exec, args: all };
}
