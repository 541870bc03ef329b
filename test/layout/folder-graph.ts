import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve, sep } from 'node:path';
import ts from 'typescript';

/**
 * The import graph between the rooms of the repository: each top-level folder of src/ (src/dicom, src/imaging;
 * a file directly in src/ is a room of its own) and each other top-level folder (cds-hooks, smart-app). Read
 * with the TypeScript compiler's own import scanner: static, type-only, re-export and dynamic imports all
 * count, since each is a dependency a reader has to follow.
 */
export interface FolderEdge {
  from: string;
  to: string;
  /** One importing file and its specifier, to name in a failure. */
  example: string;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return e.name === 'node_modules' || e.name === 'dist' ? [] : sourceFiles(p);
    return /\.(ts|mts|mjs)$/.test(e.name) && !e.name.endsWith('.d.ts') ? [p] : [];
  });
}

/** `src/dicom/parse.ts` -> `src/dicom`; `src/config.ts` -> `src/config.ts`; `cds-hooks/router.ts` -> `cds-hooks`. */
function roomOf(root: string, file: string): string {
  const parts = relative(root, file).split(sep);
  return parts[0] === 'src' ? `src/${parts[1]}` : parts[0];
}

/** One relative import: the importing file and the imported path, both relative to the root (`/`-separated). */
export interface FileImport {
  file: string;
  target: string;
  specifier: string;
}

/** Every relative import of the files under `dirs` (relative to `root`); imports leaving `root` are ignored. */
export function fileImports(root: string, dirs: readonly string[]): FileImport[] {
  const posix = (p: string): string => p.split(sep).join('/');
  return dirs.flatMap((d) => sourceFiles(join(root, d))).flatMap((file) =>
    ts
      .preProcessFile(readFileSync(file, 'utf8'), true, true)
      .importedFiles.filter((ref) => ref.fileName.startsWith('.'))
      .map((ref) => ({ file: posix(relative(root, file)), target: posix(relative(root, resolve(dirname(file), ref.fileName))), specifier: ref.fileName }))
      .filter((i) => !i.target.startsWith('..')),
  );
}

/** Edges between rooms of the folders `dirs` (relative to `root`); imports leaving `root` are ignored. */
export function folderEdges(root: string, dirs: readonly string[]): FolderEdge[] {
  const edges = new Map<string, FolderEdge>();
  for (const i of fileImports(root, dirs)) {
    const from = roomOf(root, join(root, i.file));
    const to = roomOf(root, join(root, i.target));
    const key = `${from}->${to}`;
    if (from !== to && !edges.has(key)) edges.set(key, { from, to, example: `${i.file} imports ${i.specifier}` });
  }
  return [...edges.values()];
}

/** Every cycle's rooms (strongly connected components of more than one room, Tarjan's algorithm). */
export function folderCycles(edges: readonly FolderEdge[]): string[][] {
  const next = new Map<string, string[]>();
  for (const e of edges) next.set(e.from, [...(next.get(e.from) ?? []), e.to]);
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, index.size);
    low.set(v, index.get(v)!);
    stack.push(v);
    onStack.add(v);
    for (const w of next.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1) out.push(scc.sort());
    }
  };
  for (const v of new Set(edges.flatMap((e) => [e.from, e.to]))) if (!index.has(v)) visit(v);
  return out;
}

/**
 * A throw-away source tree for checking the checks: `file(path, text)` writes a file under `dir`, and
 * `remove()` deletes the tree (call it from afterAll).
 */
export function scratchTree(prefix: string): { dir: string; file: (path: string, text: string) => void; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return {
    dir,
    file: (path, text) => {
      mkdirSync(dirname(join(dir, path)), { recursive: true });
      writeFileSync(join(dir, path), text);
    },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
