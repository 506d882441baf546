/**
 * `deno task powercut --rounds N [--db sqlite|postgres] [--sync-off]`: cuts the power of a
 * virtual machine while it enqueues and runs jobs, N times, and checks what survived.
 *
 * The guest is a small Debian bookworm (build_image.sh, cached under ~/.cache/queuectl-powercut
 * by the hash of that script), booted by qemu straight into the kernel with deno and this
 * project on a second disk. Every boot runs guest.ts, which talks in "PC …" lines on the serial
 * console. A round: the guest enqueues in two loops (`PC ACK id` once `enqueue` exited 0) while
 * two workers run the jobs (each job writes `PC RAN id` to the serial line); 0.2–5 s after
 * `PC GO` the host SIGKILLs qemu, which loses the guest's memory, its page cache included, as a
 * power cut does; then it boots again and the guest reports, before anything writes: the
 * integrity check (`PRAGMA integrity_check`, or pg_amcheck), every job and its state. Then it
 * runs workers (lease 2 s) until nothing is pending, processing or waiting for a retry, and the
 * next round starts in the same boot.
 *
 * The root disk is `cache=none` (O_DIRECT on the host). What a SIGKILL of qemu destroys is the
 * guest's memory: its page cache, every write its kernel had not yet sent to the disk, which is
 * what fsync exists to push out. A write the guest did send survives on the host (on its disk
 * with cache=none; in its page cache with cache=writeback, which outlives qemu just as well), as
 * on a disk that honours flushes: the guest's fsync ends in a FLUSH that qemu turns into
 * fdatasync. So this models a power cut for everything the guest's kernel holds; it does not
 * model a disk that loses or reorders its own volatile cache. cache=none keeps the host's page
 * cache out of the way of reads after the reboot too.
 *
 * Counted, over all rounds:
 * - lost: acknowledged ids that were not in the database after a cut;
 * - corrupt: checks that were not "ok";
 * - stuck: jobs still pending or processing 20 s after the lease once workers ran again;
 * - ran_lost: jobs whose command had run (the host saw `PC RAN`) missing after a cut;
 * - completions_lost: jobs recorded completed on the disk (seen completed right after an earlier
 *   cut) that were no longer completed after a later one;
 * - not_completed: acknowledged jobs that the drain left in any state but completed;
 * - reran: jobs whose command ran more than once (a worker's completion lost to the cut: the
 *   README allows it, at-least-once).
 * The negative control (`--sync-off`) must lose acknowledged enqueues: its exit status is 0 only
 * when it did. It changes nothing in queuectl: SQLite enqueues run under eatmydata (an
 * LD_PRELOAD that turns fsync and fdatasync into no-ops, what `synchronous=OFF` does), and the
 * guest's PostgreSQL runs with `synchronous_commit=off` and `fsync=off`.
 *
 * Under TCG (no hardware KVM: a /dev/kvm from kvm_pvm cannot run a stock kernel) the guest runs
 * about ten times slower, so the cut window is stretched by POWERCUT_TCG_SLOWDOWN (10), as are
 * the lease (20 s) and the stuck limit. `--minutes M` runs rounds until M minutes have passed.
 */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const project = join(here, "..", "..");

function usage(msg: string): never {
  console.error(`powercut: ${msg}`);
  console.error(
    "usage: deno task powercut [--rounds N | --minutes M] [--db sqlite|postgres] [--sync-off] [--if-cached] [--if-kvm] [--keep]",
  );
  Deno.exit(2);
}

function parse(args: string[]) {
  const o = {
    rounds: 3,
    minutes: 0,
    db: "sqlite",
    syncOff: false,
    ifCached: false,
    ifKvm: false,
    keep: false,
  };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const value = () => {
      if (i + 1 >= args.length) usage(`${a} needs a value`);
      return args[++i];
    };
    if (a === "--rounds") {
      const n = value();
      if (!/^\d+$/.test(n) || Number(n) < 1) usage(`--rounds must be a positive integer, not ${n}`);
      o.rounds = Number(n);
    } else if (a === "--minutes") {
      const n = value();
      if (!/^\d+$/.test(n) || Number(n) < 1) {
        usage(`--minutes must be a positive integer, not ${n}`);
      }
      o.minutes = Number(n);
      o.rounds = Infinity;
    } else if (a === "--db") {
      o.db = value();
      if (o.db !== "sqlite" && o.db !== "postgres") {
        usage(`--db is sqlite or postgres, not ${o.db}`);
      }
    } else if (a === "--sync-off") o.syncOff = true;
    else if (a === "--if-cached") o.ifCached = true;
    else if (a === "--if-kvm") o.ifKvm = true;
    else if (a === "--keep") o.keep = true;
    else usage(`unknown argument ${a}`);
  }
  return o;
}

