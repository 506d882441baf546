/**
 * Durations and instants as users type them. Pure: no clock here; callers pass `now`.
 */

const UNIT_MS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

/**
 * Parses `90`, `1.5`, `90s`, `5m`, `1h30m`, `250ms`, `7d` into milliseconds. A bare number means
 * seconds. Returns `null` when the text is not a duration.
 */
export function parseDurationMs(text: string | number): number | null {
  if (typeof text === "number") return Number.isFinite(text) && text >= 0 ? text * 1000 : null;
  const s = text.trim().toLowerCase();
  if (s === "") return null;
  if (/^\d+(\.\d+)?$/.test(s)) return Number(s) * 1000;
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/g;
  let total = 0;
  let consumed = 0;
  for (const m of s.matchAll(re)) {
    if (m.index !== consumed) return null;
    total += Number(m[1]) * UNIT_MS[m[2]];
    consumed += m[0].length;
  }
  return consumed === s.length && consumed > 0 ? total : null;
}

/** Formats milliseconds the short way: `850ms`, `1.2s`, `4s`, `2m5s`, `3h`, `2d4h`. */
export function formatDuration(ms: number): string {
  if (ms < 0) ms = 0;
  // 999.6 rounds up to a whole second: say "1s", never "1000ms".
  if (Math.round(ms) < 1000) return `${Math.round(ms)}ms`;
  if (ms < 10_000) {
    const s = Math.round(ms / 100) / 10;
    return Number.isInteger(s) ? `${s}s` : `${s.toFixed(1)}s`;
  }
  const totalS = Math.round(ms / 1000);
  if (totalS < 60) return `${totalS}s`;
  const parts: Array<[number, string]> = [
    [Math.floor(totalS / 86400), "d"],
    [Math.floor((totalS % 86400) / 3600), "h"],
    [Math.floor((totalS % 3600) / 60), "m"],
    [totalS % 60, "s"],
  ];
  const first = parts.findIndex(([n]) => n > 0);
  return parts.slice(first, first + 2).filter(([n]) => n > 0).map(([n, u]) => `${n}${u}`).join("");
}

/**
 * Formats milliseconds exactly, largest units first, every non-zero unit kept: `1h`, 90 s is
 * `1m30s`, `1h0m1s` is `1h1s`, `1500ms` is `1s500ms`, 0 is `0s`. For values people set (config),
 * where `formatDuration`'s rounding would misstate them. Parses back to the same value.
 */
export function formatDurationExact(ms: number): string {
  let rest = Math.max(0, Math.round(ms));
  if (rest === 0) return "0s";
  const parts: string[] = [];
  for (const unit of ["d", "h", "m", "s", "ms"]) {
    const n = Math.floor(rest / UNIT_MS[unit]);
    if (n > 0) parts.push(`${n}${unit}`);
    rest -= n * UNIT_MS[unit];
  }
  return parts.join("");
}

/**
 * Parses an ISO 8601 instant (`2026-11-25T10:00:00Z`, `2026-11-25 10:00`, with or without offset)
 * into ms since the epoch; without an offset it is local time. Returns `null` when it is not one
 * (including dates and times that are not on the calendar or the clock, like `2026-02-30`).
 */
export function parseInstant(text: string): number | null {
  const s = text.trim();
  const m =
    /^(\d{4})-(\d{2})-(\d{2})([T ](\d{2}):(\d{2})(:(\d{2})(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$/i
      .exec(s);
  if (!m) return null;
  // Date.parse rolls 2026-02-30 over to March 2 and accepts 24:00; refuse what is not on the
  // calendar or the clock instead of running a job on a day nobody asked for.
  const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  const daysInMonth = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1];
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth) return null;
  if (m[4] !== undefined && (Number(m[5]) > 23 || Number(m[6]) > 59 || Number(m[8] ?? 0) > 59)) {
    return null;
  }
  // Without an offset the instant is local time. Date.parse reads a bare date as UTC midnight but a
  // date with a time as local: add the time so both mean the same thing.
  const iso = m[4] === undefined
    ? `${m[1]}-${m[2]}-${m[3]}T00:00${m[10] ?? ""}`
    : s.replace(" ", "T");
  const ms = Date.parse(iso);
  return Number.isNaN(ms) ? null : ms;
}
