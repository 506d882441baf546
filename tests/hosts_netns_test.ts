/**
 * Two real hosts on one PostgreSQL server: each host is a network namespace of its own (veth to
 * this one), running its own supervisor against a private server that this test starts and that
 * listens only on the veth network. Mid-drain, one host's link is cut: the other host rescues its
 * jobs after the lease; when the link comes back, the cut host's late results are refused by the
 * guard. Every job ends completed once. Needs root (namespaces) and Debian's PostgreSQL server
 * binaries; elsewhere it says so and is ignored.
 */
import assert from "node:assert/strict";
import { cliOk, MAIN, PERMS, waitFor } from "./helpers.ts";

const PG_BIN = (() => {
  for (const v of ["17", "16", "15", "14"]) {
    try {
      Deno.statSync(`/usr/lib/postgresql/${v}/bin/initdb`);
      return `/usr/lib/postgresql/${v}/bin`;
    } catch { /* next */ }
  }
  return null;
})();

async function sh(script: string, opts: { check?: boolean } = {}): Promise<string> {
  const out = await new Deno.Command("sh", {
    args: ["-c", script],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  if ((opts.check ?? true) && !out.success) throw new Error(`${script}\n${text}`);
  return text;
}

const canRun = (await sh("id -u", { check: false })).trim() === "0" && PG_BIN !== null &&
  await sh("ip netns add qprobe$$ && ip netns del qprobe$$", { check: false }).then(
    (t) => t.trim() === "",
  );

interface Host {
  ns: string;
  link: string;
  url: string;
  process: Deno.ChildProcess;
  log: () => string;
}

Deno.test({
  name: `hosts: two hosts in network namespaces, one cut off mid-drain → every job completed once${
    canRun ? "" : " (skipped: needs root, ip netns and PostgreSQL's server binaries)"
  }`,
  ignore: !canRun,
  async fn() {
    const id = crypto.getRandomValues(new Uint16Array(1))[0].toString(16).padStart(4, "0");
    const net = 16 + (crypto.getRandomValues(new Uint8Array(1))[0] % 200);
    const port = 20000 + (crypto.getRandomValues(new Uint16Array(1))[0] % 20000);
    const dir = await Deno.makeTempDir({ prefix: "queuectl-hosts-" });
    const hosts = [
      {
        ns: `qa${id}`,
        link: `qva${id}`,
        peer: `qvan${id}`,
        root: `10.213.${net}.1`,
        addr: `10.213.${net}.2`,
      },
      {
        ns: `qb${id}`,
        link: `qvb${id}`,
        peer: `qvbn${id}`,
        root: `10.213.${net}.5`,
        addr: `10.213.${net}.6`,
      },
    ];
    const started: Host[] = [];
    try {
      for (const h of hosts) {
        await sh(
          `set -e; ip netns add ${h.ns}; ip link add ${h.link} type veth peer name ${h.peer}; ` +
            `ip link set ${h.peer} netns ${h.ns}; ip addr add ${h.root}/30 dev ${h.link}; ` +
            `ip link set ${h.link} up; ip netns exec ${h.ns} ip addr add ${h.addr}/30 dev ${h.peer}; ` +
            `ip netns exec ${h.ns} ip link set ${h.peer} up; ip netns exec ${h.ns} ip link set lo up`,
        );
      }
      // A private server, listening on the two veth addresses only.
      await sh(
        `set -e; chown postgres ${dir}; ` +
          `runuser -u postgres -- ${PG_BIN}/initdb -D ${dir}/data -A trust -U postgres ` +
          `--no-sync -E UTF8 >/dev/null; ` +
          `echo "host all all 10.213.0.0/16 trust" >> ${dir}/data/pg_hba.conf; ` +
          `runuser -u postgres -- ${PG_BIN}/pg_ctl -D ${dir}/data -l ${dir}/server.log -w ` +
          `-o "-p ${port} -k ${dir} -c fsync=off -c listen_addresses='${hosts[0].root},${
            hosts[1].root
          }'" start >/dev/null`,
      );
      const urlOf = (ip: string) => `postgres://postgres@${ip}:${port}/postgres?schema=q`;
      const admin = urlOf(hosts[0].root);
      await cliOk(admin, ["config", "set", "lease-timeout", "3s"]);
      await cliOk(admin, ["config", "set", "backoff-base", "0"]);
      const N = 60;
      await cliOk(admin, ["enqueue", "--file", "-"], {
        stdin: Array.from(
          { length: N },
          (_, i) => JSON.stringify({ id: `j${i}`, command: "sleep 1; echo $QUEUECTL_JOB_ID" }),
        ).join(
          "\n",
        ),
      });
      for (const [i, h] of hosts.entries()) {
        const url = urlOf(h.root);
        let text = "";
        const process = new Deno.Command("ip", {
          args: [
            "netns",
            "exec",
            h.ns,
            Deno.execPath(),
            "run",
            "--quiet",
            ...PERMS,
            `--allow-net=${h.root}:${port}`,
            MAIN,
            "worker",
            "start",
            "--count",
            "2",
          ],
          env: { QUEUECTL_DB: url, QUEUECTL_HOST: `host-${"ab"[i]}`, NO_COLOR: "1" },
          stdin: "null",
          stdout: "piped",
          stderr: "piped",
        }).spawn();
        const dec = new TextDecoder();
        const pump = async (s: ReadableStream<Uint8Array>) => {
          for await (const c of s) text += dec.decode(c, { stream: true });
        };
        pump(process.stdout);
        pump(process.stderr);
        started.push({ ns: h.ns, link: h.link, url, process, log: () => text });
      }
      const jobs = async () =>
        JSON.parse(await cliOk(admin, ["list", "--all", "--json"])) as Array<
          { id: string; state: string; worker: string | null }
        >;
      // Mid-drain, with host a running jobs: cut host a off.
      await waitFor(async () => {
        const js = await jobs();
        return js.filter((j) => j.state === "completed").length >= 10 &&
          js.some((j) => j.state === "processing" && j.worker?.startsWith("host-a"));
      }, { timeoutMs: 60_000, what: "host a running jobs mid-drain" }).catch((e) => {
        throw new Error(`${e.message}\n${started.map((h) => h.log()).join("\n")}`);
      });
      await sh(`ip link set ${hosts[0].link} down`);
      await waitFor(async () => (await jobs()).every((j) => j.state === "completed"), {
        timeoutMs: 120_000,
        intervalMs: 250,
        what: "host b to finish every job, host a's included",
      });
      // The link comes back: host a reports its late results, which the guard refuses.
      await sh(`ip link set ${hosts[0].link} up`);
      await waitFor(() => /job\.lost/.test(started[0].log()), {
        timeoutMs: 60_000,
        what: "host a's late results refused",
      });
      for (const h of started) h.process.kill("SIGTERM");
      for (const h of started) await h.process.status;

      // Read through the CLI: every job, each attempt's outcome.
      const final = await jobs();
      const outcomes = await Promise.all(
        final.map(async (j) =>
          (JSON.parse(await cliOk(admin, ["show", j.id, "--json"])).attempt_history as Array<
            { outcome: string }
          >).map((a) => a.outcome)
        ),
      );
      const summary = {
        jobs: final.length,
        not_completed: final.filter((j) => j.state !== "completed").length,
        completed_twice: outcomes.filter((o) => o.filter((x) => x === "completed").length > 1)
          .length,
        extra_runs: outcomes.reduce((n, o) => n + o.length - 1, 0),
        rescued: outcomes.reduce((n, o) => n + o.filter((x) => x === "worker_lost").length, 0),
      };
      console.log(
        `hosts=2 jobs=${summary.jobs} lost=${N - summary.jobs} stuck=${summary.not_completed} ` +
          `completed_twice=${summary.completed_twice} extra_runs=${summary.extra_runs} ` +
          `(each a job of the cut host rescued: ${summary.rescued})`,
      );
      assert.equal(summary.jobs, N);
      assert.equal(summary.not_completed, 0);
      assert.equal(summary.completed_twice, 0);
      assert.ok(summary.rescued >= 1, "host b rescued host a's jobs");
      assert.equal(summary.extra_runs, summary.rescued, "every extra run is a rescue");
      assert.match(started[0].log(), /job\.lost .*this result is dropped/);
    } finally {
      for (const h of started) {
        try {
          h.process.kill("SIGKILL");
        } catch { /* exited */ }
        await h.process.status;
      }
      await sh(
        `runuser -u postgres -- ${PG_BIN}/pg_ctl -D ${dir}/data -m immediate stop >/dev/null 2>&1; ` +
          hosts.map((h) => `ip netns del ${h.ns} 2>/dev/null; ip link del ${h.link} 2>/dev/null`)
            .join("; ") +
          "; true",
        { check: false },
      );
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
