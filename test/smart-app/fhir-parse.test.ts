import { describe, expect, it } from 'vitest';
import { buildAnalysisBundle } from '../../src/fhir/bundle.js';
import { SMART_APP_CLIENT_ID, SMART_EHR_LAUNCH_SCOPE, SMART_STANDALONE_LAUNCH_SCOPE } from '../../src/sandbox/smart-auth/index.js';
import { latestRisk, parsePatient, parseVbmdObservation, parseVbmdObservations, shortenSha } from '../../smart-app/src/fhir-parse.js';
import { CLIENT_ID, EHR_SCOPE, STANDALONE_SCOPE } from '../../smart-app/src/settings.js';
import { makeReport } from './fixtures.js';

/** The app's reading of FHIR resources, checked against what the real mapping (src/fhir) writes. */

function resourcesOf(report: ReturnType<typeof makeReport>, imagingStudy?: string) {
  const bundle = buildAnalysisBundle(report, { patient: 'Patient/p1', ...(imagingStudy ? { imagingStudy } : {}) });
  const byType = (t: string) => bundle.entry?.find((e) => e.resource?.resourceType === t)?.resource as Record<string, unknown> | undefined;
  return { obs: { ...byType('Observation'), id: 'o1' }, risk: byType('RiskAssessment') ? { ...byType('RiskAssessment'), id: 'r1' } : undefined };
}

describe('parseVbmdObservation on the real mapping', () => {
  it('reads value, category, basis, levels (with exclusion reason), summary levels, calibration, model and study', () => {
    const report = makeReport({
      studyUid: '1.2.3.4',
      acquired: '2025-03-04T10:20:00Z',
      levels: [
        { level: 'T12', vbmd: 95 },
        { level: 'L1', vbmd: 78.26 },
        { level: 'L2', vbmd: 71.5 },
        { level: 'L3', vbmd: 260, excluded: 'lesion' },
      ],
    });
    const { obs } = resourcesOf(report, 'ImagingStudy/is-1');
    const s = parseVbmdObservation(obs);
    if ('skip' in s) throw new Error(s.skip);
    expect(s.vbmdMgCm3).toBe(74.9); // (78.26 + 71.5) / 2 = 74.88, written to 0.1
    expect(s.category).toBe('osteoporosis');
    expect(s.basis).toBe('lumbar');
    expect(s.effectiveMs).toBe(Date.UTC(2025, 2, 4, 10, 20));
    expect(s.summaryLevels).toEqual(['L1', 'L2']);
    expect(s.levels.map((l) => [l.level, l.vbmdMgCm3, l.included])).toEqual([
      ['T12', 95, true],
      ['L1', 78.3, true],
      ['L2', 71.5, true],
      ['L3', null, false],
    ]);
    expect(s.levels[3].exclusionReason).toMatch(/^lesion/);
    // From the structured vbmd-analysis extension, not from the note text.
    expect(s.calibration).toBe("phantomless internal calibration from the scan's own tissues; trabecular HU = -2.00 + 1.1000 x vBMD (mg/cm3)");
    expect(s.device).toBe('vbmd 0.1.0 with model vbmd-resunet3d 1.2.0 (sha256 aaaaaaaaaaaa…)');
    expect(s.uncalibrated).toBe(false);
    expect(s.contrastEnhanced).toBe(false);
    expect(s.imagingStudy).toEqual({ reference: 'ImagingStudy/is-1', studyUid: '1.2.3.4', display: 'CT study 1.2.3.4' });
    expect(s.status).toBe('final');
  });

  it('reads a thoracic-extrapolated, uncalibrated result and an indeterminate one', () => {
    const thoracic = parseVbmdObservation(
      resourcesOf(makeReport({ studyUid: '1.2.3.5', acquired: '2025-01-01T00:00:00Z', levels: [{ level: 'T11', vbmd: 130 }, { level: 'T12', vbmd: 126 }], basis: 'thoracic-extrapolated', calibration: 'nominal' })).obs,
    );
    if ('skip' in thoracic) throw new Error(thoracic.skip);
    expect(thoracic.basis).toBe('thoracic-extrapolated');
    expect(thoracic.category).toBe('normal');
    expect(thoracic.status).toBe('preliminary');
    expect(thoracic.uncalibrated).toBe(true);
    expect(thoracic.calibration).toMatch(/^nominal kVp default \(UNCALIBRATED\).*not traceable/);
    expect(thoracic.summaryLevels).toEqual(['T11', 'T12']);

    const none = resourcesOf(makeReport({ studyUid: '1.2.3.6', acquired: '2025-01-01T00:00:00Z', levels: [{ level: 'L1', vbmd: 50, excluded: 'fracture' }] }));
    const s = parseVbmdObservation(none.obs);
    if ('skip' in s) throw new Error(s.skip);
    expect(s.vbmdMgCm3).toBeNull();
    expect(s.category).toBe('indeterminate');
    expect(none.risk).toBeUndefined();
  });

  it('skips what is not a usable vBMD result, saying why', () => {
    const { obs } = resourcesOf(makeReport({ studyUid: '1.2.3.7', acquired: '2025-01-01T00:00:00Z', levels: [{ level: 'L1', vbmd: 100 }, { level: 'L2', vbmd: 100 }] }));
    const r = parseVbmdObservations([
      obs,
      { ...obs, id: 'x1', code: { coding: [{ system: 'http://loinc.org', code: '24966-4' }] } },
      { ...obs, id: 'x2', status: 'entered-in-error' },
      { ...obs, id: 'x3', valueQuantity: { value: 1, unit: 'g/cm2', system: 'http://unitsofmeasure.org', code: 'g/cm2' } },
      { resourceType: 'Observation' },
      'garbage',
    ]);
    expect(r.items.map((s) => s.observationId)).toEqual(['o1']);
    expect(r.skipped.map((s) => s.why)).toEqual([
      'not a vBMD summary Observation',
      'status entered-in-error',
      'unit is not a mass concentration (mg/cm3)',
      'not a valid vBMD Observation',
      'not a valid vBMD Observation',
    ]);
  });
});

