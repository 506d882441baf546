/**
 * The dashboard's HTTP server (`queuectl dashboard`): one embedded page, a JSON API, server-sent
 * events for the overview, and `/metrics`. Reads and writes through the Store only; the rules of
 * retry, cancel and purge are the CLI's own (`applyToIds`, `retryAllDead`), never copied here.
 *
 * Every request needs the access token: `?token=` (which sets an HttpOnly, SameSite=Strict cookie
 * and redirects to the same URL without it), that cookie, or `Authorization: Bearer`. Without it:
 * 401 and a page that shows nothing of the queue. Actions are POSTs that need the page's CSRF token
 * in `X-CSRF-Token` and an `Origin` equal to the dashboard's own; `readOnly` serves none.
 *
 * A search walks rows (no index serves a substring match), so one search call walks one span of
 * seqs (sized to take well under 100 ms) and says where to go on; the page asks again until its
 * page is full.
 */
import { JOB_STATES, type JobState } from "../job.ts";
import type { Attempt, Job, MinuteCount, Store } from "../store/store.ts";
import { loadSetting } from "../settings.ts";
import { workerStatus } from "../../workers/liveness.ts";
import { applyToIds, cancelOptions, retryOptions } from "../cli/retry.ts";
import { retryAllDead } from "../cli/dlq.ts";
import { applyBulk, bulkStates, isBulkAction } from "./bulk.ts";
import { METRICS_CONTENT_TYPE, renderMetrics } from "./prometheus.ts";
import { PAGE_HTML } from "./page.ts";

export interface DashboardOptions {
  store: Store;
  hostname: string;
  port: number;
  readOnly: boolean;
  /** Serve `/metrics` without the token (for a scraper on a trusted network). */
  metricsPublic: boolean;
  /** The access token; random when not given. */
  token?: string;
  signal?: AbortSignal;
}

export interface Dashboard {
  /** The address to open, with the token: `http://HOST:PORT/?token=TOKEN`. */
  url: string;
  origin: string;
  finished: Promise<void>;
}

const COOKIE = "queuectl_token";
const PAGE_SIZE = 50;
/**
 * How many seqs one search call walks at first. Each search call then halves or doubles it so the
 * call takes 25-60 ms on this store (a row costs ~0.25 µs on SQLite, ~1.3 µs on PostgreSQL; see
 * bench/dashboard.ts).
 */
const SEARCH_SPAN = 100_000;
const SEARCH_SPAN_MIN = 5_000;
const SEARCH_SPAN_MAX = 2_000_000;
const SSE_INTERVAL_MS = 1000;

function randomToken(): string {
  const b = crypto.getRandomValues(new Uint8Array(24));
  return btoa(String.fromCharCode(...b)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=/g, "");
}

/** Compares two strings in time that depends only on their lengths. */
function same(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return d === 0;
}

const SECURITY_HEADERS = {
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
  "cache-control": "no-store",
};

function json(value: unknown, status = 200): Response {
  return new Response(JSON.stringify(value), {
    status,
    headers: { "content-type": "application/json; charset=utf-8", ...SECURITY_HEADERS },
  });
}

function unauthorized(): Response {
  return new Response(
    "<!doctype html><meta charset=utf-8><title>queuectl: 401</title>" +
      "<p>401: this dashboard needs its access token. Open the URL that " +
      "<code>queuectl dashboard</code> printed.</p>\n",
    {
      status: 401,
      headers: {
        "content-type": "text/html; charset=utf-8",
        "www-authenticate": 'Bearer realm="queuectl"',
        ...SECURITY_HEADERS,
      },
    },
  );
}

/** A job as the API lists it (no env: only the detail view shows the spec). */
function jobSummary(j: Job) {
  return {
    seq: j.seq,
    id: j.id,
    command: j.command,
    state: j.state,
    queue: j.queue,
    attempts: j.attempts,
    priority: j.priority,
    runAt: j.runAt,
    createdAt: j.createdAt,
    startedAt: j.startedAt,
    finishedAt: j.finishedAt,
    exitCode: j.exitCode,
    error: j.error,
    workerId: j.workerId,
  };
}

/**
 * Jobs finished per minute over the last day. Walking a day of finished jobs costs as much as
 * there are, so the whole day is read at most once a minute per store; in between only the last
 * two minutes are read again and laid over it.
 */
const minuteCache = new WeakMap<Store, { at: number; rows: MinuteCount[] }>();
async function lastDayMinutes(store: Store, now: number): Promise<MinuteCount[]> {
  const since = now - 24 * 3600_000;
  const kept = minuteCache.get(store);
  if (!kept || now - kept.at > 60_000 || now < kept.at) {
    const rows = await store.finishedPerMinute(since);
    minuteCache.set(store, { at: now, rows });
    return rows;
  }
  const recent = Math.floor(kept.at / 60_000) * 60_000 - 60_000;
  const fresh = await store.finishedPerMinute(recent);
  return [...kept.rows.filter((m) => m.minute >= since && m.minute < recent), ...fresh];
}

