import type { DiagnosticReport, Observation, Provenance, RiskAssessment } from 'fhir/r4.js';
import type { VbmdReport } from '../bmd/report.js';
import { algorithmKeyOf, readAnalysisFields } from './analysis-fields.js';
import type { FhirClient } from './client.js';
import { FhirError } from './fhir-error.js';
import { provenanceKey, resultIdentifier } from './identifiers.js';
import type { ExistingResource, ExistingSet } from './lifecycle.js';

/**
 * What the FHIR server holds now for the study of `report`: the current result set (found by its stable
 * identifiers; the DiagnosticReport lists every Observation of the set in `result`) and whether this
 * analysis' Provenance exists. Four searches; nothing is written.
 */
export interface ServerState {
  existing?: ExistingSet;
  provenanceId?: string;
}

function existingOf(base: string, r: { resourceType: ExistingResource['resourceType']; id?: string; meta?: { versionId?: string }; status: string }): ExistingResource {
  if (!r.id) throw new Error(`${r.resourceType} from a search has no id`);
  return {
    resourceType: r.resourceType,
    id: r.id,
    ...(r.meta?.versionId ? { versionId: r.meta.versionId } : {}),
    status: r.status,
    fullUrl: `${base}/${r.resourceType}/${r.id}`,
  };
}

function tokenOf(id: { system?: string; value?: string }): string {
  return `${id.system}|${id.value}`;
}

/** `Observation/1`, `https://x/fhir/Observation/1` and `.../_history/2` all give `1`. */
function idFrom(ref: string | undefined, type: string): string | undefined {
  const m = ref ? new RegExp(`(?:^|/)${type}/([A-Za-z0-9\\-.]{1,64})(?:/_history/[^/]+)?$`).exec(ref) : null;
  return m?.[1];
}

export async function readServerState(client: FhirClient, report: VbmdReport, signal?: AbortSignal): Promise<ServerState> {
  const opts = { maxPages: 1, ...(signal ? { signal } : {}) };
  const base = client.baseUrl;
  const prov = provenanceKey(report);
  const [reports, provenances] = await Promise.all([
    client.search<DiagnosticReport>('DiagnosticReport', { identifier: tokenOf(resultIdentifier(report, 'diagnostic-report')), _count: 2 }, opts),
    client.search<Provenance>('Provenance', { _tag: tokenOf(prov), _count: 2 }, opts),
  ]);
  const provenanceId = provenances[0]?.id;
  if (reports.length === 0) return provenanceId ? { provenanceId } : {};
  if (reports.length > 1) {
    throw new FhirError(new URL(base).origin, undefined, 'GET DiagnosticReport', undefined,
      `The FHIR server ${new URL(base).origin} holds ${reports.length} vbmd DiagnosticReports for study ${report.input.studyInstanceUid ?? '(no UID)'}; one is expected. Nothing was written: remove the extra one.`);
  }
  const dr = reports[0]!;
  const fields = readAnalysisFields(dr);
  const obsIds = (dr.result ?? []).map((r) => idFrom(r.reference, 'Observation')).filter((x): x is string => !!x);
  const [observations, risks] = await Promise.all([
    obsIds.length ? client.search<Observation>('Observation', { _id: obsIds.join(','), _count: obsIds.length }, opts) : Promise.resolve([]),
    client.search<RiskAssessment>('RiskAssessment', { identifier: tokenOf(resultIdentifier(report, 'risk-assessment')), _count: 2 }, opts),
  ]);
  const summaryToken = tokenOf(resultIdentifier(report, 'observation'));
  const digest = resultIdentifier(report, 'observation').value!.slice('observation-'.length);
  const fractures = new Map<string, ExistingResource>();
  let observation: ExistingResource | undefined;
  let device: string | undefined;
  for (const o of observations) {
    for (const id of o.identifier ?? []) {
      if (tokenOf(id) === summaryToken) {
        observation = existingOf(base, o);
        const d = idFrom(o.device?.reference, 'Device');
        if (d) device = `Device/${d}`;
      }
      const m = /^fracture-([A-Z]\d{1,2})-([0-9a-f]+)$/.exec(id.value ?? '');
      if (m && m[2] === digest) fractures.set(m[1]!, existingOf(base, o));
    }
  }
  const existing: ExistingSet = {
    diagnosticReport: {
      ...existingOf(base, dr),
      ...(dr.subject?.reference ? { subject: dr.subject.reference } : {}),
      ...(fields?.analysisKey ? { analysisKey: fields.analysisKey } : {}),
      ...(fields && algorithmKeyOf(fields.algorithm) ? { algorithm: algorithmKeyOf(fields.algorithm) } : {}),
      superseded: fields?.superseded ?? [],
    },
    ...(observation ? { observation } : {}),
    ...(risks[0] ? { riskAssessment: existingOf(base, risks[0]) } : {}),
    fractures,
    ...(device ? { device } : {}),
  };
  return { existing, ...(provenanceId ? { provenanceId } : {}) };
}
