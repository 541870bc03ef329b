import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Bundle, FhirResource } from 'fhir/r4.js';
import type { VbmdReport } from '../../src/bmd/report.js';
import { vbmdReport } from '../../src/bmd/report.js';
import { formatReport } from '../../src/cli/analyze.js';
import { buildDicomOutputs } from '../../src/dicom-output/build.js';
import { headerLines } from '../../src/dicom-output/key-image.js';
import { buildAnalysisBundle } from '../../src/fhir/bundle.js';
import { VBMD_SUMMARY_CODE_TOKEN, VERTEBRAL_COMPRESSION_FRACTURE_SNOMED } from '../../src/fhir/codes.js';
import { readFractureFindings } from '../../src/fhir/finding-reader.js';
import { exclusionsText } from '../../src/fhir/observation-notes.js';
import { assertValidFhirResource } from '../../src/fhir/definitions.js';
import { loadModelCard } from '../../src/fhir/model-card.js';
import { startFhirServer } from '../../src/sandbox/fhir-server/start.js';
import type { StartedFhirServer } from '../../src/sandbox/fhir-server/start.js';
import { cohortHistogramSvg, cohortOutput, COHORT_FORMATS } from '../../src/population/output/index.js';
import type { CohortResult } from '../../src/population/query.js';
import { runCohort } from '../../src/population/query.js';
import { FhirSearchSource } from '../../src/population/sources/fhir-search.js';
import { isVbmdError } from '../../src/util/errors.js';
import { orderCards } from '../../cds-hooks/order-card.js';
import { patientViewCards } from '../../cds-hooks/patient-view-card.js';
import { readOsteoporosisRisk, readVbmdResults } from '../../cds-hooks/vbmd-results.js';
import { renderTrendChart } from '../../smart-app/src/chart.js';
import { latestRisk, parseVbmdObservations } from '../../smart-app/src/fhir-parse.js';
import { legendView } from '../../smart-app/src/legend.js';
import { buildTrend, changeSincePreviousStudy, latestByLevel, latestStudy, rateOfChange } from '../../smart-app/src/trend.js';
import { latestLevelsView, levelToggles, noDataView, rateView, riskView, studyFacts, summaryView, valuesTable } from '../../smart-app/src/views.js';
import { naturalize, srGroups } from '../dicom-output/read-back.js';
import type { Fixture } from './no-nan-fixtures.js';
import { fixtures, fixtureSource, fixtureVolume, withValueAt } from './no-nan-fixtures.js';

/**
 * "No NaN anywhere a person reads": every edge case real scans produce, rendered through every output a person
 * reads (CLI table, FHIR text, CDS cards, SMART app views, cohort files, DICOM SR and key image), must not say
 * NaN, undefined, null, Infinity or [object Object]. The cards, the app and the cohort read what the writer's
 * mapping put on a FHIR server (the repo's test server, over HTTP), as they do in use.
 */
const FORBIDDEN: readonly RegExp[] = [/NaN/, /undefined/, /Infinity/, /\[object Object\]/, /\bnull\b/];

/** Each forbidden word found in `text`, with some context, labelled by where it was. */
function badWords(where: string, text: string): string[] {
  const out: string[] = [];
  for (const re of FORBIDDEN) {
    const m = re.exec(text);
    if (m) out.push(`${where}: "${m[0]}" in "...${text.slice(Math.max(0, m.index - 60), m.index + 40)}..."`);
  }
  return out;
}

/** Every string and number in a JSON-like value (FHIR resources, cards, NDJSON rows, naturalized DICOM):
 * strings must not hold the words, numbers must be finite. JSON null itself is no prose and is skipped. */
function badValues(where: string, value: unknown): string[] {
  if (typeof value === 'string') return badWords(where, value);
  if (typeof value === 'number') return Number.isFinite(value) ? [] : [`${where}: number ${value}`];
  if (value === undefined) return [`${where}: undefined`];
  if (value === null || typeof value !== 'object' || ArrayBuffer.isView(value) || value instanceof ArrayBuffer) return [];
  return Object.entries(value).flatMap(([k, v]) => badValues(`${where}.${k}`, v));
}

