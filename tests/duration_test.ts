/** Durations and instants as users type them (`lib/duration.ts`). Pure: no clock. */
import assert from "node:assert/strict";
import {
  formatDuration,
  formatDurationExact,
  parseDurationMs,
  parseInstant,
} from "../lib/duration.ts";

Deno.test("duration: parseDurationMs reads bare numbers as seconds and every unit", () => {
  const cases: Array<[string | number, number]> = [
    ["0", 0],
    ["90", 90_000],
    ["1.5", 1_500],
    [90, 90_000],
    [0.25, 250],
    [0, 0],
    ["250ms", 250],
    ["90s", 90_000],
    ["5m", 300_000],
    ["2h", 7_200_000],
    ["7d", 604_800_000],
    ["1w", 604_800_000],
    ["1.5h", 5_400_000],
    ["0s", 0],
  ];
  for (const [text, ms] of cases) assert.equal(parseDurationMs(text), ms, JSON.stringify(text));
});

Deno.test("duration: parseDurationMs adds up compound durations like 1h30m and 2m5s500ms", () => {
  assert.equal(parseDurationMs("1h30m"), 5_400_000);
  assert.equal(parseDurationMs("2m5s"), 125_000);
  assert.equal(parseDurationMs("1m30s500ms"), 90_500);
  assert.equal(parseDurationMs("1d12h"), 129_600_000);
});

Deno.test("duration: parseDurationMs ignores case and surrounding blanks", () => {
  assert.equal(parseDurationMs("  5M "), 300_000);
  assert.equal(parseDurationMs("250MS"), 250);
  assert.equal(parseDurationMs("\t90\n"), 90_000);
});

Deno.test("duration: parseDurationMs returns null for what is not a duration", () => {
  const bad: Array<string | number> = [
    "",
    "   ",
    "abc",
    "-5",
    "-5s",
    "5 s",
    "1h 30m",
    "1h30",
    "s",
    "5x",
    "5sec",
    "1e3",
    ".5",
    "5.",
    "0x10",
    "Infinity",
    "1,5",
    -1,
    NaN,
    Infinity,
  ];
  for (const text of bad) assert.equal(parseDurationMs(text), null, JSON.stringify(String(text)));
});

Deno.test("duration: formatDuration picks the short form for each magnitude", () => {
  const cases: Array<[number, string]> = [
    [0, "0ms"],
    [1, "1ms"],
    [850, "850ms"],
    [999.4, "999ms"],
    [999.6, "1s"],
    [1_000, "1s"],
    [1_200, "1.2s"],
    [1_249, "1.2s"],
    [4_000, "4s"],
    [9_949, "9.9s"],
    [9_960, "10s"],
    [10_000, "10s"],
    [59_000, "59s"],
    [59_600, "1m"],
    [60_000, "1m"],
    [125_000, "2m5s"],
    [3_600_000, "1h"],
    [3_660_000, "1h1m"],
    // Two units at most: the seconds of 1h0m1s are dropped.
    [3_601_000, "1h"],
    [10_800_000, "3h"],
    [187_200_000, "2d4h"],
    [90_061_000, "1d1h"],
    [86_400_000 * 30, "30d"],
  ];
  for (const [ms, text] of cases) assert.equal(formatDuration(ms), text, String(ms));
});

Deno.test("duration: formatDuration shows a negative duration as 0ms", () => {
  assert.equal(formatDuration(-5), "0ms");
  assert.equal(formatDuration(-90_000), "0ms");
});

Deno.test("duration: formatDuration output parses back to the same rounded duration", () => {
  for (const ms of [0, 850, 4_000, 125_000, 3_600_000, 187_200_000]) {
    assert.equal(parseDurationMs(formatDuration(ms)), ms, String(ms));
  }
});

Deno.test("duration: parseInstant reads ISO 8601 instants with an offset", () => {
  const cases: Array<[string, number]> = [
    ["2026-11-25T10:00:00Z", Date.UTC(2026, 10, 25, 10, 0, 0)],
    ["2026-11-25T10:00Z", Date.UTC(2026, 10, 25, 10, 0)],
    ["2026-11-25T10:00:30.250Z", Date.UTC(2026, 10, 25, 10, 0, 30, 250)],
    ["2026-11-25t10:00z", Date.UTC(2026, 10, 25, 10, 0)],
    ["2026-11-25 10:00Z", Date.UTC(2026, 10, 25, 10, 0)],
    ["2026-11-25T10:00:00+02:00", Date.UTC(2026, 10, 25, 8, 0)],
    ["2026-11-25T10:00:00-0530", Date.UTC(2026, 10, 25, 15, 30)],
    ["2026-11-25Z", Date.UTC(2026, 10, 25)],
    ["2026-11-25+01:00", Date.UTC(2026, 10, 24, 23, 0)],
    ["  2026-11-25T10:00:00Z \n", Date.UTC(2026, 10, 25, 10, 0)],
    ["2028-02-29T00:00Z", Date.UTC(2028, 1, 29)],
    ["2000-02-29T00:00Z", Date.UTC(2000, 1, 29)],
  ];
  for (const [text, ms] of cases) assert.equal(parseInstant(text), ms, JSON.stringify(text));
});

Deno.test("duration: parseInstant reads an instant without an offset as local time", () => {
  assert.equal(parseInstant("2026-11-25T10:00"), new Date(2026, 10, 25, 10, 0).getTime());
  assert.equal(parseInstant("2026-11-25 10:00:30"), new Date(2026, 10, 25, 10, 0, 30).getTime());
  // A bare date is local midnight too, not UTC midnight as Date.parse would have it.
  assert.equal(parseInstant("2026-11-25"), new Date(2026, 10, 25).getTime());
});

Deno.test("duration: parseInstant returns null for text and for dates not on the calendar", () => {
  const bad = [
    "",
    "tomorrow",
    "now",
    "1795600800000",
    "2026-11-25T10",
    "2026-11-25T10Z",
    "2026/11/25",
    "25-11-2026",
    "2026-1-5",
    "2026-11-25T10:00:00ZZ",
    "2026-11-25T1:00",
    "2026-13-01",
    "2026-00-10",
    "2026-11-00",
    "2026-11-31",
    "2026-02-29",
    "2100-02-29",
    "2026-02-30T10:00:00Z",
    "2026-11-25T24:00Z",
    "2026-11-25T10:60Z",
    "2026-11-25T10:00:60Z",
    "2026-11-25T10:00+25:00",
  ];
  for (const text of bad) assert.equal(parseInstant(text), null, JSON.stringify(text));
});

Deno.test("duration: formatDurationExact keeps every unit and parses back", () => {
  const cases: Array<[number, string]> = [
    [0, "0s"],
    [250, "250ms"],
    [1_500, "1s500ms"],
    [30_000, "30s"],
    [90_000, "1m30s"],
    [3_600_000, "1h"],
    [3_601_000, "1h1s"],
    [5_400_000, "1h30m"],
    [30 * 86_400_000, "30d"],
  ];
  for (const [ms, text] of cases) {
    assert.equal(formatDurationExact(ms), text, String(ms));
    assert.equal(parseDurationMs(text), ms, text);
  }
});