/** Everything the overview shows, from kept counts and indexed reads. */
export async function overview(store: Store) {
  const now = await store.now();
  const [counts, minutes, latencyMs, workers, leaseMs] = await Promise.all([
    store.counts(now),
    lastDayMinutes(store, now),
    store.readyLatencyMs(now),
    store.listWorkers(),
    loadSetting(store, "lease-timeout"),
  ]);
  const hourAgo = now - 3600_000;
  let done = 0;
  let failed = 0;
  for (const m of minutes) {
    if (m.minute < hourAgo - 60_000) continue;
    if (m.state === "completed") done += m.n;
    else failed += m.n;
  }
  return {
    now,
    counts,
    minutes,
    lastHour: {
      completed: done,
      failed,
      failureRate: done + failed ? failed / (done + failed) : 0,
    },
    latencyMs,
    workers: workers.map((w) => ({
      id: w.id,
      host: w.host,
      pid: w.pid,
      status: workerStatus(w, leaseMs, now),
      heartbeatAgeMs: Math.max(now - w.heartbeatAt, 0),
      currentJob: w.currentJob,
      startedAt: w.startedAt,
    })),
  };
}

async function jobDetail(store: Store, id: string) {
  const job = await store.getJob(id);
  if (!job) return null;
  const [attempts, retries, keys] = await Promise.all([
    store.listAttempts(id),
    store.listRetries(id),
    store.outputKeys(id),
  ]);
  return {
    job,
    attempts: attempts.map((a: Attempt) => ({ ...a, durationMs: a.finishedAt - a.startedAt })),
    retries,
    outputs: keys,
  };
}

function parseState(s: string | null): JobState | undefined | null {
  if (s === null || s === "" || s === "all") return undefined;
  return (JOB_STATES as readonly string[]).includes(s) ? s as JobState : null;
}