/** The text of an HTML fragment as a reader sees it (the markup itself is checked separately). */
function visibleText(html: string): string {
  return html
    .replace(/<[^>]*>/g, ' ')
    .replace(/&(amp|lt|gt|quot|#39);/g, (_, e: string) => ({ amp: '&', lt: '<', gt: '>', quot: '"', '#39': "'" })[e] as string)
    .replace(/\s+/g, ' ');
}

const CASES = fixtures();
/** Cases whose latest measured result is in a range the patient-view card alerts on. */
const ALERTING = new Set(['single', 'thoracic']);
const CT_ORDER = { code: { system: 'http://loinc.org', code: '24627-2', display: 'CT Chest' } };
const CARD_OPTIONS = { patientId: '', declinePctPerYear: 5, smartLaunchUrl: 'https://vbmd.example.org/smart/launch.html' };
const ISSUED = '2025-01-01T00:00:00Z';

let server: StartedFhirServer;
let cohort: CohortResult;

function bundleOf(report: VbmdReport, patient: string): Bundle {
  // What `vbmd analyze --fhir` does (src/fhir/report-output.ts): the model card when a model ran, R4-checked.
  const bundle = buildAnalysisBundle(report, { patient: `Patient/${patient}`, issued: ISSUED }, { modelCard: report.model ? loadModelCard() : null });
  for (const e of bundle.entry ?? []) if (e.resource) assertValidFhirResource(e.resource);
  return bundle;
}

async function search(query: string): Promise<FhirResource[]> {
  const res = await fetch(`${server.baseUrl}/${query}&_count=100`);
  expect(res.status).toBe(200);
  return ((await res.json()) as Bundle).entry?.map((e) => e.resource as FhirResource) ?? [];
}

/** What the CDS service and the app search for: the summary Observations, RiskAssessments, fracture findings. */
async function chartResources(patient: string): Promise<{ observations: FhirResource[]; risks: FhirResource[]; fractures: FhirResource[] }> {
  const fracture = `${VERTEBRAL_COMPRESSION_FRACTURE_SNOMED.system}|${VERTEBRAL_COMPRESSION_FRACTURE_SNOMED.code}`;
  return {
    observations: await search(`Observation?subject=Patient/${patient}&code=${encodeURIComponent(VBMD_SUMMARY_CODE_TOKEN)}`),
    risks: await search(`RiskAssessment?subject=Patient/${patient}`),
    fractures: await search(`Observation?subject=Patient/${patient}&code=${encodeURIComponent(fracture)}`),
  };
}

beforeAll(async () => {
  server = await startFhirServer({ port: 0 });
  for (const f of CASES) {
    for (const r of f.reports) {
      const res = await fetch(server.baseUrl, { method: 'POST', headers: { 'content-type': 'application/fhir+json' }, body: JSON.stringify(bundleOf(r, f.patient)) });
      expect(res.status, await res.clone().text()).toBe(200);
    }
  }
  cohort = await runCohort(new FhirSearchSource(server.baseUrl, { pageSize: 50 }), { asOf: '2025-06-01' });
});
afterAll(async () => {
  await server?.close();
});

/** The app's page for a patient, composed from the same pure views as smart-app/src/app.ts render(). */
function appHtml(observations: readonly unknown[], risks: readonly unknown[]): { html: string; studies: number; skipped: number } {
  const parsed = parseVbmdObservations(observations);
  if (parsed.items.length === 0) return { html: noDataView(), studies: 0, skipped: parsed.skipped.length };
  const trend = buildTrend(parsed.items);
  const rate = rateOfChange(trend.summary);
  const latest = latestStudy(parsed.items);
  const focus = latest!;
  const all = new Set(trend.levels.map((l) => l.level));
  const html = [
    summaryView({ focus, fromContext: false, latest, rate, notes: '' }),
    renderTrendChart(trend, { width: 640, height: 300, showLevels: all, highlight: focus.observationId, rate }),
    legendView(trend, rate, all),
    rateView(rate, trend.summary.length, changeSincePreviousStudy(trend.summary)),
    levelToggles(trend, all),
    valuesTable(parsed.items),
    studyFacts(focus),
    riskView(latestRisk(risks)),
    latestLevelsView(latestByLevel(parsed.items)),
  ].join('\n');
  return { html, studies: parsed.items.length, skipped: parsed.skipped.length };
}

describe.each(CASES)('$name', (f: Fixture) => {
  const latest = f.reports[f.reports.length - 1]!;

  it('CLI text (vbmd analyze)', () => {
    const text = formatReport(latest);
    expect(text).toMatch(/^vBMD/);
    for (const l of latest.levels) expect(text).toContain(l.level);
    expect(badWords('formatReport', text)).toEqual([]);
  });

  it("FHIR resources from the writer's mapping", () => {
    const bundle = bundleOf(latest, f.patient);
    const types = (bundle.entry ?? []).map((e) => e.resource!.resourceType);
    expect(types).toEqual(expect.arrayContaining(['Observation', 'DiagnosticReport', 'Device', 'Provenance']));
    expect(badValues('Bundle', bundle)).toEqual([]);
  });

  it('CDS cards (order-select/order-sign, patient-view)', async () => {
    const { observations, risks, fractures: fractureObs } = await chartResources(f.patient);
    const results = readVbmdResults(observations);
    const risk = readOsteoporosisRisk(risks, results[0]?.observationId);
    const fractures = readFractureFindings(fractureObs);
    // The graded fracture is read back; the one with zero heights gave no finding.
    expect(fractures.map((x) => `${x.level} ${x.grade}`)).toEqual(f.patient === 'single' ? ['L4 2'] : []);
    const cards = [
      ...orderCards([CT_ORDER], results[0] ?? null, CARD_OPTIONS),
      ...patientViewCards({ results, ...(risk ? { risk } : {}), fractures }, { ...CARD_OPTIONS, patientId: f.patient }),
    ];
    expect(cards.length).toBe(ALERTING.has(f.patient) ? 2 : 1);
    expect(badValues('cards', cards)).toEqual([]);
  });

  it('SMART app views', async () => {
    const { observations, risks } = await chartResources(f.patient);
    const page = appHtml(observations, risks);
    // Every written result is shown, except one without an acquisition time (counted as skipped, not drawn).
    const timed = f.reports.filter((r) => r.input.acquisitionDateTime).length;
    expect([page.studies, page.skipped]).toEqual([timed, f.reports.length - timed]);
    expect(badWords('app html', page.html)).toEqual([]);
    expect(badWords('app text', visibleText(page.html))).toEqual([]);
  });

  it('DICOM SR and key image', () => {
    const lines = headerLines(latest).map((l) => l.text);
    expect(lines.filter((t) => latest.levels.some((l) => t.startsWith(`${l.level} `)))).toHaveLength(latest.levels.length);
    expect(badWords('key image', lines.join('\n'))).toEqual([]);
    let outputs: ReturnType<typeof buildDicomOutputs>;
    try {
      outputs = buildDicomOutputs({ report: latest, volume: fixtureVolume(), source: fixtureSource(latest), createdAt: new Date(ISSUED) });
    } catch (e) {
      // With no ROI at all there is nothing to put on the PACS: a typed error that says so, in words.
      expect(latest.levels.every((l) => !l.geometricRoi), String(e)).toBe(true);
      expect(isVbmdError(e) && e.code).toBe('no-spine');
      expect(badWords('error', (e as Error).message)).toEqual([]);
      return;
    }
    // One measurement group per level (with or without an ROI) and the summary's.
    expect(srGroups(naturalize(outputs.sr.bytes)).map((g) => g.trackingId)).toEqual(
      expect.arrayContaining([...latest.levels.map((l) => expect.stringMatching(new RegExp(`^${l.level} `))), 'vBMD summary']),
    );
    for (const o of [outputs.sr, outputs.seg, outputs.keyImage]) expect(badValues(o.kind, naturalize(o.bytes))).toEqual([]);
    expect(badValues('notes', outputs.notes)).toEqual([]);
  });
});

describe('a level excluded with no reason recorded and no value', () => {
  it('reads "not measured" in the CLI table and the FHIR note, "no value" in the key image', () => {
    const chest = CASES[0]!.reports[0]!;
    const t8 = chest.levels.find((l) => l.level === 'T8')!;
    expect([t8.included, t8.exclusionReason, t8.vbmd]).toEqual([false, null, null]);
    expect(formatReport(chest)).toMatch(/^T8 .* - +geometric +excluded: not measured$/m);
    expect(exclusionsText(chest)).toMatch(/T8: not measured\.$/);
    expect(headerLines(chest).map((l) => l.text)).toContain('T8 no value excluded: not measurable');
  });
});

describe('cohort outputs', () => {
  it('histogram SVG', () => {
    const svg = cohortHistogramSvg(cohort.rows, cohort.summary);
    expect(svg).toMatch(/^<svg/);
    expect(badWords('histogram', svg)).toEqual([]);
  });

  it.each(COHORT_FORMATS)('%s', (format) => {
    // Every case has its row, but the one without an acquisition time: counted as not usable instead.
    expect(new Set(cohort.rows.map((r) => r.patient))).toEqual(new Set(CASES.map((f) => f.patient).filter((p) => p !== 'no-time')));
    expect(cohort.summary.skipped['no-effective-time']).toBe(1);
    const text = [...cohortOutput(cohort, format)].join('');
    if (format === 'ndjson' || format === 'group') {
      const values = format === 'ndjson' ? text.trim().split('\n').map((l) => JSON.parse(l) as unknown) : [JSON.parse(text) as unknown];
      expect(badValues(format, values)).toEqual([]);
    } else {
      expect(badWords(format, text)).toEqual([]);
    }
  });
});

describe('non-finite numbers', () => {
  const PATHS: (string | number)[][] = [
    ['summary', 'vbmd'],
    ['levels', 0, 'vbmd'],
    ['levels', 0, 'modelVbmd'],
    ['levels', 0, 'geometricVbmd'],
    ['levels', 0, 'roiHuMedian'],
    ['levels', 0, 'labelConfidence'],
    ['levels', 0, 'centerMm', 2],
    ['calibration', 'slope'],
    ['calibration', 'intercept'],
    ['timingsMs', 'total'],
  ];
  it.each(PATHS.flatMap((p) => [[p.join('.'), p, Number.NaN] as const, [p.join('.'), p, Number.POSITIVE_INFINITY] as const]))(
    'the report schema refuses %s = %s',
    (_name, path, value) => {
      const r = vbmdReport.safeParse(withValueAt(path, value));
      expect(r.success).toBe(false);
      expect(r.error?.issues[0]?.path).toEqual(path);
    },
  );

  it('the FHIR mapping refuses such a report with a typed error, writing nothing', () => {
    const e = (() => {
      try {
        buildAnalysisBundle(withValueAt(['summary', 'vbmd'], Number.NaN), { patient: 'Patient/x', issued: ISSUED });
      } catch (err) {
        return err;
      }
      return undefined;
    })();
    expect(isVbmdError(e) && e.code).toBe('bad-input');
    expect((e as Error).message).toContain('summary.vbmd');
  });

  it('the DICOM results refuse such a report with a typed error', () => {
    const bad = withValueAt(['levels', 0, 'vbmd'], Number.NaN);
    const e = (() => {
      try {
        buildDicomOutputs({ report: bad, volume: fixtureVolume(), source: fixtureSource(bad), createdAt: new Date(ISSUED) });
      } catch (err) {
        return err;
      }
      return undefined;
    })();
    expect(isVbmdError(e) && e.code).toBe('bad-input');
    expect((e as Error).message).toContain('levels.0.vbmd');
  });

  // formatReport and the key image text take the report as the engine made it (no schema in between), so
  // they must say "-" or "no value" themselves.
  it.each(PATHS.map((p) => [p.join('.'), p] as const))('the CLI table and the key image text say no number for %s', (_name, path) => {
    for (const value of [Number.NaN, Number.NEGATIVE_INFINITY]) {
      const r = withValueAt(path, value);
      expect(badWords('formatReport', formatReport(r))).toEqual([]);
      expect(badWords('key image', headerLines(r).map((l) => l.text).join('\n'))).toEqual([]);
    }
  });
});
