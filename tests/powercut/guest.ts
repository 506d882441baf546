/**
 * Runs inside the power-cut guest at every boot (see init.sh) and speaks to the host in lines
 * starting with "PC " on the serial console:
 *
 * - after a cut (round > 0): `PC INTEGRITY ok|…`, then `PC STATE <state> <ids>` for every job as
 *   recovered from the disk, before anything else writes;
 * - starts workers (lease 2 s, × pc.slow) and waits until no job is pending, processing or waiting for a
 *   retry: `PC DRAINED <ms>`, or `PC STUCK <n> <ids>` after the lease plus 20 s (× pc.slow); then
 *   `PC FINAL <state> <ids>`;
 * - `PC GO`, then two loops enqueue jobs until the host cuts the power: `PC ACK <id>` once an
 *   `enqueue` exited 0. Each job's command writes `PC RAN <id>` to the serial line itself.
 *
 * With pc.sync=off (the negative control) SQLite enqueues run under eatmydata, which turns every
 * fsync into a no-op: SQLite's `synchronous=OFF` without a switch in queuectl.
 * Ids are written as `r<round><loop>:<ranges>` groups to keep the lines short.
 */
const db = Deno.env.get("PC_db") ?? "sqlite";
const syncOff = Deno.env.get("PC_sync") === "off";
const round = Number(Deno.env.get("PC_round") ?? "0");
/** How many times slower than under KVM the guest runs (10 under TCG): stretches the waits. */
const slow = Number(Deno.env.get("PC_slow") ?? "1");
const location = db === "postgres" ? "postgres://postgres@127.0.0.1:5432/test" : "/data/queue.db";
/** 2 s, the shortest lease queuectl takes, so a cut job is rescued soon (longer under TCG). */
const LEASE = `${2 * slow}s`;
const enc = new TextEncoder();

function say(line: string) {
  const bytes = enc.encode(`PC ${line}\n`);
  let off = 0;
  while (off < bytes.length) off += Deno.stdout.writeSync(bytes.subarray(off));
}

const env = {
  QUEUECTL_DB: location,
  QUEUECTL_LEASE_TIMEOUT: LEASE,
  QUEUECTL_BACKOFF_BASE: "1",
  NO_COLOR: "1",
};
const QUEUECTL = [
  "run",
  "--quiet",
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-run",
  "--allow-sys=hostname",
  "--allow-net=127.0.0.1:5432",
  "main.ts",
];