/** Starts the server; resolves once it listens. */
export function startDashboard(opts: DashboardOptions): Promise<Dashboard> {
  const { store } = opts;
  const token = opts.token ?? randomToken();
  const csrf = randomToken();
  // Ends the live-update streams when the server stops, so that it can finish.
  const shutdown = opts.signal ?? new AbortController().signal;
  let origin = "";
  let searchSpan = SEARCH_SPAN;
  /** Runs one span of a search and adapts the next span's length to how long this one took. */
  const timedSpan = async <T>(fn: () => Promise<T>): Promise<T> => {
    const t0 = performance.now();
    const r = await fn();
    const ms = performance.now() - t0;
    if (ms > 60) searchSpan = Math.max(Math.floor(searchSpan / 2), SEARCH_SPAN_MIN);
    else if (ms < 25) searchSpan = Math.min(searchSpan * 2, SEARCH_SPAN_MAX);
    return r;
  };
  const page = PAGE_HTML.replace("%CSRF%", csrf).replace("%READONLY%", String(opts.readOnly));

  const authorized = (req: Request, url: URL): boolean => {
    const auth = req.headers.get("authorization");
    if (auth?.startsWith("Bearer ") && same(auth.slice(7).trim(), token)) return true;
    const q = url.searchParams.get("token");
    if (q !== null && same(q, token)) return true;
    for (const part of (req.headers.get("cookie") ?? "").split(";")) {
      const [k, ...v] = part.trim().split("=");
      if (k === COOKIE && same(v.join("="), token)) return true;
    }
    return false;
  };

  const action = async (path: string, body: unknown): Promise<Response | null> => {
    let m;
    if ((m = path.match(/^\/api\/jobs\/([^/]+)\/(retry|cancel)$/))) {
      const id = decodeURIComponent(m[1]);
      const opts = m[2] === "retry" ? retryOptions : cancelOptions;
      const r = await applyToIds(store, [id], opts);
      const ok = r.done.length === 1;
      return json({
        ok,
        message: ok ? `${opts.verb} ${id}` : r.problems[0] ?? `job ${id} not found`,
      }, ok ? 200 : r.missing.length ? 404 : 409);
    }
    if (path === "/api/dlq/retry-all") {
      const r = await retryAllDead(store);
      return json({
        ok: r.problems.length + r.missing.length === 0,
        retried: r.done.length,
        problems: r.problems,
      });
    }
    if ((m = path.match(/^\/api\/bulk\/([a-z]+)$/)) && isBulkAction(m[1])) {
      const b = body as { state?: unknown; q?: unknown; queue?: unknown; upTo?: unknown };
      const state = parseState(typeof b.state === "string" ? b.state : null);
      if (
        state === null || !Number.isSafeInteger(b.upTo) || (b.q && typeof b.q !== "string") ||
        (b.queue && typeof b.queue !== "string")
      ) {
        return json(
          { ok: false, message: "give state, q and upTo as the count returned" },
          400,
        );
      }
      const r = await applyBulk(
        store,
        m[1],
        {
          state,
          search: (b.q as string) || undefined,
          queue: (b.queue as string) || undefined,
        },
        (b.upTo as number) + 1,
      );
      const verb = { retry: "queued again", cancel: "cancelled", delete: "deleted" }[m[1]];
      return json({
        ok: r.skipped.length === 0,
        done: r.done,
        skipped: r.skipped.length,
        message: `${verb} ${r.done} job${r.done === 1 ? "" : "s"}` +
          (r.skipped.length ? `; ${r.skipped.length} skipped: ${r.skipped[0]}` : ""),
      });
    }
    if (path === "/api/dlq/purge") {
      const deleted = await store.purge("dead", await store.now() + 1);
      return json({ ok: true, purged: deleted.length });
    }
    return null;
  };

  const handle = async (req: Request): Promise<Response> => {
    const url = new URL(req.url);
    const path = url.pathname;
    if (path === "/metrics" && req.method === "GET" && opts.metricsPublic) {
      return new Response(await renderMetrics(store), {
        headers: { "content-type": METRICS_CONTENT_TYPE },
      });
    }
    if (!authorized(req, url)) return unauthorized();
    if (url.searchParams.has("token") && req.method === "GET") {
      // Keep the token out of the address bar and history: a cookie carries it from here on.
      url.searchParams.delete("token");
      return new Response(null, {
        status: 303,
        headers: {
          location: url.pathname + url.search,
          "set-cookie": `${COOKIE}=${token}; HttpOnly; SameSite=Strict; Path=/`,
          ...SECURITY_HEADERS,
        },
      });
    }
    if (req.method === "POST") {
      if (opts.readOnly) return json({ ok: false, message: "this dashboard is read-only" }, 403);
      if (
        req.headers.get("origin") !== origin || !same(req.headers.get("x-csrf-token") ?? "", csrf)
      ) {
        return json(
          { ok: false, message: "refused: wrong origin or CSRF token; reload the page" },
          403,
        );
      }
      let body: unknown = {};
      if (req.headers.get("content-type")?.startsWith("application/json")) {
        try {
          body = await req.json();
        } catch {
          return json({ ok: false, message: "the request body is not JSON" }, 400);
        }
      }
      return await action(path, body) ?? json({ ok: false, message: "no such action" }, 404);
    }
    if (req.method !== "GET") return json({ ok: false, message: "method not allowed" }, 405);
    if (path === "/") {
      return new Response(page, {
        headers: {
          "content-type": "text/html; charset=utf-8",
          "content-security-policy":
            "default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'unsafe-inline'; " +
            "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'",
          ...SECURITY_HEADERS,
        },
      });
    }
    if (path === "/metrics") {
      return new Response(await renderMetrics(store), {
        headers: { "content-type": METRICS_CONTENT_TYPE, ...SECURITY_HEADERS },
      });
    }
    if (path === "/api/overview") return json(await overview(store));
    if (path === "/api/events") return events(store, shutdown);
    if (path === "/api/jobs" || path === "/api/jobs/count") {
      const state = parseState(url.searchParams.get("state"));
      if (state === null) {
        return json(
          { ok: false, message: `unknown state; states are ${JOB_STATES.join(", ")}` },
          400,
        );
      }
      const q = url.searchParams.get("q") || undefined;
      const queue = url.searchParams.get("queue") || undefined;
      const cursor = (name: string) => {
        const v = url.searchParams.get(name);
        return v !== null && /^\d+$/.test(v) ? Number(v) : undefined;
      };
      if (path === "/api/jobs/count") {
        const action = url.searchParams.get("action") ?? "";
        if (!isBulkAction(action)) {
          return json({ ok: false, message: "action must be retry, cancel or delete" }, 400);
        }
        // The newest job when the count starts bounds the action: jobs enqueued later are not
        // counted, nor touched.
        const upTo = cursor("upto") ?? (await store.pageJobs({ limit: 1 }))[0]?.seq ?? 0;
        const states = bulkStates(action, { state });
        if (!q) {
          return json({ count: await store.countPage({ states, queue }), upTo, next: null });
        }
        // A search walks rows: one span of seqs per call, so each call stays quick; the page
        // asks again from `next` and adds up.
        const below = Math.min(cursor("below") ?? upTo + 1, upTo + 1);
        const from = Math.max(below - searchSpan, 0);
        const count = await timedSpan(() =>
          store.countPage({ states, queue, search: q, beforeSeq: below, afterSeq: from - 1 })
        );
        return json({ count, upTo, next: from > 1 ? from : null });
      }
      const oldest = url.searchParams.get("sort") === "oldest";
      let before = cursor("before");
      let after = cursor("after");
      let spanEnd: number | null = null;
      if (q) {
        // A search walks rows: one span of seqs per call. A page not full by then says
        // where to go on (`next`, with `partial`), and the page asks again.
        const newest = (await store.pageJobs({ limit: 1 }))[0]?.seq ?? 0;
        if (oldest) {
          after = after ?? 0;
          spanEnd = after + searchSpan;
          before = spanEnd + 1;
          if (spanEnd >= newest) spanEnd = null;
        } else {
          before = before ?? newest + 1;
          spanEnd = before - searchSpan;
          after = spanEnd - 1;
          if (spanEnd <= 1) spanEnd = null;
        }
      }
      const page = () =>
        store.pageJobs({
          state,
          queue,
          search: q,
          sort: oldest ? "oldest" : "newest",
          beforeSeq: before,
          afterSeq: after,
          limit: PAGE_SIZE,
        });
      const jobs = q ? await timedSpan(page) : await page();
      const full = jobs.length === PAGE_SIZE;
      return json({
        jobs: jobs.map(jobSummary),
        next: full ? jobs[jobs.length - 1].seq : spanEnd,
        partial: !full && spanEnd !== null,
      });
    }
    let m;
    if ((m = path.match(/^\/api\/jobs\/([^/]+)$/))) {
      const d = await jobDetail(store, decodeURIComponent(m[1]));
      return d ? json(d) : json({ ok: false, message: "no such job" }, 404);
    }
    if ((m = path.match(/^\/api\/output\/([0-9a-zA-Z_-]+)$/))) {
      const from = Number(url.searchParams.get("from") ?? "0") || 0;
      const pieces = await store.readOutput(m[1], from);
      const dec = new TextDecoder();
      let text = "";
      let end = from;
      for (const p of pieces) {
        const skip = Math.max(from - p.offset, 0);
        text += dec.decode(p.data.subarray(skip), { stream: true });
        end = p.offset + p.data.length;
      }
      return json({ text: text + dec.decode(), next: end });
    }
    return json({ ok: false, message: "not found" }, 404);
  };

  return new Promise((resolve, reject) => {
    let server: Deno.HttpServer;
    try {
      server = Deno.serve({
        hostname: opts.hostname,
        port: opts.port,
        signal: opts.signal,
        onListen: ({ hostname, port }) => {
          const host = hostname.includes(":") ? `[${hostname}]` : hostname;
          origin = `http://${host}:${port}`;
          // Called before Deno.serve returns: the server is known a moment later.
          queueMicrotask(() =>
            resolve({ url: `${origin}/?token=${token}`, origin, finished: server.finished })
          );
        },
        onError: (e) => {
          console.error(`queuectl dashboard: ${e instanceof Error ? e.message : e}`);
          return json({ ok: false, message: "internal error; see the dashboard's stderr" }, 500);
        },
      }, handle);
    } catch (e) {
      reject(e);
    }
  });
}

