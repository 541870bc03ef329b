import type { Bundle, BundleEntry, FhirResource, Identifier } from 'fhir/r4.js';
import type { VbmdReport } from '../bmd/report.js';
import { vbmdReport } from '../bmd/report.js';
import { VbmdError } from '../util/errors.js';
import type { AnalysisContext } from './context.js';
import { analysisContext } from './context.js';
import { buildDevice } from './device.js';
import { analysisIdentifier, deviceIdentifier, entryFullUrl, identifierQuery, tagQuery } from './identifiers.js';
import { buildVbmdObservation } from './observation.js';
import { buildProvenance } from './provenance.js';
import { buildRiskAssessment } from './risk-assessment.js';

/**
 * One analysis as one FHIR transaction: Device, Observation, RiskAssessment (unless indeterminate),
 * Provenance. Every entry is a conditional create on a stable identifier (see identifiers.ts), entries refer
 * to each other by `urn:uuid` fullUrls that the server rewrites to the ids it assigns or finds. So:
 *  - the server applies all or nothing (transaction), a crash never half-writes;
 *  - a retry or re-run of the same version finds every resource and creates none (200 instead of 201);
 *  - a new engine/model version has new identifiers and adds a new set; nothing is updated or deleted.
 * The Bundle is deterministic for the same report and `ctx.issued`.
 */
export function buildAnalysisBundle(reportIn: VbmdReport, ctxIn: AnalysisContext): Bundle {
  const report = parseReport(reportIn);
  const ctx = parseContext(ctxIn);
  const issued = ctx.issued ?? new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  const c: AnalysisContext = { ...ctx, issued };

  const deviceId = deviceIdentifier(report);
  const obsId = analysisIdentifier(report, 'observation');
  const riskId = analysisIdentifier(report, 'risk-assessment');
  const provId = analysisIdentifier(report, 'provenance');
  const deviceUrl = entryFullUrl(deviceId);
  const obsUrl = entryFullUrl(obsId);
  const riskUrl = entryFullUrl(riskId);

  const device = buildDevice(report, c);
  const observation = buildVbmdObservation(report, c, { device: deviceUrl });
  const risk = buildRiskAssessment(report, c, { observation: obsUrl, device: deviceUrl });
  const provenance = buildProvenance(report, c, { targets: risk ? [obsUrl, riskUrl] : [obsUrl], device: deviceUrl });

  const entries: BundleEntry[] = [
    createEntry(device, deviceId, identifierQuery(deviceId)),
    createEntry(observation, obsId, identifierQuery(obsId)),
    ...(risk ? [createEntry(risk, riskId, identifierQuery(riskId))] : []),
    createEntry(provenance, provId, tagQuery(provId)),
  ];
  return { resourceType: 'Bundle', type: 'transaction', entry: entries };
}

function createEntry(resource: FhirResource, id: Identifier, ifNoneExist: string): BundleEntry {
  return {
    fullUrl: entryFullUrl(id),
    resource,
    request: { method: 'POST', url: resource.resourceType, ifNoneExist },
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
