import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { Bundle, Device, DiagnosticReport, DocumentReference, Observation, Provenance, RiskAssessment } from 'fhir/r4.js';
import { readAnalysisFields } from '../../src/fhir/analysis-fields.js';
import { buildAnalysisBundle } from '../../src/fhir/bundle.js';
import { genantGrade } from '../../src/fhir/fracture.js';
import { loadModelCard } from '../../src/fhir/model-card.js';
import { fhirValidationIssues } from '../../src/fhir/definitions.js';
import { toFhirDateTime } from '../../src/fhir/datetime.js';
import { VbmdError } from '../../src/util/errors.js';
import type { VbmdReport } from '../../src/bmd/report.js';
import { indeterminateReport, lumbarOsteoporosisReport, lumbarReportNewModel, thoracicContrastReport } from './reports.js';

/** The mapping of a report to R4 resources: structure via @medplum/core's validator, and every code, system
 * and unit checked literally (the validator does not check terminology bindings). */

const ISSUED = '2024-03-06T10:00:00Z';
function build(report: VbmdReport, extra: Record<string, string> = {}): { bundle: Bundle; obs: Observation; risk?: RiskAssessment; prov: Provenance; device: Device } {
  const bundle = buildAnalysisBundle(report, { patient: 'Patient/p1', issued: ISSUED, ...extra });
  const of = <T>(type: string): T | undefined => bundle.entry?.find((e) => e.resource?.resourceType === type)?.resource as T | undefined;
  return { bundle, obs: of<Observation>('Observation')!, risk: of<RiskAssessment>('RiskAssessment'), prov: of<Provenance>('Provenance')!, device: of<Device>('Device')! };
}

const UCUM = { unit: 'mg/cm3', system: 'http://unitsofmeasure.org', code: 'mg/cm3' };
const SNOMED = 'http://snomed.info/sct';
const V3_INTERP = 'http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation';
const PROJECT = 'https://vbmd.org/fhir/CodeSystem/vbmd';

