// One start of a cron library in a process that has loaded the CLI's parser already, as the
// `schedule` command does: prints the ms of its import, of the first time-zone use of Intl (ICU
// data, paid by any zone-aware library), and of the first parse and next-tick. Run by
// bench/cron_libs.ts with a library name: croner or cron-parser.
await import("npm:@stricli/core@1.3.0");
const which = Deno.args[0];
const t0 = performance.now();
const mod = which === "croner"
  ? await import("npm:croner@11.0.0")
  : await import("npm:cron-parser@5.10.5");
const t1 = performance.now();
new Intl.DateTimeFormat("en", { timeZone: "Europe/Paris", hour: "numeric" }).format(new Date());
const t2 = performance.now();
if (which === "croner") new mod.Cron("0 2 * * *", { timezone: "Europe/Paris" }).nextRun();
else mod.CronExpressionParser.parse("0 2 * * *", { tz: "Europe/Paris" }).next();
const t3 = performance.now();
console.log(JSON.stringify({ import: t1 - t0, intl: t2 - t1, first: t3 - t2 }));