describe('latestRisk, parsePatient, helpers', () => {
  it('takes the newest RiskAssessment from the real mapping', () => {
    const older = resourcesOf(makeReport({ studyUid: '1.2.3.8', acquired: '2024-01-01T00:00:00Z', levels: [{ level: 'L1', vbmd: 130 }, { level: 'L2', vbmd: 130 }] })).risk;
    const newer = resourcesOf(makeReport({ studyUid: '1.2.3.9', acquired: '2025-01-01T00:00:00Z', levels: [{ level: 'L1', vbmd: 70 }, { level: 'L2', vbmd: 72 }] })).risk;
    const r = latestRisk([{ ...newer, id: 'new' }, { ...older, id: 'old' }, { resourceType: 'RiskAssessment' }]);
    expect(r?.id).toBe('new');
    expect(r?.outcome).toBe('Osteoporosis');
    expect(r?.qualitativeRisk).toBe('High likelihood');
    expect(latestRisk([])).toBeNull();
  });

  it('names a patient; shortens a sha256 for display', () => {
    expect(parsePatient({ resourceType: 'Patient', id: 'p', name: [{ given: ['Ada'], family: 'Demo' }], birthDate: '1950-01-01' })).toEqual({ id: 'p', name: 'Ada Demo', birthDate: '1950-01-01' });
    expect(parsePatient({ resourceType: 'Patient', id: 'q' })?.name).toBe('Patient q');
    expect(parsePatient({ resourceType: 'Observation' })).toBeNull();
    expect(shortenSha(`x (sha256 ${'0123456789ab'.repeat(5)}abcd)`)).toBe('x (sha256 0123456789ab…)');
  });

  it('the app asks for exactly what the sandbox registers', () => {
    expect(CLIENT_ID).toBe(SMART_APP_CLIENT_ID);
    expect(EHR_SCOPE).toBe(SMART_EHR_LAUNCH_SCOPE);
    expect(STANDALONE_SCOPE).toBe(SMART_STANDALONE_LAUNCH_SCOPE);
  });
});
