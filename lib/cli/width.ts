/**
 * How many terminal columns text takes, and cutting it to fit: CJK and emoji take two columns,
 * combining marks and joiners none. East Asian Width comes from `get-east-asian-width` (the
 * Unicode table, no dependencies); grapheme clusters from `Intl.Segmenter`, used only for text
 * that is not plain ASCII. No I/O here.
 */
import { eastAsianWidth } from "get-east-asian-width";

// deno-lint-ignore no-control-regex -- the colour codes format.ts adds take no columns
const ANSI = /\x1b\[[0-9;]*m/g;
const ZERO_WIDTH = /^[\p{Mn}\p{Me}\p{Cf}\p{Cc}]$/u;
const PICTOGRAPHIC = /\p{Extended_Pictographic}/u;
const REGIONAL = /^\p{Regional_Indicator}{2}$/u;

let segmenter: Intl.Segmenter | undefined;
function graphemes(text: string): string[] {
  segmenter ??= new Intl.Segmenter(undefined, { granularity: "grapheme" });
  return Array.from(segmenter.segment(text), (s) => s.segment);
}

/** The columns one grapheme cluster takes: 0, 1 or 2. */
function clusterWidth(g: string): number {
  const first = g.codePointAt(0)!;
  if (first < 0x7f) return first < 0x20 ? 0 : 1;
  const base = String.fromCodePoint(first);
  if (ZERO_WIDTH.test(base) && g.length === base.length) return 0;
  // An emoji sequence (with VS16 or a joiner) or a flag shows as one wide glyph.
  if (REGIONAL.test(g)) return 2;
  if (PICTOGRAPHIC.test(base) && (g.includes("\ufe0f") || g.includes("\u200d"))) return 2;
  return eastAsianWidth(first);
}

/** Terminal columns of `text`, ignoring the colour codes this CLI adds. */
export function displayWidth(text: string): number {
  const plain = text.replace(ANSI, "");
  if (/^[\x20-\x7e]*$/.test(plain)) return plain.length;
  let w = 0;
  for (const g of graphemes(plain)) w += clusterWidth(g);
  return w;
}

/** The longest start of `text` (whole grapheme clusters) that fits in `width` columns. */
function prefixFitting(text: string, width: number): string {
  let w = 0;
  let end = 0;
  for (const g of graphemes(text)) {
    w += clusterWidth(g);
    if (w > width) break;
    end += g.length;
  }
  return text.slice(0, end);
}

/**
 * Cuts `text` (plain, no colour codes) to at most `width` columns, ending in `…` when cut. It
 * breaks between words, never inside one; only text whose first word alone does not fit (an id,
 * a path) is cut inside that word, since nothing shorter would show it.
 */
export function truncate(text: string, width: number): string {
  if (displayWidth(text) <= width) return text;
  if (width <= 1) return width === 1 ? "…" : "";
  const head = prefixFitting(text, width - 1);
  // Where the word that was cut starts: keep what is before it, if anything.
  const rest = text.slice(head.length);
  const wordCut = rest !== "" && !/^\s/.test(rest);
  const lastSpace = head.search(/\s\S*$/);
  const cut = wordCut && lastSpace > 0 ? head.slice(0, lastSpace) : head;
  return cut.trimEnd() + "…";
}
