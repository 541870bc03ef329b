import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { folderCycles, folderEdges, type FolderEdge, scratchTree } from './folder-graph.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

function describeCycle(cycle: string[], edges: readonly FolderEdge[]): string {
  const inside = edges.filter((e) => cycle.includes(e.from) && cycle.includes(e.to));
  return `${cycle.join(' <-> ')}: ${inside.map((e) => `${e.from} -> ${e.to} (${e.example})`).join('; ')}`;
}

describe('dependencies between folders point one way', () => {
  const edges = folderEdges(ROOT, ['src', 'cds-hooks', 'smart-app']);

  it('no import cycle between the top-level folders of src/, cds-hooks and smart-app', () => {
    expect(edges.length).toBeGreaterThan(20);
    expect(folderCycles(edges).map((c) => describeCycle(c, edges))).toEqual([]);
  });

  it('dicom is above imaging: src/imaging imports nothing from src/dicom', () => {
    expect(edges.some((e) => e.from === 'src/dicom' && e.to === 'src/imaging')).toBe(true);
    expect(edges.filter((e) => e.from === 'src/imaging' && e.to === 'src/dicom')).toEqual([]);
  });

  it('src/bmd knows nothing of HTTP, FHIR, DICOM files or the jobs', () => {
    const out = edges.filter((e) => e.from === 'src/bmd').map((e) => e.to);
    for (const room of ['src/fhir', 'src/dicom', 'src/jobs', 'src/net', 'cds-hooks', 'smart-app']) expect(out).not.toContain(room);
  });
});

describe('the cycle finder', () => {
  const { dir, file, remove } = scratchTree('vbmd-folder-graph-');
  afterAll(remove);

  it('finds a cycle made of a type-only import and a dynamic import, and names the files', () => {
    file('src/a/one.ts', "import type { B } from '../b/two.js';\nexport type A = B;\n");
    file('src/b/two.ts', "export type B = number;\nexport const load = () => import('../c/three.js');\n");
    file('src/c/three.ts', "export { one } from '../a/four.js';\n");
    file('src/a/four.ts', 'export const one = 1;\n');
    file('src/d/leaf.ts', "import { one } from '../a/four.js';\nexport const two = one + 1;\n");
    const edges = folderEdges(dir, ['src']);
    expect(folderCycles(edges)).toEqual([['src/a', 'src/b', 'src/c']]);
    expect(describeCycle(['src/a', 'src/b', 'src/c'], edges)).toContain('a/one.ts imports ../b/two.js');
  });

  it('reports nothing for a graph that only points one way', () => {
    const edges: FolderEdge[] = [
      { from: 'src/x', to: 'src/y', example: '' },
      { from: 'src/y', to: 'src/z', example: '' },
      { from: 'src/x', to: 'src/z', example: '' },
    ];
    expect(folderCycles(edges)).toEqual([]);
  });
});
