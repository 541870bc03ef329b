import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

/**
 * Rooms a reader can take in: no source file over 450 lines and no function over 80 lines outside tests. A
 * function that must be longer is listed here with the reason, where a reviewer sees it.
 */
const ROOT = resolve(__dirname, '../..');
const SCANNED = ['src', 'cds-hooks', 'smart-app'];
const SKIP = /(^|\/)(node_modules|dist|screenshots)\//;
const MAX_FILE_LINES = 450;
const MAX_FUNCTION_LINES = 80;
const LONG_FUNCTIONS: Record<string, string> = {
  'src/imaging/hu-simd.ts moduleBytes': 'a hand-assembled WebAssembly module, byte by byte; split, it would not read better',
};

function sources(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (SKIP.test(`${relative(ROOT, path)}/`)) continue;
    if (statSync(path).isDirectory()) sources(path, out);
    else if (/\.(ts|tsx|mts)$/.test(name) && !name.endsWith('.d.ts')) out.push(path);
  }
  return out;
}

/** Functions longer than MAX_FUNCTION_LINES in one file, as "path name" keys with their lengths. */
function longFunctions(path: string, rel: string): { key: string; lines: number }[] {
  const sf = ts.createSourceFile(path, readFileSync(path, 'utf8'), ts.ScriptTarget.Latest, true);
  const out: { key: string; lines: number }[] = [];
  const visit = (n: ts.Node): void => {
    const fn = ts.isFunctionDeclaration(n) || ts.isMethodDeclaration(n) || ts.isArrowFunction(n) || ts.isFunctionExpression(n);
    if (fn && n.body) {
      const lines = sf.getLineAndCharacterOfPosition(n.getEnd()).line - sf.getLineAndCharacterOfPosition(n.getStart()).line + 1;
      const name = (ts.isFunctionDeclaration(n) || ts.isMethodDeclaration(n)) && n.name ? n.name.getText(sf) : '(anonymous)';
      if (lines > MAX_FUNCTION_LINES) out.push({ key: `${rel} ${name}`, lines });
    }
    ts.forEachChild(n, visit);
  };
  visit(sf);
  return out;
}

describe('room sizes', () => {
  const files = SCANNED.flatMap((d) => sources(join(ROOT, d)));

  it(`has no source file over ${MAX_FILE_LINES} lines`, () => {
    expect(files.length).toBeGreaterThan(100);
    const long = files.map((f) => ({ f: relative(ROOT, f), n: readFileSync(f, 'utf8').split('\n').length - 1 })).filter((x) => x.n > MAX_FILE_LINES);
    expect(long.map((x) => `${x.f} ${x.n}`)).toEqual([]);
  });

  it(`has no function over ${MAX_FUNCTION_LINES} lines but the listed ones`, () => {
    const long = files.flatMap((f) => longFunctions(f, relative(ROOT, f)));
    expect(long.filter((l) => !LONG_FUNCTIONS[l.key]).map((l) => `${l.key} ${l.lines}`)).toEqual([]);
    // A listed exception that is no longer long (or gone) is taken off the list.
    expect(Object.keys(LONG_FUNCTIONS).filter((key) => !long.some((l) => l.key === key))).toEqual([]);
  });
});
