/**
 * What a queuectl call costs at start-up, next to the parsers it could have been built on.
 *
 * Each round runs every case once, in an order rotated from round to round, so that each case is
 * paired with a `deno run` of an empty script (the floor) taken moments apart on the same, possibly
 * busy, machine. A case's figure is its median wall time and the median of its per-round ratios to
 * the floor. The whole run is repeated (`--repeat`, default 3) and the medians of the runs' figures
 * are reported, with each run's figure beside them.
 *
 * Cases: the floor; the real CLI (`main.ts --version`, and `main.ts enqueue` into a temp database
 * made with `main.ts init`); and fixtures in `bench/parsers/` that define queuectl's command tree
 * with each parser and only parse `enqueue --id x '{}'` and print the result (no SQLite). Fixtures
 * pin their npm versions in their own imports. Like the CLI they run with a lock file, but with a
 * temp copy of `deno.lock` (`--lock=`), so their packages never reach the project's lock.
 *
 *   deno run --quiet --allow-read --allow-write --allow-env --allow-run --allow-sys=hostname \
 *     bench/parsers.ts [--rounds 30] [--repeat 3] [--json]
 *
 * Progress goes to stderr; stdout holds the markdown table (or JSON with `--json`).
 */

const ROOT = new URL("..", import.meta.url).pathname;
/** The permissions the real CLI runs with; every case gets the same ones. */
const RUN_FLAGS = [
  "run",
  "--quiet",
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-run",
  "--allow-sys=hostname",
];

interface Case {
  name: string;
  /** Arguments after `deno`. */
  args: string[];
  /** Checks a run's stdout; a case that prints something else is not measured. */
  expect: RegExp;
}

/** The cases, in table order; the floor comes first. `lock` is the fixtures' lock file. */
function cases(lock: string): Case[] {
  const fixture = (name: string, file: string): Case => ({
    name,
    args: [...RUN_FLAGS, `--lock=${lock}`, `bench/parsers/${file}`, "enqueue", "--id", "x", "{}"],
    expect: /^\{"command":"enqueue","flags":\{.*"id":"x".*\},"args":\["\{\}"\]\}\n$/,
  });
  return [
    { name: "empty script (floor)", args: [...RUN_FLAGS, "bench/parsers/empty.ts"], expect: /^$/ },
    {
      name: "queuectl --version",
      args: [...RUN_FLAGS, "main.ts", "--version"],
      expect: /^\d+\.\d+\.\d+\n$/,
    },
    {
      name: `queuectl enqueue '{"command":"true"}'`,
      args: [...RUN_FLAGS, "main.ts", "enqueue", '{"command":"true"}'],
      expect: /^enqueued \S+\n$/,
    },
    fixture("fixture: @stricli/core 1.3.0", "stricli.ts"),
    fixture("fixture: commander 14.0.3 + extra-typings 14.0.0", "commander.ts"),
    fixture("fixture: citty 0.2.2", "citty.ts"),
    fixture("fixture: @optique/core 1.3.6", "optique.ts"),
  ];
}

// ---- options ----

function parseOptions(argv: string[]) {
  const opts = { rounds: 30, repeat: 3, json: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const count = (min: number) => {
      const n = Number(argv[++i]);
      if (!Number.isInteger(n) || n < min) {
        throw new Error(`${a} takes an integer of at least ${min}, got "${argv[i] ?? ""}"`);
      }
      return n;
    };
    if (a === "--rounds") opts.rounds = count(3);
    else if (a === "--repeat") opts.repeat = count(1);
    else if (a === "--json") opts.json = true;
    else throw new Error(`unknown argument "${a}"; use --rounds N, --repeat N, --json`);
  }
  return opts;
}

// ---- measuring ----

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function progress(msg: string) {
  Deno.stderr.writeSync(new TextEncoder().encode(`bench: ${msg}\n`));
}

const decoder = new TextDecoder();

