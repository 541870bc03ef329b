import { describe, expect, it } from 'vitest';
import { buildAnalysisBundle } from '../../src/fhir/bundle.js';
import { ACR_BANDS_WORDS, categoryLabel, categoryRange, resultHeadline } from '../../src/fhir/result-words.js';
import { makeReport } from '../smart-app/fixtures.js';

/** One vocabulary: the FHIR text vbmd writes says "low bone density (osteopenia)", as the card and the app do,
 * never "osteopenia" alone (SNOMED's own display of 312894000 excepted: a code's display is the code system's). */
describe('result words', () => {
  it('name the categories one way', () => {
    expect(categoryRange('osteopenia')).toBe('low bone density (osteopenia) range');
    expect(categoryLabel('osteoporosis')).toBe('Osteoporosis range');
    expect(resultHeadline('osteopenia', '98.0 mg/cm3', '2026-01-01')).toBe('Low bone density (osteopenia) range: vBMD 98.0 mg/cm3 on CT of 2026-01-01');
    expect(ACR_BANDS_WORDS).toBe('> 120 normal, 80-120 low bone density (osteopenia), < 80 osteoporosis (mg/cm3, ACR QCT)');
  });

  it('are the words of every text an osteopenic result set carries in FHIR', () => {
    const report = makeReport({ studyUid: '1.2.826.0.1.3680043.8.498.77', acquired: '2026-01-01T00:00:00Z', levels: [{ level: 'L1', vbmd: 100 }, { level: 'L2', vbmd: 96 }] });
    const bundle = buildAnalysisBundle(report, { patient: 'Patient/p' });
    const texts: string[] = [];
    const walk = (v: unknown, key: string): void => {
      if (typeof v === 'string' && /osteopenia/i.test(v) && key !== 'display') texts.push(v);
      else if (Array.isArray(v)) v.forEach((x) => walk(x, key));
      else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) walk(x, k);
    };
    walk(bundle, '');
    expect(texts.length).toBeGreaterThanOrEqual(4);
    for (const t of texts) expect(t.replace(/low bone density \(osteopenia\)/gi, '')).not.toMatch(/osteopenia/i);
    const obs = bundle.entry!.map((e) => e.resource!).find((r) => r.resourceType === 'Observation' && 'interpretation' in r) as { interpretation: { text: string }[] };
    expect(obs.interpretation[0]!.text).toBe('vBMD in the low bone density (osteopenia) range (ACR QCT)');
  });
});
