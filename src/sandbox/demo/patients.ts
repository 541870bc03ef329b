import type { Bundle, MedicationRequest, Patient } from 'fhir/r4.js';
import type { Bundle as MedplumBundle } from '@medplum/fhirtypes';
import type { FhirRepository } from '@medplum/fhir-router';
import { FhirRouter } from '@medplum/fhir-router';
import { allOk } from '@medplum/core';
import type { LevelResult, VbmdReport, VertebraLevel } from '../../bmd/report.js';
import { categoryForVbmd, vbmdReport } from '../../bmd/report.js';
import { VbmdError } from '../../util/errors.js';
import { buildAnalysisBundle } from '../../fhir/bundle.js';
import { FhirClient } from '../../fhir/client.js';
import { DEMO_DATA_TAG } from '../../fhir/codes.js';
import { outcomeText } from '../../fhir/fhir-error.js';
import { loadModelCard } from '../../fhir/model-card.js';
import { isOperationOutcome, resolveConditionalCreates } from '../fhir-server/conditional-creates.js';

/**
 * Synthetic demo patients for the sandbox, the SMART app and the CDS patient-view hook. No real people: the
 * names say "Demo" and every resource carries the DEMO_DATA_TAG in meta.tag. Results are made by running
 * the real FHIR mapping on demo vbmd.report/1 documents, so the demo shows exactly what production writes.
 */
export const DEMO_PATIENT_IDS = {
  /** ~150 mg/cm3, stable for four years. */
  stableNormal: 'vbmd-demo-stable-normal',
  /** ~100 mg/cm3 (osteopenia), on alendronate. */
  osteopenic: 'vbmd-demo-osteopenic',
  /** 140 -> ~72 mg/cm3 over four years: normal into osteoporosis, untreated (the CDS alert case). */
  declining: 'vbmd-demo-declining',
  /** Chest CTs only: thoracic-extrapolated results, one contrast-enhanced. */
  thoracic: 'vbmd-demo-thoracic',
} as const;

/** For pickers (sandbox launch page): id, synthetic display name, and what the demo shows. */
export function demoPatientList(): { id: string; name: string; story: string }[] {
  const stories: Record<string, string> = {
    [DEMO_PATIENT_IDS.stableNormal]: 'normal, stable over four years',
    [DEMO_PATIENT_IDS.osteopenic]: 'osteopenia, on alendronate',
    [DEMO_PATIENT_IDS.declining]: 'normal to osteoporosis in four years, untreated',
    [DEMO_PATIENT_IDS.thoracic]: 'chest CT only: thoracic extrapolation, latest with contrast',
  };
  return PATIENTS.map((p) => ({ id: p.id, name: `${p.given} ${p.family} (synthetic)`, story: stories[p.id] ?? '' }));
}

interface DemoScan {
  monthsAgo: number;
  vbmd: number;
  chest?: boolean;
  contrast?: boolean;
}

interface DemoPatient {
  id: string;
  given: string;
  family: string;
  gender: Patient['gender'];
  birthDate: string;
  scans: DemoScan[];
  alendronate?: boolean;
}

const PATIENTS: DemoPatient[] = [
  {
    id: DEMO_PATIENT_IDS.stableNormal, given: 'Stella', family: 'Demo-Stable', gender: 'female', birthDate: '1961-04-12',
    scans: [{ monthsAgo: 48, vbmd: 152.4 }, { monthsAgo: 36, vbmd: 150.9 }, { monthsAgo: 24, vbmd: 151.8 }, { monthsAgo: 12, vbmd: 149.6 }, { monthsAgo: 2, vbmd: 150.2 }],
  },
  {
    id: DEMO_PATIENT_IDS.osteopenic, given: 'Oscar', family: 'Demo-Osteopenic', gender: 'male', birthDate: '1954-09-30', alendronate: true,
    scans: [{ monthsAgo: 44, vbmd: 104.1 }, { monthsAgo: 30, vbmd: 101.7 }, { monthsAgo: 18, vbmd: 99.2 }, { monthsAgo: 5, vbmd: 100.4 }],
  },
  {
    id: DEMO_PATIENT_IDS.declining, given: 'Diana', family: 'Demo-Declining', gender: 'female', birthDate: '1958-01-23',
    scans: [{ monthsAgo: 50, vbmd: 139.8 }, { monthsAgo: 40, vbmd: 126.5 }, { monthsAgo: 30, vbmd: 112.0 }, { monthsAgo: 20, vbmd: 98.3 }, { monthsAgo: 9, vbmd: 84.9 }, { monthsAgo: 1, vbmd: 72.6 }],
  },
  {
    id: DEMO_PATIENT_IDS.thoracic, given: 'Theo', family: 'Demo-Thoracic', gender: 'male', birthDate: '1949-06-05',
    scans: [{ monthsAgo: 30, vbmd: 118.2, chest: true }, { monthsAgo: 14, vbmd: 109.5, chest: true }, { monthsAgo: 3, vbmd: 96.8, chest: true, contrast: true }],
  },
];

