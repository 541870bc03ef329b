import type { Bundle, BundleEntry, FhirResource, Identifier } from 'fhir/r4.js';
import type { VbmdReport } from '../bmd/report.js';
import { vbmdReport } from '../bmd/report.js';
import { VbmdError } from '../util/errors.js';
import type { AnalysisContext } from './context.js';
import { analysisContext } from './context.js';
import { buildDevice } from './device.js';
import { buildDiagnosticReport } from './diagnostic-report.js';
import { buildFractureObservation, buildFractureRetraction, fractureFindings, fractureKind } from './fracture.js';
import {
  deviceIdentifier,
  entryFullUrl,
  identifierQuery,
  modelCardIdentifier,
  provenanceKey,
  resultIdentifier,
  tagQuery,
} from './identifiers.js';
import type { ExistingResource, ExistingSet, WriteDecision } from './lifecycle.js';
import type { ModelCard } from './model-card.js';
import { buildModelCardDocument } from './model-card.js';
import type { ResultStatus } from './observation.js';
import { buildVbmdObservation, resultStatus } from './observation.js';
import { buildProvenance } from './provenance.js';
import { buildRiskAssessment, buildRiskWithdrawal } from './risk-assessment.js';

/**
 * One analysis as one FHIR transaction: the model card (DocumentReference) and the algorithm Device
 * (shared, conditional creates), the study's result set (DiagnosticReport, summary Observation, one
 * Observation per fractured level, RiskAssessment unless indeterminate) and the analysis' Provenance.
 *  - First write (`existing` absent): every entry is a conditional create on a stable identifier, entries
 *    refer to each other by `urn:uuid` fullUrls, so a retry finds every resource and creates none.
 *  - Re-analysis (`existing` = the current set, lifecycle.ts): the same resources are updated in place with
 *    `If-Match` on the version read, so a concurrent writer makes the transaction fail (412) instead of
 *    overwriting unseen; new fracture findings are conditional creates; fractures no longer found are amended.
 * Entries are in dependency order (what is referenced comes first), which the sequential write mode needs.
 * The Bundle is deterministic for the same report, `ctx.issued` and `existing`.
 */
export interface BundleOptions {
  /** The model card, attached when a model ran; null = leave it out (the sandbox without files). */
  modelCard?: ModelCard | null;
  existing?: ExistingSet;
  /** What lifecycle.ts decided; default a first write. */
  decision?: Extract<WriteDecision, { kind: 'create' | 'supersede' }>;
}

export function buildAnalysisBundle(reportIn: VbmdReport, ctxIn: AnalysisContext, options: BundleOptions = {}): Bundle {
  const report = parseReport(reportIn);
  const ctx = parseContext(ctxIn);
  const c: AnalysisContext = { ...ctx, issued: ctx.issued ?? new Date().toISOString().replace(/\.\d+Z$/, 'Z') };
  const existing = options.existing;
  const decision = options.decision ?? { kind: 'create', status: resultStatus(report) };
  const status: ResultStatus = decision.status;
  const superseded = decision.kind === 'supersede' ? decision.superseded : [];
  const entries: BundleEntry[] = [];
  const revises: string[] = [];

  const card = report.model && options.modelCard ? options.modelCard : undefined;
  let cardUrl: string | undefined;
  if (card) {
    const id = modelCardIdentifier(card.sha256Hex);
    cardUrl = entryFullUrl(id);
    entries.push(createEntry(buildModelCardDocument(card, c), id, identifierQuery(id)));
  }
  const deviceId = deviceIdentifier(report);
  const deviceUrl = entryFullUrl(deviceId);
  entries.push(createEntry(buildDevice(report, c, cardUrl), deviceId, identifierQuery(deviceId)));

  /** Update in place when the set has the resource, else conditional create; answers the reference. */
  const put = (resource: FhirResource, kind: Parameters<typeof resultIdentifier>[1], current: ExistingResource | undefined): string => {
    const id = resultIdentifier(report, kind);
    if (!current) {
      entries.push(createEntry(resource, id, identifierQuery(id)));
      return entryFullUrl(id);
    }
    entries.push(updateEntry(resource, current));
    if (current.versionId) revises.push(`${current.resourceType}/${current.id}/_history/${current.versionId}`);
    return `${current.resourceType}/${current.id}`;
  };
  // New resources of a re-analysed set start their own life: final (or preliminary), not amended.
  const statusFor = (current: ExistingResource | undefined): ResultStatus => (current ? status : resultStatus(report));

  const obsRef = put(buildVbmdObservation(report, c, { device: deviceUrl, status: statusFor(existing?.observation), superseded }), 'observation', existing?.observation);
  const findings = fractureFindings(report);
  const fractureRefs = findings.map((f) => {
    const current = existing?.fractures.get(f.level);
    return put(buildFractureObservation(report, c, f, { device: deviceUrl, status: statusFor(current) }), fractureKind(f.level), current);
  });
  for (const [level, current] of existing?.fractures ?? []) {
    if (findings.some((f) => f.level === level)) continue;
    fractureRefs.push(put(buildFractureRetraction(report, c, level, { device: deviceUrl, status }), fractureKind(level), current));
  }
  const riskRefs = { observation: obsRef, device: deviceUrl };
  const risk = buildRiskAssessment(report, c, { ...riskRefs, status: statusFor(existing?.riskAssessment) });
  let riskRef: string | undefined;
  if (risk) riskRef = put(risk, 'risk-assessment', existing?.riskAssessment);
  else if (existing?.riskAssessment) riskRef = put(buildRiskWithdrawal(report, c, { ...riskRefs, status }), 'risk-assessment', existing.riskAssessment);

  const drRef = put(
    buildDiagnosticReport(report, c, findings, { results: [obsRef, ...fractureRefs], status: statusFor(existing?.diagnosticReport), superseded }),
    'diagnostic-report',
    existing?.diagnosticReport,
  );
  const provId = provenanceKey(report);
  const targets = [drRef, obsRef, ...fractureRefs, ...(riskRef ? [riskRef] : [])];
  entries.push(createEntry(buildProvenance(report, c, { targets, device: deviceUrl, ...(cardUrl ? { modelCard: cardUrl } : {}), revises }), provId, tagQuery(provId)));
  return { resourceType: 'Bundle', type: 'transaction', entry: entries };
}

function createEntry(resource: FhirResource, id: Identifier, ifNoneExist: string): BundleEntry {
  return {
    fullUrl: entryFullUrl(id),
    resource,
    request: { method: 'POST', url: resource.resourceType, ifNoneExist },
  };
}

function updateEntry(resource: FhirResource, current: ExistingResource): BundleEntry {
  return {
    fullUrl: current.fullUrl,
    resource: { ...resource, id: current.id },
    request: {
      method: 'PUT',
      url: `${current.resourceType}/${current.id}`,
      ...(current.versionId ? { ifMatch: `W/"${current.versionId}"` } : {}),
    },
  };
}

function parseReport(r: unknown): VbmdReport {
  const parsed = vbmdReport.safeParse(r);
  if (!parsed.success) {
    const first = parsed.error.issues.slice(0, 3).map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new VbmdError('bad-input', `The report is not a valid vbmd.report/1 (${first.join('; ')}); nothing was written to FHIR.`);
  }
  return parsed.data;
}

function parseContext(c: unknown): AnalysisContext {
  const parsed = analysisContext.safeParse(c);
  if (!parsed.success) {
    const first = parsed.error.issues.slice(0, 3).map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new VbmdError('bad-input', `The FHIR context is invalid (${first.join('; ')}); give the patient as "Patient/<id>".`);
  }
  return parsed.data;
}
