/**
 * The dashboard's one page: HTML, CSS and script as a string constant, so `deno compile` carries
 * it and nothing is read from disk or fetched from a CDN at run time. The server fills in
 * `%CSRF%` and `%READONLY%`. Every value from the queue goes into the page as text (textContent),
 * never as HTML.
 */

const CSS = `
:root { color-scheme: light dark; --bg: #fff; --fg: #1b1f24; --muted: #57606a; --line: #d0d7de;
  --card: #f6f8fa; --ok: #1a7f37; --bad: #cf222e; --warn: #9a6700; --info: #0969da; }
@media (prefers-color-scheme: dark) { :root { --bg: #0d1117; --fg: #e6edf3; --muted: #8d96a0;
  --line: #30363d; --card: #161b22; --ok: #3fb950; --bad: #f85149; --warn: #d29922; --info: #58a6ff; } }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, sans-serif; background: var(--bg); color: var(--fg); }
a { color: var(--info); }
:focus-visible { outline: 3px solid var(--info); outline-offset: 2px; }
.skip { position: absolute; left: -999px; } .skip:focus { left: 8px; top: 8px; background: var(--bg); }
header { display: flex; flex-wrap: wrap; gap: 4px 16px; align-items: center; padding: 8px 16px;
  border-bottom: 1px solid var(--line); }
header strong { margin-right: 8px; }
nav a { margin-right: 12px; text-decoration: none; padding: 4px 2px; }
nav a[aria-current=page] { border-bottom: 2px solid var(--info); font-weight: 600; }
main { padding: 12px 16px; max-width: 1200px; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(130px, 1fr)); gap: 8px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: 8px 10px;
  color: inherit; text-decoration: none; display: block; }
.card b { display: block; font-size: 22px; font-variant-numeric: tabular-nums; }
.card span { color: var(--muted); font-size: 13px; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-size: 13px; color: var(--muted); font-weight: 600; }
td.cmd { font-family: ui-monospace, monospace; max-width: 420px; overflow: hidden; text-overflow: ellipsis;
  white-space: nowrap; }
.st { font-weight: 600; white-space: nowrap; }
.st-completed { color: var(--ok); } .st-dead, .st-failed { color: var(--bad); }
.st-processing { color: var(--info); } .st-pending { color: var(--warn); } .st-cancelled { color: var(--muted); }
pre { background: var(--card); border: 1px solid var(--line); padding: 8px; overflow: auto; max-height: 420px;
  white-space: pre-wrap; word-break: break-all; }
button { font: inherit; padding: 4px 12px; border-radius: 6px; border: 1px solid var(--line);
  background: var(--card); color: var(--fg); cursor: pointer; }
button.danger { color: var(--bad); }
input, select { font: inherit; padding: 4px 6px; border: 1px solid var(--line); border-radius: 6px;
  background: var(--bg); color: var(--fg); }
form.filters { display: flex; flex-wrap: wrap; gap: 8px; align-items: end; margin-bottom: 10px; }
.muted { color: var(--muted); }
.row { display: flex; flex-wrap: wrap; gap: 8px; align-items: center; }
#status { min-height: 1.4em; padding: 0 16px; }
svg.chart { width: 100%; height: 140px; background: var(--card); border: 1px solid var(--line); }
svg .c { fill: var(--ok); } svg .f { fill: var(--bad); }
ol.timeline { list-style: none; padding-left: 0; border-left: 3px solid var(--line); }
ol.timeline li { padding: 4px 12px; margin-bottom: 6px; }
dl.spec { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; }
dl.spec dt { color: var(--muted); } dl.spec dd { margin: 0; font-family: ui-monospace, monospace;
  word-break: break-all; }
@media (max-width: 640px) { .hide-narrow { display: none; } main { padding: 8px; } td.cmd { max-width: 160px; } }
`;