const DEMO_UID_ROOT = '1.2.826.0.1.3680043.8.498.77';

function monthsBefore(now: Date, months: number): Date {
  const d = new Date(now.getTime());
  d.setUTCMonth(d.getUTCMonth() - months);
  d.setUTCHours(9 + (months % 7), 15, 0, 0);
  return d;
}

/** A plausible demo report: two summary levels around the target value plus a neighbour level. */
export function demoReport(patientIndex: number, scanIndex: number, scan: DemoScan, acquired: Date): VbmdReport {
  const uid = `${DEMO_UID_ROOT}.${patientIndex + 1}.${scanIndex + 1}`;
  const [a, b, extra]: VertebraLevel[] = scan.chest ? ['T11', 'T12', 'T10'] : ['L1', 'L2', 'T12'];
  const spread = 2.5 + (scanIndex % 3);
  const level = (lv: VertebraLevel, v: number, included: boolean): LevelResult => ({
    level: lv,
    labelConfidence: scan.chest ? 0.86 : 0.97,
    centerMm: [0, -30, -40 * (lv.startsWith('L') ? 2 : 1)],
    roiHuMedian: Math.round((v * 1.05 + 2) * 10) / 10,
    roiHuMean: Math.round((v * 1.05 + 3) * 10) / 10,
    roiHuSd: 18,
    roiVoxels: 1400,
    vbmd: Math.round(v * 10) / 10,
    included,
    exclusionReason: null,
    roiSource: 'geometric',
  });
  const va = Math.round((scan.vbmd - spread / 2) * 10) / 10;
  const vb = Math.round((scan.vbmd + spread / 2) * 10) / 10;
  const mean = Math.round(((va + vb) / 2) * 10) / 10;
  return vbmdReport.parse({
    schema: 'vbmd.report/1',
    input: {
      kind: 'dicomweb',
      studyInstanceUid: uid,
      seriesInstanceUid: `${uid}.1`,
      accessionNumber: `DEMO${patientIndex + 1}${String(scanIndex + 1).padStart(2, '0')}`,
      acquisitionDateTime: acquired.toISOString().replace(/\.\d+Z$/, 'Z'),
      dims: [512, 512, scan.chest ? 240 : 320],
      spacingMm: [0.74, 0.74, 1.25],
      kvp: 120,
      manufacturer: 'DEMO',
      contrast: scan.contrast ?? false,
    },
    // The neighbour level is measured and valid, just not one of the two the summary uses.
    levels: [level(extra, scan.vbmd + 6, true), level(a, va, true), level(b, vb, true)],
    summary: {
      vbmd: mean,
      levels: [a, b],
      basis: scan.chest ? 'thoracic-extrapolated' : 'lumbar',
      category: categoryForVbmd(mean),
    },
    calibration: scan.chest
      ? { method: 'phantomless-internal', slope: 1.04, intercept: 1.8, references: { airHu: -995, fatHu: -98, muscleHu: 48, bloodHu: scan.contrast ? 170 : 42 } }
      : { method: 'asynchronous', slope: 1.05, intercept: 2.0, references: { scanner: 'DEMO CT', kvp: 120 } },
    qc: { warnings: ['Synthetic demo data: not a measurement of a real person.'] },
    model: null,
    software: { name: 'vbmd', version: '0.1.0-demo' },
    timingsMs: {},
  });
}

