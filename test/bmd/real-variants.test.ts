import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { evaluateVariant, formatFailures, formatResults, loadRealCase, type RealCase, type VariantResult } from '../../src/research/evaluation/real-eval.js';
import { variantsOf, type CaseName } from '../../src/research/evaluation/real-variants.js';
import { REAL_DATA_DIR, realCaseAvailable } from '../support/shared-data.js';

/**
 * The real-CT yardstick (the real scans of README.md "Accuracy"): the Philips chest CT and the TotalSegmentator
 * example from ../shared, and variants of both whose reference levels carry over by coordinates (crops, thicker
 * slices, noise, a tilted patient, contrast in the aorta, clipped values), each through `vbmd analyze`'s path
 * (geometric ROI, no model: finding and naming do not depend on it). Per variant: no label wrong at confidence >=
 * 0.8, no fully covered body skipped or split, every covered body named right where a naming anchor is in view, and
 * no confident label where none is; the two originals also meet their own acceptance
 * (src/research/evaluation/real-variants.ts `strict`).
 *
 * One variant: `npx vitest run test/bmd/real-variants.test.ts -t philips/tilted`, or `vbmd eval-real --only philips/tilted`.
 */
const CASES: [CaseName, string[]][] = [
  ['philips-chest-ct', ['dicom', 'reference-levels.json']],
  ['totalseg-example', ['example_ct.nii.gz', 'vertebral_bodies.nii.gz', 'vertebrae_whole.nii.gz']],
];

/**
 * Variants where the engine does not yet name the covered bodies although an anchor is in view. It says so
 * itself (every label there is under 0.8, so nothing wrong is reported as sure); the safety rules still hold
 * and are asserted. Listed so the gap stays visible: the test fails when a listed variant starts to pass, so
 * the entry is removed then.
 */
const KNOWN_NAMING_GAPS: Record<string, string> = {};
const SAFETY = /^(named wrongly|fully covered bodies not reported|bodies reported more than once|no naming anchor in view)/;

const results: VariantResult[] = [];

afterAll(() => {
  if (results.length > 0) console.log(`\n${formatResults(results)}${formatFailures(results)}`);
});

for (const [name, files] of CASES) {
  describe.skipIf(!realCaseAvailable(name, files))(`real CT variants: ${name}`, () => {
    let c: RealCase;
    beforeAll(async () => {
      c = await loadRealCase(REAL_DATA_DIR, name);
    });

    for (const variant of variantsOf(name)) {
      it(`${variant.name}: ${variant.description}`, async () => {
        const r = await evaluateVariant(c, variant, { model: null });
        results.push(r);
        expect(r.score.covered.length, 'the variant keeps some fully covered reference body').toBeGreaterThan(0);
        const gap = KNOWN_NAMING_GAPS[variant.name];
        if (gap === undefined) {
          expect(r.failures, `${variant.name}\n${formatResults([r])}`).toEqual([]);
          return;
        }
        // Known naming gap: the safety rules hold, no label is sure, and the gap is still there.
        expect(r.failures.filter((f) => SAFETY.test(f)), `${variant.name}\n${formatResults([r])}`).toEqual([]);
        expect(r.score.maxConfidence, `${variant.name}: ${gap}`).toBeLessThan(0.8);
        expect(r.failures.length, `${variant.name} now passes: remove it from KNOWN_NAMING_GAPS`).toBeGreaterThan(0);
      });
    }
  });
}
