/**
 * The dashboard in a real browser: Playwright (`npm:playwright-core`) drives Debian's Chromium
 * against a real `queuectl dashboard` on a real queue with real workers, and saves a screenshot of
 * each page: under docs/ when `QUEUECTL_SCREENSHOTS=docs` (to refresh the README's pictures), else
 * in a temporary directory, so a test run never changes the source tree.
 *
 * The test runner may not open sockets, so each test runs this same file as a script
 * (`deno run … dashboard_browser_test.ts SCENARIO`) with loopback network permission; the script
 * exits non-zero with the failed assertion.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { cliOk, PERMS, ROOT, startCli } from "./helpers.ts";

const CHROMIUM = "/usr/bin/chromium";
const SCENARIOS = {
  drain: "the counts change while real workers drain the queue",
  retry: "a dead job is retried by a click and completes",
  token: "without the token: 401 and nothing of the queue",
  search: "a search finds one job among 100,000",
  output: "the live output of a running job appears",
  bulk: "bulk retry of the dead jobs a search matches says how many, and they complete",
} as const;
type Scenario = keyof typeof SCENARIOS;

const SELF = fileURLToPath(import.meta.url);
const DOCS = Deno.env.get("QUEUECTL_SCREENSHOTS") === "docs" ? `${ROOT}docs/` : null;

if (!import.meta.main) {
  const chromium = (() => {
    try {
      return Deno.statSync(CHROMIUM).isFile;
    } catch {
      return false;
    }
  })();
  for (const [name, title] of Object.entries(SCENARIOS)) {
    Deno.test({
      name: `dashboard(browser): ${title}`,
      ignore: !chromium,
      async fn() {
        const perms = PERMS.map((p) =>
          p.startsWith("--allow-net")
            ? "--allow-net=127.0.0.1"
            : p === "--allow-sys=hostname"
            ? "--allow-sys"
            : p
        );
        const r = await new Deno.Command(Deno.execPath(), {
          args: ["run", "--quiet", ...perms, SELF, name],
          stdout: "piped",
          stderr: "piped",
        }).output();
        const said = new TextDecoder().decode(r.stdout) + new TextDecoder().decode(r.stderr);
        assert.equal(r.code, 0, said);
      },
    });
  }
  if (!chromium) {
    Deno.test({ name: `dashboard(browser): skipped, ${CHROMIUM} is missing`, fn() {} });
  }
}

// ---- The script side: one scenario, in its own process. ----

/** A background queuectl process (dashboard or workers), stopped with SIGTERM. */
function background(db: string, args: string[]) {
  const p = startCli(db, args);
  return {
    text: p.log,
    async stop() {
      p.signal("SIGTERM");
      await p.done();
    },
  };
}

const ok = (db: string, args: string[], stdin?: string) => cliOk(db, args, { stdin });