async function sh(cmd: string, args: string[], env: Record<string, string> = {}) {
  const out = await new Deno.Command(cmd, { args, env, stdout: "piped", stderr: "piped" }).output();
  if (out.code !== 0) {
    const td = new TextDecoder();
    throw new Error(`${cmd} ${args.join(" ")} failed (${out.code}):
${td.decode(out.stdout)}${td.decode(out.stderr)}`);
  }
  return new TextDecoder().decode(out.stdout);
}

async function sha(path: string): Promise<string> {
  const bytes = await Deno.readFile(path);
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(d.slice(0, 8), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** "r3a:1-5,7 r3b:2" → r3a1…r3a5, r3a7, r3b2. */
function expand(text: string): string[] {
  const ids: string[] = [];
  for (const group of text.trim().split(/\s+/)) {
    const m = /^(r\d+[ab]):(.+)$/.exec(group);
    if (!m) continue;
    for (const range of m[2].split(",")) {
      const [a, b] = range.split("-").map(Number);
      for (let n = a; n <= (b ?? a); n++) ids.push(`${m[1]}${n}`);
    }
  }
  return ids;
}

const opts = parse(Deno.args);
const cacheRoot = Deno.env.get("QUEUECTL_POWERCUT_CACHE") ??
  join(Deno.env.get("HOME") ?? "/root", ".cache", "queuectl-powercut");
const imageDir = join(cacheRoot, `image-${await sha(join(here, "build_image.sh"))}`);
const exists = (p: string) => {
  try {
    Deno.statSync(p);
    return true;
  } catch {
    return false;
  }
};

// KVM where the host has hardware virtualisation (kvm_intel, kvm_amd); a /dev/kvm served by
// kvm_pvm only runs guest kernels built for PVM, so a stock Debian kernel needs TCG there. Deno
// will not open a device file without --allow-all, so ask the shell.
const accel = Deno.env.get("POWERCUT_ACCEL") ?? ((await new Deno.Command("bash", {
    args: [
      "-c",
      "test -r /dev/kvm -a -w /dev/kvm -a -d /sys/module/kvm_intel -o -d /sys/module/kvm_amd",
    ],
  }).output()).code === 0
  ? "kvm"
  : "tcg");
const kvm = accel === "kvm";
if (opts.ifKvm && !kvm) {
  console.log("powercut: skipped: no hardware KVM (kvm_intel or kvm_amd) for the guest");
  Deno.exit(0);
}

if (!exists(join(imageDir, "done"))) {
  if (opts.ifCached) {
    console.log(
      `powercut: skipped: no guest image cached at ${imageDir} (deno task powercut builds it)`,
    );
    Deno.exit(0);
  }
  console.error(`powercut: building the guest image in ${imageDir} (debootstrap, a few minutes)`);
  const b = await new Deno.Command("bash", {
    args: [join(here, "build_image.sh"), imageDir],
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (b.code !== 0) {
    console.error(
      "powercut: the guest image could not be built (needs root, debootstrap, e2fsprogs)",
    );
    Deno.exit(1);
  }
}

// deno and the project on a second disk; the npm packages in a DENO_DIR cached by deno.lock.
const denoDir = join(cacheRoot, `deno_dir-${await sha(join(project, "deno.lock"))}`);
if (!exists(join(denoDir, "done"))) {
  await sh("deno", [
    "cache",
    "--frozen",
    "--config",
    join(project, "deno.json"),
    join(project, "main.ts"),
    join(project, "workers/worker.ts"),
    join(project, "workers/supervisor.ts"),
    join(here, "guest.ts"),
  ], { DENO_DIR: denoDir });
  await Deno.writeTextFile(join(denoDir, "done"), "");
}
await Deno.mkdir(join(cacheRoot, "runs"), { recursive: true });
const work = await Deno.makeTempDir({ dir: join(cacheRoot, "runs"), prefix: "run-" });
const stage = join(work, "stage");
await Deno.mkdir(join(stage, "bin"), { recursive: true });
await Deno.copyFile(Deno.execPath(), join(stage, "bin", "deno"));
await Deno.chmod(join(stage, "bin", "deno"), 0o755);
await sh("cp", ["-a", denoDir, join(stage, "deno_dir")]);
await Deno.mkdir(join(stage, "project", "tests"), { recursive: true });
for (const f of ["main.ts", "deno.json", "deno.lock", "lib", "workers"]) {
  await sh("cp", ["-a", join(project, f), join(stage, "project", f)]);
}
await sh("cp", ["-a", here, join(stage, "project", "tests", "powercut")]);
await sh("mkfs.ext4", ["-q", "-F", "-d", stage, join(work, "tools.img"), "1G"]);
await Deno.remove(stage, { recursive: true });
await sh("cp", ["--sparse=always", join(imageDir, "root.img"), join(work, "root.img")]);

// A power cut 0.2–5 s after the guest starts enqueueing (under KVM). TCG runs the guest about
// ten times slower, so there the window is stretched by POWERCUT_TCG_SLOWDOWN (default 10) to
// cut at the same points of the guest's work.
const slowdown = kvm ? 1 : Number(Deno.env.get("POWERCUT_TCG_SLOWDOWN") ?? "10");
const started0 = Date.now();
const timeline = await Deno.open(join(work, "timeline.log"), { create: true, append: true });

const consoleLog = await Deno.open(join(work, "console.log"), { create: true, append: true });
const enc = new TextEncoder();

interface Boot {
  lines: string[];
  seconds: number;
  cutAfterMs: number | null;
}

/** Boots the guest for round `k`, returns its "PC" lines; cuts the power `cut` ms after GO. */
async function boot(k: number, last: boolean): Promise<Boot> {
  const started = Date.now();
  const append = [
    "root=/dev/vda rw console=ttyS0 quiet loglevel=1 panic=-1 init=/sbin/powercut-init",
    `pc.db=${opts.db} pc.sync=${opts.syncOff ? "off" : "on"} pc.round=${k} pc.slow=${slowdown}`,
  ].join(" ");
  const child = new Deno.Command("qemu-system-x86_64", {
    args: [
      ...(kvm ? ["-enable-kvm"] : ["-accel", "tcg,thread=multi"]),
      "-m",
      "1536",
      "-smp",
      "2",
      "-nographic",
      "-monitor",
      "none",
      "-no-reboot",
      "-nic",
      "none",
      "-kernel",
      join(imageDir, "vmlinuz"),
      "-initrd",
      join(imageDir, "initrd.img"),
      "-append",
      append,
      "-drive",
      `file=${join(work, "root.img")},format=raw,if=virtio,cache=none`,
      "-drive",
      `file=${join(work, "tools.img")},format=raw,if=virtio,snapshot=on`,
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  await consoleLog.write(enc.encode(`\n===== boot ${k}\n`));
  const lines: string[] = [];
  let cutAfterMs: number | null = null;
  let killed = false;
  const kill = () => {
    if (killed) return;
    killed = true;
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
  };
  const watchdog = setTimeout(kill, (kvm ? 120 : 600) * 1000);
  let buf = "";
  const decoder = new TextDecoder();
  for await (const chunk of child.stdout) {
    await consoleLog.write(chunk);
    buf += decoder.decode(chunk, { stream: true });
    let nl;
    while ((nl = buf.indexOf("\n")) !== -1) {
      const line = buf.slice(0, nl).replace(/\r$/, "");
      buf = buf.slice(nl + 1);
      const at = line.indexOf("PC ");
      if (at === -1) continue;
      const msg = line.slice(at + 3);
      lines.push(msg);
      await timeline.write(enc.encode(`${Date.now() - started0} ${k} ${msg.slice(0, 80)}\n`));
      if (msg === "GO") {
        if (last) kill();
        else {
          cutAfterMs = Math.floor((200 + Math.random() * 4800) * slowdown);
          setTimeout(kill, cutAfterMs);
        }
      }
      if (msg.startsWith("FATAL") || msg.startsWith("EXIT")) kill();
    }
  }
  clearTimeout(watchdog);
  await child.status;
  const err = new TextDecoder().decode(await new Response(child.stderr).arrayBuffer());
  if (err.trim()) await consoleLog.write(enc.encode(`[qemu stderr] ${err}`));
  return { lines, seconds: (Date.now() - started) / 1000, cutAfterMs };
}

const acked = new Set<string>();
let ackedBefore = 0;
const ran = new Map<string, number>();
const recordedCompleted = new Set<string>();
const lostIds = new Set<string>();
const ranLostIds = new Set<string>();
const completionsLostIds = new Set<string>();
let corrupt = 0;
let stuck = 0;
let notCompleted = 0;
const problems: string[] = [];
const roundSeconds: number[] = [];

for (let k = 0; k <= opts.rounds; k++) {
  // The last boot only checks the last cut: after N rounds, or once --minutes have passed.
  const last = k === opts.rounds ||
    opts.minutes > 0 && Date.now() - started0 > opts.minutes * 60_000;
  const b = await boot(k, last);
  if (k > 0) roundSeconds.push(b.seconds);
  const present = new Set<string>();
  const completedNow = new Set<string>();
  const final = new Map<string, string>();
  let listed = false;
  let drained = false;
  let went = false;
  let reset = false;
  /** Runs at GO, before this boot's own ACK and RAN lines: what survived the cut? */
  const check = () => {
    for (const id of acked) {
      if (lostIds.has(id)) continue;
      if (!present.has(id)) lostIds.add(id);
      else if (final.get(id) !== "completed") {
        notCompleted++;
        problems.push(`round ${k}: ${id} is ${final.get(id)} after the drain`);
      }
    }
    for (const id of ran.keys()) if (!present.has(id)) ranLostIds.add(id);
    for (const id of recordedCompleted) if (!completedNow.has(id)) completionsLostIds.add(id);
    for (const id of completedNow) recordedCompleted.add(id);
    if (reset) {
      // The guest moved the failed database aside: what was acknowledged so far has been judged.
      ackedBefore += acked.size;
      acked.clear();
      ran.clear();
      recordedCompleted.clear();
    }
  };
  for (const line of b.lines) {
    const [kind, ...rest] = line.split(" ");
    const ids = () => expand(rest.slice(1).join(" "));
    if (kind === "INTEGRITY" && rest.join(" ") !== "ok") {
      corrupt++;
      problems.push(`round ${k}: integrity: ${rest.join(" ")}`);
    } else if (kind === "STATE") {
      for (const id of ids()) {
        present.add(id);
        if (rest[0] === "completed") completedNow.add(id);
      }
    } else if (kind === "LISTED") listed = true;
    else if (kind === "RESET") reset = true;
    else if (kind === "UNREADABLE") problems.push(`round ${k}: ${line}`);
    else if (kind === "DRAINED") drained = true;
    else if (kind === "STUCK") {
      drained = true;
      stuck += Number(rest[0]);
      problems.push(`round ${k}: stuck after the lease: ${rest.slice(1).join(" ")}`);
    } else if (kind === "FINAL") {
      for (const id of ids()) final.set(id, rest[0]);
    } else if (kind === "GO") {
      went = true;
      if (k > 0 && listed && drained) check();
    } else if (kind === "ACK") acked.add(rest[0]);
    else if (kind === "RAN") ran.set(rest[0], (ran.get(rest[0]) ?? 0) + 1);
    else if (kind === "FATAL" || kind === "ERR" || kind === "EXIT") {
      problems.push(`round ${k}: ${line}`);
    }
  }
  if (k > 0 ? !(listed && drained && went) : !went) {
    console.error(
      `powercut: boot ${k} did not finish its checks; console: ${join(work, "console.log")}`,
    );
    problems.push(`round ${k}: boot did not finish its checks`);
    break;
  }
  if (Deno.env.get("POWERCUT_VERBOSE")) {
    console.error(
      `round ${k}: ${
        b.seconds.toFixed(1)
      } s, cut ${b.cutAfterMs} ms after GO, acked ${acked.size}, lost ${lostIds.size}`,
    );
  }
  if (last) break;
}
consoleLog.close();

const reran = [...ran.values()].filter((n) => n > 1).length;
const lost = lostIds.size;
// A round is one cut: the wall time of all boots over the number of cuts.
const mean = (Date.now() - started0) / 1000 / Math.max(1, roundSeconds.length);
console.log(
  `rounds=${roundSeconds.length} acked=${
    ackedBefore + acked.size
  } lost=${lost} corrupt=${corrupt} stuck=${stuck}`,
);
console.log(
  `db=${opts.db}${opts.syncOff ? " sync=off" : ""} ${
    kvm ? "kvm" : "tcg"
  } ran=${ran.size} reran=${reran} ran_lost=${ranLostIds.size} completions_lost=${completionsLostIds.size} not_completed=${notCompleted} round_s=${
    mean.toFixed(1)
  }`,
);
for (const p of problems.slice(0, 20)) console.log(`  ${p}`);
if (lost > 0) console.log(`  lost: ${[...lostIds].slice(0, 20).join(" ")}`);
if (completionsLostIds.size > 0) {
  console.log(`  completions lost: ${[...completionsLostIds].slice(0, 20).join(" ")}`);
}

const bad = corrupt + stuck + notCompleted + ranLostIds.size + completionsLostIds.size +
  (problems.some((p) => p.includes("did not finish")) ? 1 : 0);
let ok: boolean;
if (opts.syncOff) {
  ok = lost > 0;
  console.log(
    ok
      ? `negative control: ${lost} acknowledged enqueues lost without fsync (the test is sensitive)`
      : "negative control FAILED: nothing was lost without fsync, so the test proves nothing",
  );
} else ok = lost === 0 && bad === 0;
if (ok && !opts.keep) await Deno.remove(work, { recursive: true });
else console.log(`  work dir kept: ${work}`);
Deno.exit(ok ? 0 : 1);