/** Runs one case once; returns its wall time in ms, from spawn to exit. */
async function runOnce(c: Case, env: Record<string, string>): Promise<number> {
  const cmd = new Deno.Command(Deno.execPath(), {
    args: c.args,
    cwd: ROOT,
    env,
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
  const t0 = performance.now();
  const out = await cmd.output();
  const ms = performance.now() - t0;
  const stdout = decoder.decode(out.stdout);
  if (!out.success || !c.expect.test(stdout)) {
    throw new Error(
      `${c.name} failed (exit ${out.code}):\n${stdout}${decoder.decode(out.stderr)}`,
    );
  }
  return ms;
}

interface RunFigures {
  /** Median wall time per case, ms. */
  wall: number[];
  /** Median of the per-round ratios to the floor, per case. */
  ratio: number[];
}

/** One whole run: `rounds` rounds of every case, order rotated each round. */
async function measureRun(
  all: Case[],
  rounds: number,
  env: Record<string, string>,
): Promise<RunFigures> {
  const times = all.map(() => [] as number[]);
  for (let r = 0; r < rounds; r++) {
    for (let k = 0; k < all.length; k++) {
      const i = (k + r) % all.length;
      times[i].push(await runOnce(all[i], env));
    }
  }
  const floor = times[0];
  return {
    wall: times.map(median),
    ratio: times.map((ts) => median(ts.map((t, r) => t / floor[r]))),
  };
}

// ---- main ----

const opts = parseOptions(Deno.args);
const dir = await Deno.makeTempDir({ prefix: "queuectl-bench-parsers-" });
try {
  // The children see this environment only: no QUEUECTL_* from the caller, a fresh database.
  const env = Object.fromEntries(
    Object.entries(Deno.env.toObject()).filter(([k]) => !k.startsWith("QUEUECTL_")),
  );
  env.QUEUECTL_DB = `${dir}/queue.db`;
  env.NO_COLOR = "1";
  await Deno.copyFile(`${ROOT}deno.lock`, `${dir}/deno.lock`);
  const CASES = cases(`${dir}/deno.lock`);

  await runOnce({
    name: "queuectl init",
    args: [...RUN_FLAGS, "main.ts", "init"],
    expect: /^database ready/,
  }, env);
  // Warm-up, unmeasured: fills Deno's module, npm and code caches and checks every case's output.
  for (const c of CASES) {
    for (let i = 0; i < 3; i++) await runOnce(c, env);
  }

  const runs: RunFigures[] = [];
  for (let n = 1; n <= opts.repeat; n++) {
    progress(`run ${n}/${opts.repeat}: ${opts.rounds} rounds of ${CASES.length} cases`);
    const run = await measureRun(CASES, opts.rounds, env);
    runs.push(run);
    progress(
      `run ${n}: floor ${run.wall[0].toFixed(1)} ms; ` +
        CASES.slice(1).map((c, i) => `${c.name} ×${run.ratio[i + 1].toFixed(2)}`).join(", "),
    );
  }

  const rows = CASES.map((c, i) => ({
    case: c.name,
    command: `deno ${c.args.join(" ")}`,
    wallMs: median(runs.map((r) => r.wall[i])),
    ratio: median(runs.map((r) => r.ratio[i])),
    runs: runs.map((r) => ({ wallMs: r.wall[i], ratio: r.ratio[i] })),
  }));

  if (opts.json) {
    console.log(JSON.stringify({ deno: Deno.version.deno, ...opts, cases: rows }, null, 2));
  } else {
    console.log(
      `Start-up wall time, deno ${Deno.version.deno}: ${opts.repeat} run(s) × ${opts.rounds} ` +
        `paired rounds; medians of the runs' medians (each run's figure in brackets).\n`,
    );
    console.log("| case | wall ms | ÷ empty | per run (ms; ÷ empty) |");
    console.log("|---|---:|---:|---|");
    for (const r of rows) {
      const per = r.runs.map((x) => `${x.wallMs.toFixed(1)}; ${x.ratio.toFixed(2)}`).join(" / ");
      console.log(`| ${r.case} | ${r.wallMs.toFixed(1)} | ${r.ratio.toFixed(2)} | ${per} |`);
    }
  }
} finally {
  await Deno.remove(dir, { recursive: true });
}