function patientResource(p: DemoPatient): Patient {
  return {
    resourceType: 'Patient',
    id: p.id,
    meta: { tag: [{ ...DEMO_DATA_TAG }] },
    identifier: [{ system: 'https://vbmd.org/fhir/sid/demo-patient', value: p.id }],
    active: true,
    name: [{ use: 'official', family: p.family, given: [p.given], text: `${p.given} ${p.family} (synthetic demo)` }],
    gender: p.gender,
    birthDate: p.birthDate,
  };
}

function alendronate(p: DemoPatient, now: Date): MedicationRequest {
  return {
    resourceType: 'MedicationRequest',
    id: `${p.id}-alendronate`,
    meta: { tag: [{ ...DEMO_DATA_TAG }] },
    status: 'active',
    intent: 'order',
    medicationCodeableConcept: { coding: [{ system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: '46041', display: 'alendronate' }], text: 'Alendronate 70 mg weekly' },
    subject: { reference: `Patient/${p.id}` },
    authoredOn: monthsBefore(now, 28).toISOString().slice(0, 10),
  };
}

export type DemoTarget = string | FhirClient | FhirRepository;

export interface SeedResult {
  patientIds: typeof DEMO_PATIENT_IDS;
  analyses: number;
}

/**
 * Loads the demo patients and their results into a FHIR server (base URL or client) or straight into the
 * in-process repository. Idempotent: Patients are PUT with fixed ids and results are conditional creates, so
 * seeding twice leaves one copy. `now` fixes "today" (default: the real today, so the trend is recent).
 */
export async function seedDemoData(target: DemoTarget, opts: { now?: Date } = {}): Promise<SeedResult> {
  const now = opts.now ?? new Date();
  const post = poster(target);
  const base: Bundle = {
    resourceType: 'Bundle',
    type: 'transaction',
    entry: PATIENTS.flatMap((p) => [
      { resource: patientResource(p), request: { method: 'PUT' as const, url: `Patient/${p.id}` } },
      ...(p.alendronate
        ? [{ resource: alendronate(p, now), request: { method: 'PUT' as const, url: `MedicationRequest/${p.id}-alendronate` } }]
        : []),
    ]),
  };
  await post(base);
  let analyses = 0;
  for (const [pi, p] of PATIENTS.entries()) {
    for (const [si, scan] of p.scans.entries()) {
      const acquired = monthsBefore(now, scan.monthsAgo);
      const report = demoReport(pi, si, scan, acquired);
      const issued = new Date(acquired.getTime() + 3 * 3600_000).toISOString().replace(/\.\d+Z$/, 'Z');
      await post(buildAnalysisBundle(report, { patient: `Patient/${p.id}`, issued, tags: [{ ...DEMO_DATA_TAG }] }, { modelCard: loadModelCard() }));
      analyses++;
    }
  }
  return { patientIds: DEMO_PATIENT_IDS, analyses };
}

function poster(target: DemoTarget): (b: Bundle) => Promise<void> {
  if (typeof target === 'string' || target instanceof FhirClient) {
    const client = typeof target === 'string' ? new FhirClient({ baseUrl: target }) : target;
    return async (b) => {
      await client.transaction(b);
    };
  }
  const router = new FhirRouter();
  return async (b) => {
    // As the HTTP server does (../fhir-server/app.ts): conditional creates resolved inside the repository's lock.
    const outcome = await target.withTransaction(async () => {
      const resolved = await resolveConditionalCreates(b as unknown as MedplumBundle, target);
      if (isOperationOutcome(resolved)) return resolved;
      if (!resolved.bundle.entry?.length) return allOk; // everything was there already (a second seeding)
      const [oo] = await router.handleRequest(
        { method: 'POST', url: '/', pathname: '', body: resolved.bundle, params: {}, query: {}, config: { transactions: true } },
        target,
      );
      return oo;
    });
    const status = outcome.issue?.[0]?.severity;
    if (status === 'error' || status === 'fatal') {
      throw new VbmdError('remote', `Seeding the demo data failed: ${outcomeText(outcome) ?? 'transaction refused'}.`);
    }
  };
}
