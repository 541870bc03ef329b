import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { fileImports, type FileImport, scratchTree } from './folder-graph.js';

/**
 * The wings: what is not the product's path lives in two folders, and the product never imports them.
 * src/sandbox is the fake EHR (FHIR server, SMART server, demo data), src/research the phantoms, evaluations
 * and training data. A file outside the wings may import them only when it is listed here with the reason, where
 * a reviewer sees it: the commands that compose the sandbox or run research. Tests are outside the rule.
 */
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const SCANNED = ['src', 'cds-hooks', 'smart-app', 'models', 'bin'];
const WINGS = ['src/sandbox', 'src/research'];
const DOORS: Record<string, string> = {
  'src/cli/service-sandbox.ts': "`vbmd start`'s sandbox builder: the in-process FHIR server, the SMART server (loaded lazily), demo data and study",
  'src/cli/service.ts': "`vbmd start`: the sandbox's DICOM folder when nothing is configured, the demo patients and token file in its banner",
  'src/cli/hook.ts': "`vbmd hook` plays the EHR: the sandbox's CDS client key and FHIR token are its defaults",
  'src/cli/phantom.ts': '`vbmd phantom`, a research command',
  'src/cli/eval-phantoms.ts': '`vbmd eval-phantoms`, a research command',
  'src/cli/evaluate.ts': '`vbmd evaluate`, a research command',
  'src/cli/eval-real.ts': '`vbmd eval-real`, a research command',
  'src/cli/export-patches.ts': '`vbmd export-patches`, a research command',
};

const inWing = (path: string, wings: readonly string[]): boolean => wings.some((w) => path.startsWith(`${w}/`));

/** Imports into a wing from a file that is neither in a wing nor a listed door, as "file imports specifier". */
export function wingViolations(imports: readonly FileImport[], wings: readonly string[], doors: readonly string[]): string[] {
  return imports
    .filter((i) => inWing(i.target, wings) && !inWing(i.file, wings) && !doors.includes(i.file))
    .map((i) => `${i.file} imports ${i.specifier}`);
}

describe('the wings: the product never imports src/sandbox or src/research', () => {
  const imports = fileImports(ROOT, SCANNED);

  it('no file outside the wings imports them, but the listed doors', () => {
    expect(imports.length).toBeGreaterThan(500);
    expect(wingViolations(imports, WINGS, Object.keys(DOORS))).toEqual([]);
  });

  it('each listed door still imports a wing (a door no longer used is taken off the list)', () => {
    const used = new Set(imports.filter((i) => inWing(i.target, WINGS)).map((i) => i.file));
    expect(Object.keys(DOORS).filter((f) => !used.has(f))).toEqual([]);
  });

  it('the research wing knows nothing of the fake EHR', () => {
    expect(imports.filter((i) => inWing(i.file, ['src/research']) && inWing(i.target, ['src/sandbox']))).toEqual([]);
  });
});

describe('the wing check', () => {
  const { dir, file, remove } = scratchTree('vbmd-wings-');
  afterAll(remove);

  it('names a product file that imports a wing, type-only or dynamic, and lets wings and doors through', () => {
    file('src/sandbox/demo/data.ts', "import { x } from '../../research/gen.js';\nexport const d = x;\n");
    file('src/research/gen.ts', 'export const x = 1;\n');
    file('src/bmd/analyze.ts', "import type { d } from '../sandbox/demo/data.js';\nexport type A = typeof d;\n");
    file('src/jobs/engine.ts', "export const load = () => import('../research/gen.js');\n");
    file('src/cli/door.ts', "import { x } from '../research/gen.js';\nexport const y = x;\n");
    const found = wingViolations(fileImports(dir, ['src']), WINGS, ['src/cli/door.ts']).sort();
    expect(found).toEqual(['src/bmd/analyze.ts imports ../sandbox/demo/data.js', 'src/jobs/engine.ts imports ../research/gen.js']);
  });
});
