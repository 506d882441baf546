/**
 * The layering of the style guide, checked over the sources: dependencies point one way
 * (`lib/cli` → `workers`, `lib/store`, `lib/job`; `lib/store` → `lib/job`; `lib/job` → nothing)
 * and all SQL lives in `lib/store/`. Imports are found with a regular expression and string
 * literals with a small lexer, over the files as they are on disk; a failure names the file, the
 * line and the offending import or string.
 */
import assert from "node:assert/strict";
import { ROOT } from "./helpers.ts";

/** Directories (relative to the root, with a trailing slash) never scanned. */
const SKIP = [".git/", "node_modules/", "bench/parsers/"];

/**
 * Where SQL may appear in string literals: the store, the tests (some are about the SQLite file
 * itself), and the benchmark, which seeds and measures the SQLite file directly.
 */
const SQL_ALLOWED = ["lib/store/", "tests/", "bench/"];

/** Every .ts file under the root, as a path relative to it. */
async function sources(): Promise<string[]> {
  const found: string[] = [];
  const walk = async (rel: string) => {
    for await (const e of Deno.readDir(`${ROOT}${rel}`)) {
      const path = `${rel}${e.name}`;
      if (e.isDirectory) {
        if (!SKIP.includes(`${path}/`)) await walk(`${path}/`);
      } else if (e.isFile && path.endsWith(".ts")) {
        found.push(path);
      }
    }
  };
  await walk("");
  return found.sort();
}

export interface Import {
  /** 1-based line of the `import`/`export … from`. */
  line: number;
  specifier: string;
  /** The specifier resolved to a path relative to the root (relative specifiers only). */
  target: string | null;
}

