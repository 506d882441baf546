/**
 * The few path operations queuectl needs, without `node:path`: importing it loads Deno's
 * Node-compat layer, ~6 ms on every CLI call (PLATFORM.md). Accepts `/` and, on Windows, `\`.
 */

const isWindows = Deno.build.os === "windows";
const SEP = isWindows ? "\\" : "/";
const isSep = (c: string) => c === "/" || (isWindows && c === "\\");

/** True for `/x`, `C:\x`, `\\server\x`. */
export function isAbsolute(p: string): boolean {
  return isSep(p[0] ?? "") || (isWindows && /^[A-Za-z]:[\\/]/.test(p));
}

/** Joins segments with one separator between them. */
export function join(...parts: string[]): string {
  return parts.filter((p) => p !== "").map((p, i) => {
    let s = p;
    if (i > 0) { while (s.length > 0 && isSep(s[0])) s = s.slice(1); }
    while (s.length > 1 && isSep(s[s.length - 1])) s = s.slice(0, -1);
    return s;
  }).join(SEP);
}

/** Everything before the last separator (`/` for a top-level entry, `.` for a bare name). */
export function dirname(p: string): string {
  let end = p.length;
  while (end > 1 && isSep(p[end - 1])) end--;
  for (let i = end - 1; i >= 0; i--) {
    if (isSep(p[i])) return i === 0 ? p[0] : p.slice(0, i);
  }
  return ".";
}

/** The last segment. */
export function basename(p: string): string {
  let end = p.length;
  while (end > 1 && isSep(p[end - 1])) end--;
  let start = end;
  while (start > 0 && !isSep(p[start - 1])) start--;
  return p.slice(start, end);
}

/** An absolute, normalized path (`.` and `..` resolved) from `p` and the current directory. */
export function resolve(p: string): string {
  const abs = isAbsolute(p) ? p : join(Deno.cwd(), p);
  const root = isWindows && /^[A-Za-z]:/.test(abs) ? abs.slice(0, 2) : "";
  const out: string[] = [];
  for (const seg of abs.slice(root.length).split(/[\\/]/)) {
    if (seg === "" || seg === ".") continue;
    if (seg === "..") out.pop();
    else out.push(seg);
  }
  return root + SEP + out.join(SEP);
}
