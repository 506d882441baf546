/**
 * What the cron library of `queuectl schedule` costs at start-up, next to the other well-kept
 * one: `croner` and `cron-parser` (with luxon), each imported in a fresh process after the CLI's
 * parser, alternating over the rounds. Reports medians (ms) of the import, of the first
 * time-zone use of Intl (the same for both: ICU data), and of the first parse and next tick.
 * The fixture (bench/parsers/cron_libs.ts) pins its versions and runs without the project's lock.
 *
 *   deno run --quiet --allow-read --allow-run bench/cron_libs.ts [--rounds 15]
 */
const fixture = new URL("./parsers/cron_libs.ts", import.meta.url).pathname;
const i = Deno.args.indexOf("--rounds");
const rounds = i === -1 ? 15 : Number(Deno.args[i + 1]);
const libs = ["croner", "cron-parser"];
const seen: Record<string, Array<Record<string, number>>> = { croner: [], "cron-parser": [] };
for (let r = 0; r < rounds; r++) {
  for (const lib of r % 2 ? [...libs].reverse() : libs) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--quiet", "--no-lock", "--no-config", "--allow-env", fixture, lib],
      stderr: "inherit",
    }).output();
    if (!out.success) throw new Error(`${lib}: exited ${out.code}`);
    seen[lib].push(JSON.parse(new TextDecoder().decode(out.stdout)));
  }
}
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};
console.log(
  `| library (${rounds} runs each) | import ms | first Intl zone ms | first parse + next ms |`,
);
console.log("| --- | --: | --: | --: |");
for (const lib of libs) {
  const m = (k: string) => median(seen[lib].map((x) => x[k])).toFixed(1);
  console.log(`| ${lib} | ${m("import")} | ${m("intl")} | ${m("first")} |`);
}