describe('buildAnalysisBundle', () => {
  it.each([
    ['lumbar + model', lumbarOsteoporosisReport()],
    ['thoracic + contrast', thoracicContrastReport()],
    ['indeterminate', indeterminateReport()],
  ])('%s: every resource and the Bundle pass validateResource (only urn:uuid reference warnings inside a transaction)', (_n, report) => {
    const { bundle } = build(report);
    for (const e of bundle.entry ?? []) {
      const issues = fhirValidationIssues(e.resource!);
      expect(issues.filter((i) => i.severity === 'error' || i.severity === 'fatal'), e.resource!.resourceType).toEqual([]);
      for (const w of issues) expect(w.message).toMatch(/^Invalid reference: got "urn:uuid:/);
    }
    expect(fhirValidationIssues(bundle).filter((i) => i.severity === 'error')).toEqual([]);
  });

  it('summary Observation: codes, units, interpretation, references and components', () => {
    const { obs, device, bundle } = build(lumbarOsteoporosisReport());
    expect(obs.status).toBe('final');
    expect(obs.category).toEqual([{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'imaging', display: 'Imaging' }], text: 'Imaging' }]);
    expect(obs.code.coding).toEqual([{ system: PROJECT, code: 'vbmd-trabecular-qct', display: expect.any(String) }]);
    expect(obs.code.text).toMatch(/vBMD/);
    expect(obs.code.coding?.some((c) => c.system === 'http://loinc.org')).toBe(false);
    expect(obs.valueQuantity).toEqual({ value: 74.1, ...UCUM });
    // Never the critical code LL: the band is in the coded reference ranges.
    expect(obs.interpretation?.[0].coding).toEqual([{ system: V3_INTERP, code: 'L', display: 'Low' }]);
    expect(obs.interpretation?.[0].text).toMatch(/osteoporosis range/);
    expect(obs.referenceRange?.map((r) => [r.low?.value, r.high?.value, r.type?.coding?.map((c) => c.code).join('+')])).toEqual([
      [120.1, undefined, 'normal+acr-qct-normal'],
      [80, 120, 'acr-qct-low-bone-density'],
      [undefined, 79.9, 'acr-qct-osteoporosis'],
    ]);
    for (const r of obs.referenceRange ?? []) {
      for (const q of [r.low, r.high].filter(Boolean)) expect(q).toMatchObject(UCUM);
      expect(r.appliesTo?.[0]?.text).toMatch(/lumbar/);
    }
    expect(JSON.stringify(bundle)).not.toMatch(/"code":"(LL|HH)"/);
    expect(obs.subject).toEqual({ reference: 'Patient/p1', type: 'Patient' });
    expect(obs.effectiveDateTime).toBe('2024-03-05T09:41:12+01:00');
    expect(obs.issued).toBe(ISSUED);
    const study = { type: 'ImagingStudy', identifier: { system: 'urn:dicom:uid', value: 'urn:oid:1.2.826.0.1.3680043.8.498.1001' } };
    expect(obs.derivedFrom?.[0]).toMatchObject(study);
    expect(obs.partOf?.[0]).toMatchObject(study);
    // No ServiceRequest id known: the order by accession number (v2-0203 ACSN).
    expect(obs.basedOn?.[0]).toEqual({ type: 'ServiceRequest', identifier: { type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'ACSN', display: 'Accession ID' }] }, value: 'ACC1001' } });
    expect(obs.method?.coding).toEqual([{ system: PROJECT, code: 'basis-lumbar', display: expect.any(String) }]);
    expect(obs.bodySite?.coding?.[0]).toMatchObject({ system: SNOMED, code: '122496007' });
    const deviceEntry = bundle.entry?.find((e) => e.resource === device);
    expect(obs.device?.reference).toBe(deviceEntry?.fullUrl);
    expect(obs.meta?.security).toEqual([{ system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationValue', code: 'AIAST', display: 'Artificial Intelligence asserted' }]);

    const comp = Object.fromEntries((obs.component ?? []).map((c) => [c.code.text, c]));
    expect(Object.keys(comp)).toEqual(['T12', 'L1', 'L2', 'L3']);
    expect(comp.L1.code.coding).toEqual([
      { system: PROJECT, code: 'vbmd-trabecular-qct-level', display: expect.any(String) },
      { system: SNOMED, code: '66794005', display: 'L1 vertebra' },
    ]);
    expect(comp.L2.code.coding?.[1]).toMatchObject({ system: SNOMED, code: '14293000' });
    expect(comp.T12.code.coding?.[1]).toMatchObject({ system: SNOMED, code: '23215003' });
    expect(comp.L3.code.coding?.[1]).toMatchObject({ system: SNOMED, code: '36470004' });
    expect(comp.L1.valueQuantity).toEqual({ value: 71.3, ...UCUM });
    expect(comp.L1.interpretation?.[0].coding?.[0]).toMatchObject({ system: V3_INTERP, code: 'L' });
    // Fractured L3 is excluded: no value a consumer could average back in, and the reason.
    expect(comp.L3.valueQuantity).toBeUndefined();
    expect(comp.L3.dataAbsentReason?.coding?.[0]).toMatchObject({ system: 'http://terminology.hl7.org/CodeSystem/data-absent-reason', code: 'unknown' });
    expect(comp.L3.dataAbsentReason?.text).toContain('fracture');

    const notes = (obs.note ?? []).map((n) => n.text).join('\n');
    expect(notes).toContain('mean of L1 71.3 mg/cm3 and L2 76.9 mg/cm3');
    expect(notes).toMatch(/L3: fracture.*anterior height loss 31%.*measured 61.0 mg\/cm3, not used/);
    expect(notes).toContain('Calibration: asynchronous phantom calibration');
    expect(notes).toContain('-3.20 + 1.0800 x vBMD');
    expect(notes).toContain('model vbmd-resunet3d 0.3.0');
    expect(notes).not.toMatch(/extrapolat|Contrast/);
    expect(notes).toContain('CT: 120 kVp; 512 x 512 x 300 voxels of 0.7 x 0.7 x 1.25 mm; series 1.2.826.0.1.3680043.8.498.1001.2.');
  });

  it('thoracic extrapolation, contrast, uncertain labels, zoneless DICOM time are all said', () => {
    const { obs, risk } = build(thoracicContrastReport(), { serviceRequest: 'ServiceRequest/o9', imagingStudy: 'ImagingStudy/s9' });
    const notes = (obs.note ?? []).map((n) => n.text).join('\n');
    expect(obs.method?.coding?.[0].code).toBe('basis-thoracic-extrapolated');
    expect(notes).toContain('thoracic extrapolation');
    expect(notes).toContain('Contrast-enhanced CT');
    expect(notes).toMatch(/T10: suspected blastic or lytic lesion/);
    expect(notes).toMatch(/labelling uncertain for T11 \(confidence 0.70\)/);
    expect(notes).toContain('phantomless internal calibration');
    expect(notes).toContain('airHu -998.1; fatHu -101.2; muscleHu 52.3; bloodHu 160.4');
    expect(notes).toContain('14:30:05 scanner local time');
    expect(obs.effectiveDateTime).toBe('2023-06-11');
    expect(obs.interpretation?.[0].coding?.[0].code).toBe('L');
    // No network ran, but an algorithm still asserted every number: AIAST is on (AI Transparency IG: "Clinical
    // Decision Support, Machine Learning, Algorithm").
    expect(obs.meta?.security?.[0]?.code).toBe('AIAST');
    expect(obs.basedOn).toEqual([{ reference: 'ServiceRequest/o9', type: 'ServiceRequest' }]);
    expect(obs.derivedFrom?.[0]).toMatchObject({ reference: 'ImagingStudy/s9', identifier: { system: 'urn:dicom:uid' } });
    expect(obs.bodySite?.coding?.[0]).toMatchObject({ system: SNOMED, code: '122495006' });
    expect(risk?.note?.[0].text).toContain('thoracic extrapolation');
  });

  it('RiskAssessment: osteoporosis outcome, risk-probability, probability only from the model', () => {
    const { risk, obs, bundle } = build(lumbarOsteoporosisReport());
    const obsUrl = bundle.entry?.find((e) => e.resource === obs)?.fullUrl;
    expect(risk?.status).toBe('final');
    expect(risk?.basis).toEqual([{ reference: obsUrl, type: 'Observation' }]);
    const p = risk!.prediction![0];
    expect(p.outcome?.coding).toEqual([{ system: SNOMED, code: '64859006', display: 'Osteoporosis' }]);
    expect(p.qualitativeRisk?.coding).toEqual([{ system: 'http://terminology.hl7.org/CodeSystem/risk-probability', code: 'high', display: 'High likelihood' }]);
    expect(p.probabilityDecimal).toBe(0.7); // mean of L1 0.8 and L2 0.6 (the levels the summary uses)
    expect(risk?.method?.coding?.[0].code).toBe('risk-model-class-probability');

    const thoracic = build(thoracicContrastReport()).risk!;
    expect(thoracic.prediction?.[0].probabilityDecimal).toBeUndefined();
    expect(thoracic.prediction?.[0].qualitativeRisk?.coding?.[0].code).toBe('moderate');
    expect(thoracic.method?.coding?.[0].code).toBe('risk-acr-qct-thresholds');
  });

  it('Provenance (AI Transparency AI-Provenance) and Device (AI-Device)', () => {
    const { prov, device, obs, risk, bundle } = build(lumbarOsteoporosisReport());
    const url = (r: unknown): string | undefined => bundle.entry?.find((e) => e.resource === r)?.fullUrl;
    const dr = bundle.entry?.find((e) => e.resource?.resourceType === 'DiagnosticReport');
    const fracture = bundle.entry?.filter((e) => e.resource?.resourceType === 'Observation')[1];
    expect(prov.meta?.security).toEqual([{ system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationValue', code: 'AIAST', display: 'Artificial Intelligence asserted' }]);
    expect(prov.meta?.profile).toEqual(['http://hl7.org/fhir/uv/aitransparency/StructureDefinition/AI-Provenance']);
    expect(prov.target.map((t) => t.reference)).toEqual([dr?.fullUrl, url(obs), fracture?.fullUrl, url(risk)]);
    expect(prov.reason?.[0].coding?.[0]).toMatchObject({ code: 'AIAST' });
    expect(prov.agent[0].who?.reference).toBe(url(device));
    expect(prov.agent[0].type?.coding?.[0]).toMatchObject({ system: 'http://terminology.hl7.org/CodeSystem/provenance-participant-type', code: 'author' });
    expect(prov.agent[0].role?.[0].coding?.[0]).toEqual({ system: 'http://hl7.org/fhir/uv/aitransparency/CodeSystem/AIdeviceTypeCS', code: 'Artificial-Intelligence', display: 'All kinds of Artificial Intelligence' });
    expect(prov.entity?.[0]).toMatchObject({ role: 'source', what: { identifier: { system: 'urn:dicom:uid', value: 'urn:oid:1.2.826.0.1.3680043.8.498.1001' } } });
    expect(prov.recorded).toBe(ISSUED);
    expect(device.manufacturer).toMatch(/vbmd/);
    expect(device.meta?.profile).toEqual(['http://hl7.org/fhir/uv/aitransparency/StructureDefinition/AI-Device']);
    expect(device.type?.coding?.[0]).toEqual({ system: 'http://hl7.org/fhir/uv/aitransparency/CodeSystem/AIdeviceTypeCS', code: 'Artificial-Intelligence', display: 'All kinds of Artificial Intelligence' });
    expect(device.extension?.[0]).toEqual({
      url: 'http://hl7.org/fhir/uv/aitransparency/StructureDefinition/aitransparency.AIKind',
      valueCodeableConcept: { coding: [{ system: 'http://hl7.org/fhir/uv/aitransparency/CodeSystem/AIdeviceTypeCS', code: 'Deep-Learning-Models', display: 'Deep Learning Models' }] },
    });
    expect(device.version?.map((v) => [v.type?.coding?.[0].code, v.value])).toEqual([
      ['111003', '0.1.0'],
      ['model-version', '0.3.0'],
      ['model-sha256', 'a'.repeat(64)],
    ]);
    const engineOnly = build(thoracicContrastReport()).device;
    expect(engineOnly.version?.map((v) => v.type?.coding?.[0].code)).toEqual(['111003']);
    expect(engineOnly.extension?.[0]?.valueCodeableConcept?.coding?.[0]?.code).toBe('Rule-Based-Systems');
    // AIAST on every algorithm-derived resource; not on the Device (it describes the algorithm).
    for (const e of bundle.entry ?? []) {
      const sec = (e.resource as { meta?: { security?: { code?: string }[] } }).meta?.security?.map((x) => x.code);
      expect(sec, e.resource?.resourceType).toEqual(e.resource?.resourceType === 'Device' ? undefined : ['AIAST']);
    }
  });

  it('the model card as an AI-ModelCard DocumentReference, referenced by the Device and the Provenance', () => {
    const card = loadModelCard();
    const bundle = buildAnalysisBundle(lumbarOsteoporosisReport(), { patient: 'Patient/p1', issued: ISSUED }, { modelCard: card });
    const of = <T>(type: string): { fullUrl?: string; resource: T } => {
      const e = bundle.entry!.find((x) => x.resource?.resourceType === type)!;
      return { ...(e.fullUrl ? { fullUrl: e.fullUrl } : {}), resource: e.resource as T };
    };
    const doc = of<DocumentReference>('DocumentReference');
    const file = readFileSync(new URL('../../models/MODEL_CARD.md', import.meta.url));
    const att = doc.resource.content[0]!.attachment;
    expect(att.contentType).toBe('text/markdown');
    expect(Buffer.from(att.data!, 'base64').equals(file)).toBe(true);
    expect(att.size).toBe(file.length);
    expect(att.hash).toBe(createHash('sha1').update(file).digest('base64'));
    expect(doc.resource.type?.coding?.[0]).toMatchObject({ system: 'http://hl7.org/fhir/uv/aitransparency/CodeSystem/AIinputsCS', code: 'AIModelCard' });
    expect(doc.resource.category?.[0]?.coding?.[0]?.code).toBe('AIModelCardMarkdownFormat');
    expect(doc.resource.identifier?.[0]?.value).toBe(`model-card-${createHash('sha256').update(file).digest('hex').slice(0, 40)}`);
    const device = of<Device>('Device').resource;
    expect(device.extension?.find((x) => x.url.endsWith('aitransparency.modelCardDescription'))?.valueReference?.reference).toBe(doc.fullUrl);
    const prov = of<Provenance>('Provenance').resource;
    expect(prov.entity?.find((x) => x.role === 'derivation')?.what.reference).toBe(doc.fullUrl);
    expect(fhirValidationIssues(doc.resource).filter((i) => i.severity === 'error')).toEqual([]);
    // No model, no model card.
    const noModel = buildAnalysisBundle(thoracicContrastReport(), { patient: 'Patient/p1' }, { modelCard: card });
    expect(noModel.entry?.some((e) => e.resource?.resourceType === 'DocumentReference')).toBe(false);
  });

  it('DiagnosticReport: category, code, study, order, results, conclusion in words and coded', () => {
    const { bundle, obs } = build(lumbarOsteoporosisReport());
    const entries = bundle.entry ?? [];
    const dr = entries.find((e) => e.resource?.resourceType === 'DiagnosticReport')!.resource as DiagnosticReport;
    const obsUrls = entries.filter((e) => e.resource?.resourceType === 'Observation').map((e) => e.fullUrl);
    expect(dr.status).toBe('final');
    expect(dr.category?.[0]?.coding?.map((c) => c.code)).toEqual(['RAD', 'imaging']);
    expect(dr.code.coding?.[0]).toMatchObject({ system: PROJECT, code: 'vbmd-ct-bone-density-report' });
    expect(dr.subject).toEqual(obs.subject);
    expect(dr.effectiveDateTime).toBe(obs.effectiveDateTime);
    expect(dr.issued).toBe(ISSUED);
    expect(dr.imagingStudy?.[0]).toMatchObject({ type: 'ImagingStudy', identifier: { system: 'urn:dicom:uid', value: 'urn:oid:1.2.826.0.1.3680043.8.498.1001' } });
    expect(dr.basedOn).toEqual(obs.basedOn);
    expect(dr.result?.map((r) => r.reference)).toEqual(obsUrls);
    expect(dr.conclusion).toBe(
      'Vertebral trabecular bone density 74.1 mg/cm3 (mean of L1 and L2) is in the osteoporosis range (ACR QCT < 80 mg/cm3). ' +
        'Vertebral compression deformity consistent with fracture at L3 (Genant grade 2, 31% anterior height loss). ' +
        'Opportunistic measurement from a routine CT by an algorithm, with asynchronous phantom calibration; not a DXA. Confirm by DXA before starting treatment.',
    );
    expect(dr.conclusionCode?.map((c) => c.coding?.[0])).toEqual([
      { system: SNOMED, code: '64859006', display: 'Osteoporosis' },
      { system: SNOMED, code: '42942008', display: 'Compression fracture of vertebral column' },
    ]);
    const thoracic = build(thoracicContrastReport()).bundle.entry!.find((e) => e.resource?.resourceType === 'DiagnosticReport')!.resource as DiagnosticReport;
    expect(thoracic.conclusionCode?.map((c) => c.coding?.[0]?.code)).toEqual(['312894000']);
    expect(thoracic.conclusion).toMatch(/extrapolation.*Contrast-enhanced/);
    const ind = build(indeterminateReport()).bundle.entry!.find((e) => e.resource?.resourceType === 'DiagnosticReport')!.resource as DiagnosticReport;
    expect(ind.status).toBe('preliminary');
    expect(ind.conclusionCode).toBeUndefined();
    expect(ind.conclusion).toMatch(/could not be measured/);
  });

  it('a fracture per fractured level: compression fracture (SNOMED) at the vertebra, Genant grade, heights', () => {
    const { bundle } = build(lumbarOsteoporosisReport());
    const f = bundle.entry!.filter((e) => e.resource?.resourceType === 'Observation')[1]!.resource as Observation;
    expect(f.code.coding).toEqual([{ system: SNOMED, code: '42942008', display: 'Compression fracture of vertebral column' }]);
    expect(f.bodySite?.coding?.[0]).toMatchObject({ system: SNOMED, code: '36470004' });
    expect(f.valueCodeableConcept?.coding?.[0]).toMatchObject({ system: PROJECT, code: 'genant-2' });
    expect(f.component?.[0]?.valueQuantity).toEqual({ value: 31.2, unit: '%', system: 'http://unitsofmeasure.org', code: '%' });
    expect(f.status).toBe('final');
    expect(f.meta?.security?.[0]?.code).toBe('AIAST');
    expect(f.identifier?.[0]?.value).toMatch(/^fracture-L3-/);
  });

  it.each([
    [0.19, 0],
    [0.2, 1],
    [0.25, 1],
    [0.26, 2],
    [0.4, 2],
    [0.41, 3],
    [Number.NaN, 0],
  ])('Genant grade of a %s height reduction is %s', (loss, grade) => {
    expect(genantGrade(loss)).toBe(grade);
  });

  it('the vbmd-analysis extension carries calibration, contrast, summary levels and algorithm as data', () => {
    const { obs } = build(thoracicContrastReport());
    expect(readAnalysisFields(obs)).toEqual({
      analysisKey: expect.stringMatching(/^[0-9a-f]{40}$/),
      calibration: { method: 'phantomless-internal', slopeHuPerMgCm3: 1.02, interceptHu: 1.5, traceable: true },
      contrastEnhanced: true,
      summaryLevels: ['T11', 'T12'],
      algorithm: { engine: { name: 'vbmd', version: '0.1.0' }, model: null },
      superseded: [],
    });
    expect(readAnalysisFields(build(indeterminateReport()).obs)?.calibration).toMatchObject({ method: 'nominal', traceable: false });
  });

  it('conditional creates on stable identifiers; deterministic; a new model version keeps the result identities', () => {
    const a = build(lumbarOsteoporosisReport()).bundle;
    const b = build(lumbarOsteoporosisReport()).bundle;
    expect(JSON.stringify(a)).toBe(JSON.stringify(b));
    expect(a.type).toBe('transaction');
    for (const e of a.entry ?? []) {
      expect(e.fullUrl).toMatch(/^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      expect(e.request?.method).toBe('POST');
      const r = e.resource as { identifier?: { system: string; value: string }[]; meta?: { tag?: { system?: string; code?: string }[] } };
      if (e.resource?.resourceType === 'Provenance') {
        const tag = r.meta?.tag?.[0];
        expect(e.request?.ifNoneExist).toBe(`_tag=${tag?.system}|${tag?.code}`);
      } else {
        expect(e.request?.ifNoneExist).toBe(`identifier=${r.identifier?.[0].system}|${r.identifier?.[0].value}`);
      }
    }
    // A new model version: the study's result set keeps its identities (it is superseded in place, see
    // lifecycle.test.ts); the Device and the Provenance (one per analysis) are new.
    const c = build(lumbarReportNewModel()).bundle;
    const byType = (x: Bundle): Record<string, string | undefined> =>
      Object.fromEntries((x.entry ?? []).map((e) => [`${e.resource?.resourceType}:${(e.resource as { bodySite?: { text?: string } }).bodySite?.text ?? ''}`, e.request?.ifNoneExist]));
    const [ia, ic] = [byType(a), byType(c)];
    for (const k of ['Observation:L1-L2', 'Observation:L3', 'RiskAssessment:', 'DiagnosticReport:']) expect(ic[k], k).toBe(ia[k]);
    for (const k of ['Device:', 'Provenance:']) expect(ic[k], k).not.toBe(ia[k]);
    // Different issued time, same identities (a re-run of the same version finds the old results).
    const ids = (x: Bundle): (string | undefined)[] => (x.entry ?? []).map((e) => e.request?.ifNoneExist);
    expect(ids(buildAnalysisBundle(lumbarOsteoporosisReport(), { patient: 'Patient/p1' }))).toEqual(ids(a));
  });

  it('indeterminate: Observation without value, preliminary when uncalibrated, no RiskAssessment', () => {
    const { obs, risk, prov } = build(indeterminateReport());
    expect(risk).toBeUndefined();
    expect(obs.valueQuantity).toBeUndefined();
    expect(obs.interpretation).toBeUndefined();
    expect(obs.dataAbsentReason?.coding?.[0].code).toBe('unknown');
    expect(obs.status).toBe('preliminary');
    expect(obs.method?.coding?.[0].code).toBe('basis-none');
    expect(prov.target).toHaveLength(2); // the DiagnosticReport and the Observation
    const notes = (obs.note ?? []).map((n) => n.text).join('\n');
    expect(notes).toContain('No summary value');
    expect(notes).toContain('not traceable to any calibration');
    expect(notes).toContain('Slices 5 mm thick');
  });

  it('says when the acquisition time is unknown (no effectiveDateTime)', () => {
    const r = lumbarOsteoporosisReport();
    const { obs } = build({ ...r, input: { ...r.input, acquisitionDateTime: undefined } });
    expect(obs.effectiveDateTime).toBeUndefined();
    expect(obs.note?.some((n) => n.text.includes('no effective date'))).toBe(true);
  });

  it('rejects a malformed report or context with a clear VbmdError', () => {
    const bad = { ...lumbarOsteoporosisReport(), schema: 'vbmd.report/0' } as unknown as VbmdReport;
    expect(() => buildAnalysisBundle(bad, { patient: 'Patient/p1' })).toThrow(VbmdError);
    expect(() => buildAnalysisBundle(lumbarOsteoporosisReport(), { patient: 'John Doe' })).toThrow(/Patient\/<id>/);
  });
});

describe('toFhirDateTime', () => {
  it.each([
    ['2024-03-05T09:41:12+01:00', '2024-03-05T09:41:12+01:00', false],
    ['2024-03-05T09:41:12.5Z', '2024-03-05T09:41:12.5Z', false],
    ['2024-03-05', '2024-03-05', false],
    ['2024-03-05T09:41:12', '2024-03-05', true],
    ['20240305094112', '2024-03-05', true],
    ['20240305094112.123+0100', '2024-03-05T09:41:12.123+01:00', false],
    ['20240305', '2024-03-05', false],
  ])('%s -> %s', (input, value, remark) => {
    const r = toFhirDateTime(input);
    expect(r.value).toBe(value);
    expect(r.remark !== undefined).toBe(remark);
  });
  it('refuses garbage', () => {
    expect(toFhirDateTime('yesterday').value).toBeUndefined();
    expect(toFhirDateTime('20241399').value).toBeUndefined();
  });
});