async function waitFor(cond: () => Promise<boolean> | boolean, what: string, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function runScenario(scenario: Scenario) {
  // Playwright asks at load whether it runs under WSL by reading /proc/sys/…, which Deno allows
  // only with --allow-all; answer "no" for /proc/sys instead of granting everything.
  const fs = (await import("node:fs")).default;
  const exists = fs.existsSync;
  fs.existsSync =
    ((p: string) => String(p).startsWith("/proc/sys/") ? false : exists(p)) as typeof fs.existsSync;
  const { chromium } = await import("npm:playwright-core@1.65.1");
  const dir = await Deno.makeTempDir({ prefix: "queuectl-browser-" });
  const db = `${dir}/queue.db`;
  const shots = DOCS ?? `${dir}/`;
  const stops: Array<() => Promise<void>> = [];
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
    ],
  });
  try {
    await ok(db, ["init"]);
    const dash = background(db, ["dashboard", "--port", "0"]);
    stops.push(dash.stop);
    await waitFor(() => /\?token=/.test(dash.text()), "the dashboard's URL");
    const url = dash.text().match(/http:\/\/\S+\?token=\S+/)![0];
    const origin = new URL(url).origin;
    const page = await browser.newPage({ viewport: { width: 1100, height: 800 } });
    const workers = () => {
      const w = background(db, ["worker", "start", "--count", "2"]);
      stops.push(w.stop);
      return w;
    };
    const count = async (state: string) =>
      Number(await page.textContent(`#counts [data-state=${state}] b`));
    await Deno.mkdir(shots, { recursive: true });

    if (scenario === "drain") {
      const jobs = Array.from(
        { length: 60 },
        (_, i) => JSON.stringify({ id: `d${i}`, command: "sleep 0.1" }),
      ).join("\n");
      await ok(db, ["enqueue", "--file", "-"], jobs + "\n");
      await page.goto(url);
      await page.waitForSelector("#counts");
      assert.equal(await count("pending"), 60);
      assert.equal(await count("completed"), 0);
      const seen = new Set<number>();
      const w = workers();
      // The page is never reloaded: the numbers come by server-sent events.
      await waitFor(async () => {
        seen.add(await count("completed"));
        return (await count("completed")) === 60;
      }, `60 completed on the page (workers said: ${w.text()})`);
      assert.ok(seen.size >= 3, `the count moved in steps: ${[...seen]}`);
      assert.equal(await count("pending"), 0);
      await page.waitForSelector("text=idle");
      await page.screenshot({ path: `${shots}dashboard-overview.png`, fullPage: true });
    } else if (scenario === "retry") {
      const flag = `${dir}/second-time`;
      await ok(db, [
        "enqueue",
        JSON.stringify({
          id: "flaky",
          command: `test -e '${flag}' || { touch '${flag}'; echo first run fails >&2; exit 3; }`,
          max_retries: 0,
        }),
      ]);
      workers();
      await waitFor(
        async () => (await ok(db, ["show", "flaky", "--json"])).includes('"dead"'),
        "dead",
      );
      await page.goto(url);
      await page.goto(`${origin}/#/dlq`);
      const button = page.locator('button[data-retry="flaky"]');
      await button.waitFor();
      assert.match(await page.textContent("#jobs") ?? "", /first run fails/);
      await page.screenshot({ path: `${shots}dashboard-dlq.png`, fullPage: true });
      await button.click(); // by keyboard too: it is a real <button>
      await waitFor(
        async () => JSON.parse(await ok(db, ["show", "flaky", "--json"])).state === "completed",
        "the retried job to complete",
      );
      await page.goto(`${origin}/#/job/flaky`);
      await page.waitForSelector("text=attempt 2:");
      assert.match(await page.textContent("main") ?? "", /completed/);
      await page.screenshot({ path: `${shots}dashboard-job.png`, fullPage: true });
    } else if (scenario === "token") {
      await ok(db, ["enqueue", JSON.stringify({ id: "private-job", command: "echo s3cr3t" })]);
      for (const path of ["/", "/api/jobs", "/api/jobs/private-job", "/metrics"]) {
        const r = await page.goto(origin + path);
        assert.equal(r?.status(), 401, path);
        const html = await page.content();
        assert.doesNotMatch(html, /private-job|s3cr3t|pending/, path);
      }
      const bad = await page.goto(`${origin}/?token=not-the-token`);
      assert.equal(bad?.status(), 401);
      await page.screenshot({ path: `${shots}dashboard-401.png` });
      const good = await page.goto(url);
      assert.equal(good?.status(), 200);
      assert.equal(new URL(page.url()).search, "", "the token leaves the address bar");
    } else if (scenario === "search") {
      const n = 100_000;
      const lines: string[] = [];
      for (let i = 0; i < n; i++) {
        lines.push(JSON.stringify({
          id: `bulk-${i}`,
          command: i === 31_337 ? "echo needle-in-the-haystack" : `echo hay ${i}`,
          run_at: "2099-01-01T00:00:00Z",
        }));
      }
      await ok(db, ["enqueue", "--file", "-"], lines.join("\n") + "\n");
      await page.goto(url);
      await page.goto(`${origin}/#/jobs`);
      await page.waitForSelector("#jobs");
      assert.equal(await page.locator("#jobs tbody tr").count(), 50, "one page of 50");
      await page.click("#next");
      await page.waitForSelector("#jobs tbody tr >> text=bulk-99949");
      await page.fill("#q", "NEEDLE-in");
      const started = performance.now();
      await page.keyboard.press("Enter");
      await page.waitForSelector("#jobs tbody tr >> text=bulk-31337");
      const ms = performance.now() - started;
      assert.equal(await page.locator("#jobs tbody tr").count(), 1);
      console.log(`search among ${n} jobs answered in the page in ${ms.toFixed(0)} ms`);
      await page.screenshot({ path: `${shots}dashboard-jobs.png`, fullPage: true });
      // Narrow window: still readable (no horizontal scroll of the page).
      await page.setViewportSize({ width: 380, height: 700 });
      const wide = await page.evaluate("document.documentElement.scrollWidth") as number;
      assert.ok(wide <= 400, `page width at 380 px: ${wide}`);
      await page.screenshot({ path: `${shots}dashboard-jobs-narrow.png`, fullPage: true });
    } else if (scenario === "bulk") {
      // 10 jobs of batch A and 5 of batch B fail once and go dead (no retries); only A is retried.
      const flags = `${dir}/flags`;
      await Deno.mkdir(flags);
      const lines = [];
      for (const [batch, n] of [["batch-a", 10], ["batch-b", 5]] as const) {
        for (let i = 0; i < n; i++) {
          const id = `${batch}-${i}`;
          lines.push(JSON.stringify({
            id,
            command: `test -e '${flags}/${id}' || { touch '${flags}/${id}'; exit 3; } # ${batch}`,
            max_retries: 0,
          }));
        }
      }
      await ok(db, ["enqueue", "--file", "-"], lines.join("\n") + "\n");
      await ok(db, ["enqueue", JSON.stringify({ id: "other", command: "true # batch-a" })]);
      const w = workers();
      const states = async () => {
        const jobs = JSON.parse(await ok(db, ["list", "--json", "--limit", "100"]));
        return Object.fromEntries(
          jobs.map((j: { id: string; state: string }) => [j.id, j.state]),
        ) as Record<string, string>;
      };
      await waitFor(
        async () => Object.values(await states()).filter((s) => s === "dead").length === 15,
        `15 dead jobs (workers said: ${w.text()})`,
      );
      await page.goto(url);
      await page.goto(`${origin}/#/jobs?state=dead&q=BATCH-A`);
      await page.waitForSelector("#jobs");
      assert.equal(await page.locator("#jobs tbody tr").count(), 10);
      let question = "";
      page.once("dialog", (d) => {
        question = d.message();
        d.accept();
      });
      await page.click("#bulk-retry");
      await page.waitForSelector("#status >> text=queued again 10 jobs");
      assert.match(question, /\b10 dead jobs matching .BATCH-A.\?/);
      await waitFor(async () => {
        const s = await states();
        return Object.entries(s).every(([id, st]) =>
          st === (id.startsWith("batch-b") ? "dead" : "completed")
        );
      }, `batch A completed, batch B still dead: ${JSON.stringify(await states())}`);
      // Under --read-only the page offers no bulk action.
      const ro = background(db, ["dashboard", "--port", "0", "--read-only"]);
      stops.push(ro.stop);
      await waitFor(() => /\?token=/.test(ro.text()), "the read-only dashboard's URL");
      const roUrl = ro.text().match(/http:\/\/\S+\?token=\S+/)![0];
      await page.goto(roUrl);
      await page.goto(`${new URL(roUrl).origin}/#/jobs?state=dead`);
      await page.waitForSelector("#jobs");
      assert.equal(await page.locator("#bulk-retry").count(), 0);
    } else if (scenario === "output") {
      const gate = `${dir}/gate`;
      await ok(db, [
        "enqueue",
        JSON.stringify({
          id: "talker",
          command: `echo line-one; while [ ! -e '${gate}' ]; do sleep 0.05; done; echo line-two`,
        }),
      ]);
      workers();
      await waitFor(
        async () => JSON.parse(await ok(db, ["show", "talker", "--json"])).state === "processing",
        "the job to run",
      );
      await page.goto(url);
      await page.goto(`${origin}/#/job/talker`);
      await page.waitForSelector("#output");
      await waitFor(
        async () => /line-one/.test(await page.textContent("#output") ?? ""),
        "line-one in the page",
        30_000,
      );
      assert.doesNotMatch(await page.textContent("#output") ?? "", /line-two/);
      await Deno.writeTextFile(gate, "");
      // Followed live: the page is not reloaded by the test.
      await waitFor(
        async () => /line-two/.test(await page.textContent("main") ?? ""),
        "line-two in the page",
        30_000,
      );
    }
    await page.close();
  } finally {
    for (const stop of stops.reverse()) await stop();
    await browser.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) await runScenario(Deno.args[0] as Scenario);
