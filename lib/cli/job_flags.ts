/**
 * The flags that describe a job (`--retries --priority --timeout --cwd --env --unique --queue`),
 * shared by `enqueue` and `schedule add`, which read them with `specFromFlags`. Plain data, no
 * imports: `enqueue` loads it at start-up.
 */

/** A string flag given at most once. */
function optional(brief: string, placeholder: string) {
  return { kind: "parsed", parse: String, brief, optional: true, placeholder } as const;
}

/** The job flags with their help text for `enqueue`; `schedule add` rewords a few. */
export const JOB_FLAGS = {
  retries: optional("Retries after the first attempt [config max-retries]", "n"),
  priority: optional("Higher runs first (default 0)", "n"),
  timeout: optional("Kill after this long (≤ 30d); 0 = none [config job-timeout]", "duration"),
  cwd: optional("Directory to run in (default: the current one)", "dir"),
  env: {
    ...optional("Extra environment variable NAME=VALUE (repeatable)", "NAME=VALUE"),
    variadic: true,
  },
  unique: optional("At most one waiting or running job with this key", "key"),
  queue: optional("Queue to wait in (default: default); see queuectl queue --help", "name"),
} as const;

/** What the job flags parse to. */
export interface JobFlagValues {
  retries?: string;
  priority?: string;
  timeout?: string;
  cwd?: string;
  env?: string[];
  unique?: string;
  queue?: string;
}