/**
 * Server-sent events: the overview now, then again each second while it changes. The stream ends
 * when the client goes away (the body is cancelled) or the server shuts down (`shutdown`).
 */
function events(store: Store, shutdown: AbortSignal): Response {
  const enc = new TextEncoder();
  let last = "";
  let timer: ReturnType<typeof setTimeout> | undefined;
  let closed = false;
  let end = () => {};
  const stop = () => {
    closed = true;
    clearTimeout(timer);
    shutdown.removeEventListener("abort", end);
  };
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      const tick = async () => {
        if (closed) return;
        try {
          const o = await overview(store);
          const { now: _now, ...rest } = o;
          const key = JSON.stringify(rest);
          // Only a change is sent.
          if (key !== last && !closed) {
            last = key;
            controller.enqueue(enc.encode(`event: overview\ndata: ${JSON.stringify(o)}\n\n`));
          }
        } catch {
          // The store was busy: the next tick tries again.
        }
        if (!closed) timer = setTimeout(tick, SSE_INTERVAL_MS);
      };
      tick();
      end = () => {
        stop();
        try {
          controller.close();
        } catch { /* closed */ }
      };
      if (shutdown.aborted) end();
      else shutdown.addEventListener("abort", end, { once: true });
    },
    cancel: stop,
  });
  return new Response(body, {
    headers: {
      "content-type": "text/event-stream; charset=utf-8",
      ...SECURITY_HEADERS,
    },
  });
}