const SCRIPT = `
"use strict";
const CSRF = document.querySelector("meta[name=csrf]").content;
const READ_ONLY = document.querySelector("meta[name=read-only]").content === "true";
const STATES = ["pending", "processing", "completed", "failed", "dead", "cancelled"];
const MARK = { pending: "\\u25cb", processing: "\\u25b6", completed: "\\u2713", failed: "\\u21bb",
  dead: "\\u2717", cancelled: "\\u2298" };
const main = document.getElementById("main");
const statusLine = document.getElementById("status");
let serverSkew = 0;
let lastOverview = null;
let followTimer = null;

function h(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const k of kids.flat()) if (k !== null && k !== undefined) e.append(k instanceof Node ? k : String(k));
  return e;
}
function say(text) { statusLine.textContent = text; }
// Each route() is one generation: a page read that answers after the user moved on is dropped
// (it never resolves), so a slow overview cannot replace the jobs page opened after it.
let routeGen = 0;
async function api(path, init) {
  const gen = routeGen;
  const r = await fetch(path, init);
  if (r.status === 401) { say("The access token is no longer valid: open the URL queuectl dashboard printed."); throw new Error("401"); }
  const body = await r.json();
  if (!init?.method && gen !== routeGen) return new Promise(() => {});
  return { status: r.status, body };
}
async function act(path, question) {
  if (question && !confirm(question)) return null;
  const { body } = await api(path, { method: "POST", headers: { "x-csrf-token": CSRF } });
  say(body.message || (body.ok ? "done" : "failed"));
  return body;
}
function ago(ms) {
  const s = Math.round(Math.abs(ms) / 1000);
  const t = s < 60 ? s + " s" : s < 3600 ? Math.round(s / 60) + " min" : s < 172800 ? Math.round(s / 3600) + " h"
    : Math.round(s / 86400) + " d";
  return ms >= 0 ? t + " ago" : "in " + t;
}
function time(at) {
  if (at === null || at === undefined) return h("span", { class: "muted" }, "\\u2014");
  const d = new Date(at);
  return h("time", { datetime: d.toISOString(), title: d.toLocaleString(), "data-at": at },
    ago(Date.now() + serverSkew - at));
}
function dur(ms) { return ms < 1000 ? ms + " ms" : ms < 120000 ? (ms / 1000).toFixed(1) + " s" : ago(-ms).slice(3); }
function badge(state) { return h("span", { class: "st st-" + state }, MARK[state] + " " + state); }
function jobLink(id) { return h("a", { href: "#/job/" + encodeURIComponent(id) }, id); }
setInterval(() => { for (const t of document.querySelectorAll("time[data-at]")) t.textContent = ago(Date.now() + serverSkew - Number(t.dataset.at)); }, 5000);

function chart(o, span) {
  const minute = 60000, slots = span === "day" ? 24 : 60, width = span === "day" ? 60 * minute : minute;
  const end = Math.floor(o.now / width) * width;
  const c = new Array(slots).fill(0), f = new Array(slots).fill(0);
  for (const m of o.minutes) {
    const i = slots - 1 - Math.floor((end - Math.floor(m.minute / width) * width) / width);
    if (i < 0 || i >= slots) continue;
    if (m.state === "completed") c[i] += m.n; else f[i] += m.n;
  }
  const max = Math.max(1, ...c.map((x, i) => x + f[i]));
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("class", "chart"); svg.setAttribute("viewBox", "0 0 " + slots * 10 + " 100");
  svg.setAttribute("preserveAspectRatio", "none"); svg.setAttribute("role", "img");
  const total = (a) => a.reduce((x, y) => x + y, 0);
  svg.setAttribute("aria-label", "Completed " + total(c) + ", failed " + total(f) + " in the last " + span + " (per " + (span === "day" ? "hour" : "minute") + ")");
  c.forEach((n, i) => {
    const hc = (n / max) * 100, hf = (f[i] / max) * 100;
    for (const [cls, y, hh, val, what] of [["c", 100 - hc, hc, n, "completed"], ["f", 100 - hc - hf, hf, f[i], "failed"]]) {
      if (!hh) continue;
      const r = document.createElementNS(ns, "rect");
      r.setAttribute("class", cls); r.setAttribute("x", i * 10 + 1); r.setAttribute("width", 8);
      r.setAttribute("y", y); r.setAttribute("height", hh);
      const t = document.createElementNS(ns, "title");
      t.textContent = val + " " + what + ", " + new Date(end - (slots - 1 - i) * width).toLocaleTimeString();
      r.append(t); svg.append(r);
    }
  });
  return svg;
}

let chartSpan = "hour";
function renderOverview(o) {
  lastOverview = o;
  serverSkew = o.now - Date.now();
  const cards = h("div", { class: "cards", id: "counts" },
    STATES.map((s) => h("a", { class: "card", href: "#/jobs?state=" + s, "data-state": s },
      h("b", {}, o.counts[s]), h("span", {}, MARK[s] + " " + s))),
    h("div", { class: "card" }, h("b", { id: "scheduled" }, o.counts.scheduled), h("span", {}, "scheduled")));
  const rate = h("div", { class: "cards" },
    h("div", { class: "card" }, h("b", {}, o.lastHour.completed), h("span", {}, "completed, last hour")),
    h("div", { class: "card" }, h("b", {}, o.lastHour.failed), h("span", {}, "failed or dead, last hour")),
    h("div", { class: "card" }, h("b", {}, (o.lastHour.failureRate * 100).toFixed(1) + "%"), h("span", {}, "failure rate")),
    h("div", { class: "card" }, h("b", { id: "latency" }, dur(o.latencyMs)), h("span", {}, "oldest ready job waits")));
  const spanButtons = h("div", { class: "row", role: "group", "aria-label": "Chart span" },
    ["hour", "day"].map((s) => h("button", { "aria-pressed": String(chartSpan === s),
      onclick: () => { chartSpan = s; renderOverview(lastOverview); } }, "last " + s)));
  const workers = o.workers.length === 0 ? h("p", { class: "muted" }, "No workers running. Start some with: queuectl worker start")
    : h("table", {}, h("thead", {}, h("tr", {}, ["host", "worker", "status", "heartbeat", "current job"].map((t, i) =>
        h("th", { class: i === 1 ? "hide-narrow" : null }, t)))),
      h("tbody", {}, o.workers.map((w) => h("tr", {}, h("td", {}, w.host), h("td", { class: "hide-narrow" }, w.id),
        h("td", {}, w.status), h("td", {}, ago(w.heartbeatAgeMs)),
        h("td", {}, w.currentJob ? jobLink(w.currentJob) : h("span", { class: "muted" }, "idle"))))));
  const keep = document.activeElement && document.activeElement.closest("#main") ? document.activeElement.textContent : null;
  main.replaceChildren(h("h1", {}, "Overview"), cards, h("h2", {}, "Throughput"), rate, spanButtons,
    chart(o, chartSpan), h("p", { class: "muted" }, "Green: completed; red: failed or dead (by the minute their latest run ended)."),
    h("h2", {}, "Workers"), workers);
  if (keep) for (const b of main.querySelectorAll("a,button")) if (b.textContent === keep) { b.focus(); break; }
}

async function showOverview() {
  const { body } = await api("/api/overview");
  renderOverview(body);
}

const BULK = { retry: ["Retry", "Queue again"], cancel: ["Cancel", "Cancel"], delete: ["Delete", "Delete for good, with their output,"] };
async function bulk(action, state, q, queue) {
  const base = new URLSearchParams({ action });
  if (state) base.set("state", state);
  if (q) base.set("q", q);
  if (queue) base.set("queue", queue);
  let count = 0, upTo = null, below = null;
  for (;;) {
    const p = new URLSearchParams(base);
    if (upTo !== null) p.set("upto", upTo);
    if (below !== null) p.set("below", below);
    const { body } = await api("/api/jobs/count?" + p);
    count += body.count; upTo = body.upTo; below = body.next;
    if (below === null) break;
    say("Counting\u2026 " + count + " so far");
  }
  const what = (state ? state + " " : "") + "jobs" + (queue ? " of queue " + queue : "") + (q ? " matching \u201c" + q + "\u201d" : "");
  if (count === 0) { say("No " + what + " that " + action + " applies to."); return; }
  if (!confirm(BULK[action][1] + " " + count + " " + what + "?")) { say(""); return; }
  say("Working on " + count + " jobs\u2026");
  const { body } = await api("/api/bulk/" + action, { method: "POST",
    headers: { "x-csrf-token": CSRF, "content-type": "application/json" }, body: JSON.stringify({ state, q, queue, upTo }) });
  say(body.message);
  route();
}

async function showJobs(params) {
  const state = params.get("state") || "", q = params.get("q") || "", queue = params.get("queue") || "", sort = params.get("sort") || "newest";
  const cursorName = sort === "oldest" ? "after" : "before", cursor = params.get(cursorName) || "";
  const form = h("form", { class: "filters", role: "search", onsubmit: (e) => {
      e.preventDefault();
      const p = new URLSearchParams();
      if (sel.value) p.set("state", sel.value);
      if (input.value) p.set("q", input.value);
      if (queueInput.value) p.set("queue", queueInput.value);
      if (order.value !== "newest") p.set("sort", order.value);
      location.hash = "#/jobs?" + p;
    } });
  const sel = h("select", { id: "state", name: "state" }, h("option", { value: "" }, "all states"),
    STATES.map((s) => h("option", { value: s, selected: s === state }, s)));
  const input = h("input", { id: "q", name: "q", type: "search", value: q, placeholder: "id or command text", "aria-label": "Search" });
  const queueInput = h("input", { id: "queue", name: "queue", value: queue, placeholder: "all queues", size: 12, "aria-label": "Queue" });
  const order = h("select", { id: "sort", name: "sort" }, h("option", { value: "newest", selected: sort === "newest" }, "newest first"),
    h("option", { value: "oldest", selected: sort === "oldest" }, "oldest first"));
  form.append(h("label", {}, "State ", sel), h("label", {}, "Queue ", queueInput), h("label", {}, "Search ", input), h("label", {}, "Order ", order), h("button", { type: "submit" }, "Find"));
  const bar = h("div", { class: "row", role: "group", "aria-label": "Act on every job this filter matches" });
  if (!READ_ONLY) for (const a of ["retry", "cancel", "delete"]) {
    bar.append(h("button", { id: "bulk-" + a, class: a === "retry" ? null : "danger", onclick: () => bulk(a, state, q, queue) }, BULK[a][0] + " all matching\u2026"));
  }
  main.replaceChildren(h("h1", {}, "Jobs"), form, bar, h("p", { class: "muted" }, "Loading\u2026"));
  const p = new URLSearchParams();
  if (state) p.set("state", state);
  if (q) p.set("q", q);
  if (queue) p.set("queue", queue);
  if (sort !== "newest") p.set("sort", sort);
  // A search answers one span of the queue per call: ask on until the page is full.
  let jobs = [], next = cursor || null, body;
  for (let first = true; first || (body.partial && jobs.length < 50); first = false) {
    const pp = new URLSearchParams(p);
    if (next !== null) pp.set(cursorName, next);
    ({ body } = await api("/api/jobs?" + pp));
    jobs = jobs.concat(body.jobs).slice(0, 50);
    next = body.next;
    if (body.partial) main.lastChild.textContent = "Searching\u2026 " + jobs.length + " found, now at job #" + next;
  }
  main.lastChild.remove();
  if (jobs.length === 0) { main.append(h("p", { id: "empty" }, "No jobs match.")); return; }
  main.append(jobTable(jobs));
  const nav = h("div", { class: "row" });
  if (cursor) nav.append(h("a", { href: "#/jobs?" + p }, "\u2190 first page"));
  if (next !== null) { p.set(cursorName, jobs.length === 50 ? jobs[49].seq : next); nav.append(h("a", { href: "#/jobs?" + p, id: "next" }, (sort === "oldest" ? "newer" : "older") + " \u2192")); }
  main.append(nav);
}

function jobTable(jobs, extra) {
  return h("table", { id: "jobs" }, h("thead", {}, h("tr", {}, h("th", {}, "id"), h("th", {}, "state"), h("th", { class: "hide-narrow" }, "queue"), h("th", {}, "command"),
      h("th", { class: "hide-narrow" }, "attempts"), h("th", { class: "hide-narrow" }, extra ? "last error" : "created"), extra ? h("th", {}, "") : null)),
    h("tbody", {}, jobs.map((j) => h("tr", {}, h("td", {}, jobLink(j.id)), h("td", {}, badge(j.state)), h("td", { class: "hide-narrow" }, j.queue),
      h("td", { class: "cmd", title: j.command }, j.command), h("td", { class: "hide-narrow" }, j.attempts),
      h("td", { class: "hide-narrow" }, extra ? (j.error || "") : time(j.createdAt)), extra ? h("td", {}, extra(j)) : null))));
}

async function showJob(id) {
  const { status, body } = await api("/api/jobs/" + encodeURIComponent(id));
  if (status === 404) { main.replaceChildren(h("h1", {}, "Job " + id), h("p", {}, "No such job.")); return; }
  const j = body.job;
  const buttons = h("div", { class: "row" });
  if (!READ_ONLY) {
    if (["failed", "dead", "cancelled"].includes(j.state)) buttons.append(h("button", { id: "retry", onclick: async () => { await act("/api/jobs/" + encodeURIComponent(id) + "/retry"); route(); } }, "Retry"));
    if (["pending", "processing", "failed"].includes(j.state)) buttons.append(h("button", { id: "cancel", class: "danger", onclick: async () => { await act("/api/jobs/" + encodeURIComponent(id) + "/cancel", "Cancel job " + id + "?"); route(); } }, "Cancel"));
  }
  const spec = h("dl", { class: "spec" });
  for (const [k, v] of [["state", badge(j.state)], ["command", j.command], ["attempts", j.attempts + " (max retries " + j.maxRetries + ")"],
    ["priority", j.priority], ["run at", time(j.runAt)], ["enqueued", time(j.createdAt)], ["started", time(j.startedAt)],
    ["finished", time(j.finishedAt)], ["exit code", j.exitCode ?? "\\u2014"], ["worker", j.workerId ?? "\\u2014"],
    ["timeout", j.timeoutMs ? dur(j.timeoutMs) : "none"], ["cwd", j.cwd], ["error", j.error ?? "\\u2014"]]) {
    spec.append(h("dt", {}, k), h("dd", {}, v));
  }
  if (j.env) spec.append(h("dt", {}, "env"), h("dd", {}, h("details", {}, h("summary", {}, Object.keys(j.env).length + " variables"),
    Object.entries(j.env).map(([k, v]) => h("div", {}, k + "=" + v)))));
  const marks = body.retries.map((r) => ({ at: r.retriedAt, node: h("li", {}, h("strong", {}, "\\u21ba retried by a person"), " from " + r.fromState + " after attempt " + r.afterAttempt + ", ", time(r.retriedAt)) }));
  const runs = body.attempts.map((a) => ({ at: a.finishedAt, node: h("li", {},
    h("strong", {}, "attempt " + a.attempt + ": "), h("span", { class: "st st-" + (a.outcome === "completed" ? "completed" : "failed") }, a.outcome),
    a.exitCode !== null ? ", exit " + a.exitCode : "", a.signal ? ", signal " + a.signal : "", ", took " + dur(a.durationMs),
    ", on " + a.workerId + ", ended ", time(a.finishedAt), a.error ? h("div", { class: "muted" }, a.error) : null) }));
  if (j.state === "processing") runs.push({ at: Infinity, node: h("li", {}, h("strong", {}, "attempt " + j.attempts + ": "), badge("processing"), " since ", time(j.startedAt), " on " + j.workerId) });
  const timeline = h("ol", { class: "timeline" }, [...marks, ...runs].sort((a, b) => a.at - b.at).map((x) => x.node));
  const outputs = h("div", { id: "outputs" });
  main.replaceChildren(h("h1", {}, "Job ", h("code", {}, j.id)), buttons, spec, h("h2", {}, "Attempts"),
    body.attempts.length || j.state === "processing" ? timeline : h("p", { class: "muted" }, "Not run yet."), h("h2", {}, "Output"), outputs);
  if (body.outputs.length === 0) outputs.append(h("p", { class: "muted" }, "No output yet."));
  for (const [i, o] of body.outputs.entries()) {
    const last = i === body.outputs.length - 1;
    const pre = h("pre", { id: last ? "output" : null, "aria-live": last && j.state === "processing" ? "polite" : null, tabindex: 0 });
    outputs.append(h("h3", {}, "attempt " + o.attempt + (last && j.state === "processing" ? " (live)" : "")), pre);
    let from = 0;
    const pull = async () => {
      const { body: b } = await api("/api/output/" + o.key + "?from=" + from);
      if (b.text) pre.textContent += b.text;
      from = b.next;
    };
    await pull();
    if (last && j.state === "processing") {
      const follow = async () => {
        if (!location.hash.startsWith("#/job/")) return;
        await pull();
        const { body: now } = await api("/api/jobs/" + encodeURIComponent(id));
        if (now.job.state === "processing" && now.job.attempts === j.attempts) followTimer = setTimeout(follow, 1000);
        else { await pull(); route(); }
      };
      followTimer = setTimeout(follow, 1000);
    }
  }
}

async function showDlq(params) {
  const before = params.get("before") || "";
  const p = new URLSearchParams({ state: "dead" });
  if (before) p.set("before", before);
  const { body } = await api("/api/jobs?" + p);
  const { body: o } = await api("/api/overview");
  const n = o.counts.dead;
  const bar = h("div", { class: "row" });
  if (!READ_ONLY && n > 0) {
    bar.append(h("button", { id: "retry-all", onclick: async () => { if (await act("/api/dlq/retry-all", "Move all " + n + " dead jobs back to pending?")) route(); } }, "Retry all " + n),
      h("button", { id: "purge", class: "danger", onclick: async () => { if (await act("/api/dlq/purge", "Delete all " + n + " dead jobs with their output, for good?")) route(); } }, "Purge all " + n));
  }
  main.replaceChildren(h("h1", {}, "Dead letter queue"), h("p", { class: "muted" }, n + " dead jobs: their last allowed attempt failed."), bar);
  if (body.jobs.length === 0) { main.append(h("p", { id: "empty" }, "The dead letter queue is empty.")); return; }
  main.append(jobTable(body.jobs, READ_ONLY ? null : (j) => h("button", { "data-retry": j.id, "aria-label": "Retry " + j.id,
    onclick: async () => { await act("/api/jobs/" + encodeURIComponent(j.id) + "/retry"); route(); } }, "Retry")));
  if (body.next !== null) main.append(h("a", { href: "#/dlq?before=" + body.next }, "older \\u2192"));
}

async function route() {
  routeGen++;
  clearTimeout(followTimer);
  const hash = location.hash || "#/";
  const [path, query] = hash.slice(1).split("?");
  const params = new URLSearchParams(query || "");
  for (const a of document.querySelectorAll("nav a")) {
    const target = a.getAttribute("href").slice(1);
    if (path === target || (target !== "/" && path.startsWith(target))) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
  try {
    if (path === "/" ) await showOverview();
    else if (path === "/jobs") await showJobs(params);
    else if (path.startsWith("/job/")) await showJob(decodeURIComponent(path.slice(5)));
    else if (path === "/dlq") await showDlq(params);
    else main.replaceChildren(h("p", {}, "No such page."));
  } catch (e) { if (e.message !== "401") say("Could not load: " + e.message); }
}
window.addEventListener("hashchange", route);
route();
const events = new EventSource("/api/events");
events.addEventListener("overview", (e) => {
  const o = JSON.parse(e.data);
  document.getElementById("live").textContent = "live";
  if ((location.hash || "#/") === "#/") renderOverview(o); else lastOverview = o;
});
events.onerror = () => { document.getElementById("live").textContent = "reconnecting\\u2026"; };
`;

/** The page, with `%CSRF%` and `%READONLY%` for the server to fill in. */
export const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="csrf" content="%CSRF%">
<meta name="read-only" content="%READONLY%">
<title>queuectl dashboard</title>
<style>${CSS}</style>
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header>
  <strong>queuectl</strong>
  <nav aria-label="Pages"><a href="#/">Overview</a><a href="#/jobs">Jobs</a><a href="#/dlq">Dead letter queue</a></nav>
  <span class="muted" id="live" aria-live="polite">connecting\u2026</span>
</header>
<div id="status" role="status" aria-live="polite"></div>
<main id="main" tabindex="-1"></main>
<script>${SCRIPT}</script>
</body>
</html>
`;