async function run(cmd: string, args: string[], extraEnv: Record<string, string> = {}) {
  const out = await new Deno.Command(cmd, {
    args,
    env: { ...env, ...extraEnv },
    stdout: "piped",
    stderr: "piped",
  }).output();
  return {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
}

/** `r3a:1-5,7 r3b:1-4` for ids r3a1…r3a5, r3a7, r3b1…r3b4. */
function compress(ids: string[]): string {
  const groups = new Map<string, number[]>();
  for (const id of ids) {
    const m = /^(r\d+[ab])(\d+)$/.exec(id);
    if (!m) continue;
    const list = groups.get(m[1]) ?? [];
    list.push(Number(m[2]));
    groups.set(m[1], list);
  }
  const parts: string[] = [];
  for (const [prefix, nums] of groups) {
    nums.sort((a, b) => a - b);
    const ranges: string[] = [];
    for (let i = 0; i < nums.length;) {
      let j = i;
      while (j + 1 < nums.length && nums[j + 1] === nums[j] + 1) j++;
      ranges.push(i === j ? `${nums[i]}` : `${nums[i]}-${nums[j]}`);
      i = j + 1;
    }
    parts.push(`${prefix}:${ranges.join(",")}`);
  }
  return parts.join(" ");
}

/**
 * Every job's state, read straight from the store (node:sqlite, or psql), not through queuectl,
 * so a check costs no deno start-up; an empty map before the first job was stored.
 */
async function states(): Promise<Map<string, string[]>> {
  let rows: { id: string; state: string }[] = [];
  if (db === "postgres") {
    const r = await run("psql", [
      "-U",
      "postgres",
      "-h",
      "127.0.0.1",
      "-d",
      "test",
      "-qAtF",
      " ",
      "-c",
      "SELECT id, state FROM queuectl.jobs",
    ]);
    if (r.code !== 0 && !r.stderr.includes("does not exist")) {
      throw new Error(`psql failed: ${r.stderr.trim()}`);
    }
    rows = r.stdout.split("\n").filter((l) => l).map((l) => {
      const [id, state] = l.split(" ");
      return { id, state };
    });
  } else if (exists(location)) {
    const { DatabaseSync } = await import("node:sqlite");
    const conn = new DatabaseSync(location);
    try {
      const t = conn.prepare("SELECT name FROM sqlite_master WHERE name = 'jobs'").get();
      if (t) rows = conn.prepare("SELECT id, state FROM jobs").all() as typeof rows;
    } finally {
      conn.close();
    }
  }
  const byState = new Map<string, string[]>();
  for (const job of rows) {
    const list = byState.get(job.state) ?? [];
    list.push(job.id);
    byState.set(job.state, list);
  }
  return byState;
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

async function integrity(): Promise<string> {
  if (db === "postgres") {
    const r = await run("pg_amcheck", ["-U", "postgres", "-h", "127.0.0.1", "test"]);
    return r.code === 0 ? "ok" : `pg_amcheck exit ${r.code}: ${(r.stdout + r.stderr).trim()}`;
  }
  if (!exists(location)) return "ok";
  const { DatabaseSync } = await import("node:sqlite");
  try {
    const conn = new DatabaseSync(location);
    try {
      const rows = conn.prepare("PRAGMA integrity_check").all() as { integrity_check: string }[];
      return rows.map((r) => r.integrity_check).join("; ");
    } finally {
      conn.close();
    }
  } catch (e) {
    return `error: ${e instanceof Error ? e.message : e}`;
  }
}

/**
 * A database that failed its check is moved aside (SQLite), so the next rounds start afresh:
 * `PC RESET` tells the host to count what it had acknowledged as checked.
 */
async function reset() {
  if (db !== "sqlite") return;
  for (const suffix of ["", "-wal", "-shm"]) {
    if (exists(location + suffix)) {
      await Deno.rename(location + suffix, `/data/corrupt-${round}.db${suffix}`);
    }
  }
  say("RESET");
}

async function setup() {
  if (db !== "postgres") {
    await Deno.mkdir("/data", { recursive: true });
    return;
  }
  const psql = (sql: string, dbname = "postgres") =>
    run("psql", ["-U", "postgres", "-h", "127.0.0.1", "-d", dbname, "-qAtc", sql]);
  await psql("CREATE DATABASE test");
  const r = await psql("CREATE EXTENSION IF NOT EXISTS amcheck", "test");
  if (r.code !== 0) say(`FATAL amcheck: ${r.stderr.trim()}`);
  const s = await psql("SELECT current_setting('fsync'), current_setting('synchronous_commit')");
  say(`INFO postgres fsync,synchronous_commit=${s.stdout.trim()}`);
}

async function main() {
  if (round === 0) await setup();
  else {
    const check = await integrity();
    say(`INTEGRITY ${check}`);
    try {
      for (const [state, ids] of await states()) say(`STATE ${state} ${compress(ids)}`);
    } catch (e) {
      say(`UNREADABLE ${e instanceof Error ? e.message : e}`);
    }
    say("LISTED");
    if (check !== "ok") await reset();
  }
  await Deno.mkdir("/tmp/w", { recursive: true });
  const workers = new Deno.Command(Deno.execPath(), {
    args: [...QUEUECTL, "worker", "start", "--count", "2"],
    env,
    stdout: "null",
    stderr: "null",
  }).spawn();
  if (round > 0) {
    const start = Date.now();
    const limit = (2_000 + 20_000) * slow;
    let open: string[] = [];
    while (true) {
      const byState = await states();
      open = ["pending", "processing", "failed"].flatMap((s) => byState.get(s) ?? []);
      if (open.length === 0) {
        say(`DRAINED ${Date.now() - start}`);
        break;
      }
      if (Date.now() - start > limit) {
        say(`STUCK ${open.length} ${compress(open)}`);
        break;
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    for (const [state, ids] of await states()) say(`FINAL ${state} ${compress(ids)}`);
  }
  say("GO");
  const loop = async (name: string) => {
    for (let i = 1;; i++) {
      const id = `r${round}${name}${i}`;
      const args = [
        ...QUEUECTL,
        "enqueue",
        "--id",
        id,
        "--",
        'echo "PC RAN $QUEUECTL_JOB_ID" >/dev/ttyS0',
      ];
      const r = syncOff && db === "sqlite"
        ? await run("eatmydata", [Deno.execPath(), ...args])
        : await run(Deno.execPath(), args);
      if (r.code === 0) say(`ACK ${id}`);
      else say(`ERR ${id} ${r.code} ${r.stderr.trim()}`);
    }
  };
  await Promise.all([loop("a"), loop("b"), workers.status]);
}

await main();