/** The static, side-effect and dynamic imports (and re-exports) of `text`, the source of `file`. */
export function importsOf(file: string, text: string): Import[] {
  const found: Import[] = [];
  const patterns = [
    /^[ \t]*(?:import|export)\b[^;'"`]*?\bfrom\s*(["'])([^"']+)\1/gm,
    /^[ \t]*import\s*(["'])([^"']+)\1/gm,
    /\bimport\(\s*(["'])([^"']+)\1\s*\)/g,
  ];
  for (const re of patterns) {
    for (const m of text.matchAll(re)) {
      const specifier = m[2];
      const line = text.slice(0, m.index).split("\n").length +
        (m[0].match(/^\s*/)![0].split("\n").length - 1);
      found.push({ line, specifier, target: resolveSpecifier(file, specifier) });
    }
  }
  return found.sort((a, b) => a.line - b.line);
}

function resolveSpecifier(file: string, specifier: string): string | null {
  if (!specifier.startsWith("./") && !specifier.startsWith("../")) return null;
  const parts = file.split("/").slice(0, -1);
  for (const p of specifier.split("/")) {
    if (p === "..") parts.pop();
    else if (p !== ".") parts.push(p);
  }
  return parts.join("/");
}

/** A string literal of a source: its text (template substitutions left out) and its line. */
export interface Literal {
  line: number;
  text: string;
}

/**
 * The string literals of TypeScript source `text`: '…', "…" and `…` (the parts of a template
 * outside `${…}`; the substitutions are lexed as code). Comments and regular expression literals
 * are skipped.
 */
export function stringLiterals(text: string): Literal[] {
  const out: Literal[] = [];
  let i = 0;
  let line = 1;
  // The last significant character of code, to tell a regular expression from a division.
  let prev = "";
  const next = () => {
    const c = text[i++];
    if (c === "\n") line++;
    return c;
  };
  const quoted = (q: string) => {
    const start = line;
    let s = "";
    while (i < text.length) {
      const c = next();
      if (c === "\\") s += next() ?? "";
      else if (c === q || (c === "\n" && q !== "`")) break;
      else s += c;
    }
    out.push({ line: start, text: s });
  };
  const template = () => {
    const start = line;
    let s = "";
    while (i < text.length) {
      const c = next();
      if (c === "\\") s += next() ?? "";
      else if (c === "`") break;
      else if (c === "$" && text[i] === "{") {
        next();
        code("}");
        s += " ";
      } else s += c;
    }
    out.push({ line: start, text: s });
  };
  const regex = () => {
    let inClass = false;
    while (i < text.length) {
      const c = next();
      if (c === "\\") next();
      else if (c === "[") inClass = true;
      else if (c === "]") inClass = false;
      else if ((c === "/" && !inClass) || c === "\n") break;
    }
    while (/[a-z]/i.test(text[i] ?? "")) next();
  };
  /** Lexes code until `close` (a `}` that ends a template substitution) or the end. */
  const code = (close: string | null) => {
    let depth = 0;
    while (i < text.length) {
      const c = text[i];
      if (c === "/" && text[i + 1] === "/") {
        while (i < text.length && text[i] !== "\n") next();
      } else if (c === "/" && text[i + 1] === "*") {
        next();
        next();
        while (i < text.length && !(text[i] === "*" && text[i + 1] === "/")) next();
        next();
        next();
      } else if (c === '"' || c === "'") {
        next();
        quoted(c);
        prev = "a";
      } else if (c === "`") {
        next();
        template();
        prev = "a";
      } else if (c === "/" && (prev === "" || "(,=:[!&|?{};+-*%<>~^".includes(prev))) {
        next();
        regex();
        prev = "a";
      } else {
        next();
        if (c === "{") depth++;
        if (c === "}") {
          if (depth === 0 && close === "}") return;
          depth--;
        }
        if (!/\s/.test(c)) prev = c;
      }
    }
  };
  code(null);
  return out;
}

/** SQL statements as queuectl writes them: upper-case keywords. */
const SQL =
  /\bSELECT\b[\s\S]*\bFROM\b|\bUPDATE\s+\w+\s+SET\b|\bINSERT\s+(OR\s+\w+\s+)?INTO\b|\bDELETE\s+FROM\b|\bCREATE\s+(TABLE|(UNIQUE\s+)?INDEX|TRIGGER|VIEW)\b|\bPRAGMA\s+\w+/;

/** `file:line: "…"` for each string literal of `text` that holds SQL. */
export function sqlIn(file: string, text: string): string[] {
  return stringLiterals(text).filter((l) => SQL.test(l.text)).map((l) =>
    `${file}:${l.line}: ${JSON.stringify(l.text.trim().replace(/\s+/g, " ").slice(0, 60))}`
  );
}

/** `file:line imports specifier` for each import of `file` into a directory in `forbidden`. */
function forbiddenImports(file: string, text: string, forbidden: string[]): string[] {
  return importsOf(file, text)
    .filter((imp) =>
      imp.target !== null && forbidden.some((f) => imp.target === f || imp.target!.startsWith(f))
    )
    .map((imp) => `${file}:${imp.line} imports ${imp.specifier}`);
}

async function read(file: string): Promise<string> {
  return await Deno.readTextFile(`${ROOT}${file}`);
}

Deno.test("layering: lib/job.ts imports nothing", async () => {
  const found = importsOf("lib/job.ts", await read("lib/job.ts"))
    .map((imp) => `lib/job.ts:${imp.line} imports ${imp.specifier}`);
  assert.deepEqual(found, [], "lib/job.ts is the pure state machine: it must import nothing");
});

Deno.test("layering: lib/store/ imports no CLI or worker code", async () => {
  const found: string[] = [];
  for (const file of (await sources()).filter((f) => f.startsWith("lib/store/"))) {
    found.push(...forbiddenImports(file, await read(file), ["lib/cli/", "workers/", "main.ts"]));
  }
  assert.deepEqual(found, [], "lib/store/ may import lib/job.ts and helpers, never CLI or workers");
});

Deno.test("layering: workers/ imports no CLI code", async () => {
  const found: string[] = [];
  for (const file of (await sources()).filter((f) => f.startsWith("workers/"))) {
    found.push(...forbiddenImports(file, await read(file), ["lib/cli/", "main.ts"]));
  }
  assert.deepEqual(found, [], "workers/ must not import lib/cli/ (the CLI calls the workers)");
});

Deno.test("layering: no SQL outside lib/store/", async () => {
  const found: string[] = [];
  for (const file of await sources()) {
    if (SQL_ALLOWED.some((d) => file.startsWith(d))) continue;
    found.push(...sqlIn(file, await read(file)));
  }
  assert.deepEqual(found, [], "all SQL lives in lib/store/; call a Store method instead");
});

Deno.test("layering: the checks find multi-line, side-effect and dynamic imports, and SQL in any string", () => {
  const src = [
    "/** SELECT nothing FROM a comment */",
    "import type {",
    "  Job,",
    '} from "../cli/format.ts";',
    'import "../../workers/worker.ts";',
    'export { x } from "./sqlite.ts";',
    'const re = /"/; const n = 1 / 2;',
    'const q = `SELECT * FROM jobs WHERE id = ${"x"}`;',
    "const r = 'UPDATE jobs SET state = ?';",
    'await import("../cli/program.ts");',
    "// DELETE FROM jobs in a comment",
    'const s = "Select the jobs from the list";',
  ].join("\n");
  assert.deepEqual(
    importsOf("lib/store/x.ts", src).map((i) => [i.line, i.target]),
    [[2, "lib/cli/format.ts"], [5, "workers/worker.ts"], [6, "lib/store/sqlite.ts"], [
      10,
      "lib/cli/program.ts",
    ]],
  );
  assert.deepEqual(
    forbiddenImports("lib/store/x.ts", src, ["lib/cli/", "workers/"]),
    [
      "lib/store/x.ts:2 imports ../cli/format.ts",
      "lib/store/x.ts:5 imports ../../workers/worker.ts",
      "lib/store/x.ts:10 imports ../cli/program.ts",
    ],
  );
  assert.deepEqual(sqlIn("x.ts", src), [
    'x.ts:8: "SELECT * FROM jobs WHERE id ="',
    'x.ts:9: "UPDATE jobs SET state = ?"',
  ]);
});
