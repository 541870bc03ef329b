import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Observation, RiskAssessment } from 'fhir/r4.js';
import { runAnalysis } from '../../src/analysis/run-analysis.js';
import { vbmdReport } from '../../src/bmd/report.js';
import { FhirClient } from '../../src/fhir/client.js';
import { UCUM_MG_PER_CM3, VBMD_SUMMARY_CODE_TOKEN } from '../../src/fhir/codes.js';
import { fhirValidationIssues } from '../../src/fhir/definitions.js';
import { startFhirServer } from '../../src/sandbox/fhir-server/start.js';
import type { StartedFhirServer } from '../../src/sandbox/fhir-server/start.js';
import { writeAnalysis } from '../../src/fhir/write-analysis.js';
import { generatePhantom } from '../../src/research/phantom/generate.js';

/**
 * The acceptance round trip with the real engine: analyze a synthetic CT (small phantom with known
 * calibration), write the result over HTTP, read it back with the CDS/SMART search, write again: one set.
 */
let server: StartedFhirServer;
beforeAll(async () => {
  server = await startFhirServer();
});
afterAll(async () => {
  await server?.close();
});

describe('synthetic CT -> vbmd report -> FHIR -> search', () => {
  it('writes the engine result once and reads it back by patient, code and _sort=-date', async () => {
    const p = generatePhantom({ seed: 11, levels: 'T10-L3', size: 128, pixelSpacingMm: 2.8, sliceThicknessMm: 2, noiseHu: 12 });
    const site = { scanners: [], default: { slope: p.truth.calibration.slope, intercept: p.truth.calibration.intercept, method: 'phantom' as const } };
    const report = vbmdReport.parse(await runAnalysis({ loaded: p.loaded }, { site }));
    const client = new FhirClient({ baseUrl: server.baseUrl });
    const ctx = { patient: 'Patient/phantom-11' };
    const first = await writeAnalysis(client, report, ctx);
    const second = await writeAnalysis(client, report, ctx);
    expect(first.observation.created).toBe(true);
    expect(second.observation).toEqual({ ...first.observation, created: false });

    const found = await client.search<Observation>('Observation', { patient: 'Patient/phantom-11', code: VBMD_SUMMARY_CODE_TOKEN, _sort: '-date' });
    expect(found).toHaveLength(1);
    const obs = found[0];
    expect(fhirValidationIssues(obs)).toEqual([]);
    if (report.summary.vbmd !== null && report.summary.category !== 'indeterminate') {
      expect(obs.valueQuantity).toEqual({ value: Math.round(report.summary.vbmd * 10) / 10, ...UCUM_MG_PER_CM3 });
      const risks = await client.search<RiskAssessment>('RiskAssessment', { patient: 'Patient/phantom-11' });
      expect(risks).toHaveLength(1);
    } else {
      expect(obs.dataAbsentReason).toBeDefined();
    }
    const levelsInReport = report.levels.map((l) => l.level);
    expect(obs.component?.map((c) => c.code.text)).toEqual(levelsInReport);
    expect(obs.note?.some((n) => n.text.startsWith('Calibration: in-scan phantom calibration'))).toBe(true);
  });
});
