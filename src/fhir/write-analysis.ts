import type { Bundle, BundleEntry, Device } from 'fhir/r4.js';
import type { VbmdReport } from '../bmd/report.js';
import { VbmdError } from '../util/errors.js';
import { log } from '../util/log.js';
import { buildAnalysisBundle } from './bundle.js';
import type { FhirClient } from './client.js';
import type { AnalysisContext } from './context.js';
import { FhirError } from './fhir-error.js';
import { deviceIdentifier, provenanceKey, tagQuery } from './identifiers.js';
import type { ExistingSet } from './lifecycle.js';
import { decideWrite } from './lifecycle.js';
import type { ModelCard } from './model-card.js';
import { loadModelCard } from './model-card.js';
import { buildProvenance } from './provenance.js';
import { readServerState } from './result-state.js';

export interface WrittenResource {
  resourceType: string;
  id: string;
  /** false when the server already held it (a retry or re-run) or it was updated in place. */
  created: boolean;
}

export interface WrittenAnalysis {
  /** created: first result of the study; superseded: a re-analysis replaced the earlier result in place;
   * unchanged: this analysis was already the current result (nothing written); stale: a later analysis had
   * already superseded this one (nothing written). */
  outcome: 'created' | 'superseded' | 'unchanged' | 'stale';
  device: WrittenResource;
  modelCard?: WrittenResource;
  diagnosticReport: WrittenResource;
  observation: WrittenResource;
  fractures: WrittenResource[];
  /** Absent when the summary is indeterminate and no earlier risk statement existed. */
  riskAssessment?: WrittenResource;
  provenance: WrittenResource;
}

export interface WriteOptions {
  /** Default: models/MODEL_CARD.md when a model ran; null leaves the card out. */
  modelCard?: ModelCard | null;
}

/** A concurrent writer changed the set between our read and our write (If-Match failed): read again. */
const MAX_ATTEMPTS = 4;

/**
 * Writes one analysis: reads the study's current result set, decides (lifecycle.ts) whether this is a first
 * result, a re-analysis that supersedes the current one, or nothing to do, and writes in one transaction
 * (see buildAnalysisBundle). Safe to call again for the same report, and safe against a concurrent writer:
 * updates carry If-Match, so a lost race is re-read and decided again rather than overwriting.
 */
export async function writeAnalysis(
  client: FhirClient,
  report: VbmdReport,
  ctx: AnalysisContext,
  signal?: AbortSignal,
  options: WriteOptions = {},
): Promise<WrittenAnalysis> {
  const modelCard = report.model ? (options.modelCard === undefined ? loadModelCard() : options.modelCard) : null;
  const origin = new URL(client.baseUrl).origin;
  for (let attempt = 1; ; attempt++) {
    const state = await readServerState(client, report, signal);
    if (state.existing) assertSamePatient(origin, state.existing, ctx, report);
    const decision = decideWrite(report, state.existing);
    if (decision.kind === 'unchanged' || decision.kind === 'stale') {
      const written = await settled(client, report, ctx, state.existing!, state.provenanceId, decision.kind, signal);
      log.info({ server: origin, diagnosticReport: written.diagnosticReport.id, outcome: decision.kind },
        decision.kind === 'unchanged' ? 'vBMD results already in FHIR; nothing new written' : 'a later analysis already superseded this one; nothing written');
      return written;
    }
    const bundle = buildAnalysisBundle(report, ctx, { modelCard, ...(state.existing ? { existing: state.existing } : {}), decision });
    let response: Bundle;
    try {
      response = client.writeMode === 'sequential' ? await writeSequentially(client, bundle, signal) : await client.transaction(bundle, signal);
    } catch (e) {
      if (e instanceof FhirError && (e.status === 409 || e.status === 412) && attempt < MAX_ATTEMPTS) {
        log.warn({ server: origin, status: e.status, attempt }, 'the vBMD result set changed while writing; reading it again');
        continue;
      }
      throw e;
    }
    const written = readTransactionResponse(client.baseUrl, bundle, response, decision.kind === 'create' ? 'created' : 'superseded');
    // A first write whose DiagnosticReport already existed: another writer created the set between our read
    // and our write. Read again: it is either this analysis (unchanged) or another one to supersede.
    if (decision.kind === 'create' && !written.diagnosticReport.created && attempt < MAX_ATTEMPTS) continue;
    log.info(
      { server: origin, diagnosticReport: written.diagnosticReport.id, observation: written.observation.id, outcome: written.outcome, status: decision.status },
      written.outcome === 'created' ? 'vBMD results written to FHIR' : 'vBMD re-analysis superseded the earlier result in FHIR',
    );
    return written;
  }
}

/**
 * The analysis identity is the study, not the patient: one StudyInstanceUID belongs to one patient. If the
 * server already holds this study's results for another patient (a wrong patient mapping, or a study moved
 * between patients), refuse loudly instead of adding to or amending another patient's chart.
 */
function assertSamePatient(origin: string, existing: ExistingSet, ctx: AnalysisContext, report: VbmdReport): void {
  const subject = existing.diagnosticReport.subject;
  if (subject && subject !== ctx.patient && !subject.endsWith(`/${ctx.patient}`)) {
    throw new VbmdError(
      'bad-input',
      `The FHIR server ${origin} already holds vBMD results of study ${report.input.studyInstanceUid ?? '(no UID)'} for another patient (${subject}, not ${ctx.patient}); nothing was written: resolve the patient mismatch first.`,
    );
  }
}

/** Nothing to write: answer the current ids. The Provenance of this analysis exists unless a sequential
 * write crashed just before it; then it is completed here (a conditional create, safe to repeat). */
async function settled(
  client: FhirClient,
  report: VbmdReport,
  ctx: AnalysisContext,
  existing: ExistingSet,
  provenanceId: string | undefined,
  outcome: 'unchanged' | 'stale',
  signal?: AbortSignal,
): Promise<WrittenAnalysis> {
  const ref = (r: { resourceType: string; id: string }): WrittenResource => ({ resourceType: r.resourceType, id: r.id, created: false });
  let deviceId = existing.device?.split('/')[1];
  if (!deviceId) {
    const id = deviceIdentifier(report);
    const devices = await client.search<Device>('Device', { identifier: `${id.system}|${id.value}`, _count: 1 }, { maxPages: 1, ...(signal ? { signal } : {}) });
    deviceId = devices[0]?.id;
  }
  if (!deviceId) {
    throw new FhirError(new URL(client.baseUrl).origin, undefined, 'GET Device', undefined, `The FHIR server ${new URL(client.baseUrl).origin} holds the vBMD result set but not its algorithm Device.`);
  }
  let provenance: WrittenResource;
  if (provenanceId) provenance = { resourceType: 'Provenance', id: provenanceId, created: false };
  else {
    const targets = [existing.diagnosticReport, ...(existing.observation ? [existing.observation] : []), ...existing.fractures.values(), ...(existing.riskAssessment ? [existing.riskAssessment] : [])].map((r) => `${r.resourceType}/${r.id}`);
    const key = provenanceKey(report);
    const created = await client.create(buildProvenance(report, ctx, { targets, device: `Device/${deviceId}` }), { ifNoneExist: tagQuery(key), ...(signal ? { signal } : {}) });
    provenance = { resourceType: 'Provenance', id: created.id ?? '', created: true };
  }
  return {
    outcome,
    device: { resourceType: 'Device', id: deviceId, created: false },
    diagnosticReport: ref(existing.diagnosticReport),
    observation: ref(existing.observation ?? existing.diagnosticReport),
    fractures: [...existing.fractures.values()].map(ref),
    ...(existing.riskAssessment ? { riskAssessment: ref(existing.riskAssessment) } : {}),
    provenance,
  };
}

/**
 * The transaction's entries as separate requests (conditional creates and If-Match updates), in Bundle order
 * (everything is written after what it references, the DiagnosticReport, which decides the lifecycle, last
 * but the Provenance), with `urn:uuid` references rewritten to the ids the server returned. Answers a
 * transaction-response-shaped Bundle. Not atomic: a crash leaves a partial set that the next run completes.
 */
export async function writeSequentially(client: FhirClient, bundle: Bundle, signal?: AbortSignal): Promise<Bundle> {
  const resolved = new Map<string, string>();
  const out: BundleEntry[] = [];
  for (const e of bundle.entry ?? []) {
    if (!e.resource || !e.request) continue;
    let text = JSON.stringify(e.resource);
    for (const [placeholder, ref] of resolved) text = text.replaceAll(placeholder, ref);
    const type = e.resource.resourceType;
    const headers: Record<string, string> = { prefer: 'return=representation' };
    if (e.request.ifNoneExist) headers['if-none-exist'] = e.request.ifNoneExist;
    if (e.request.ifMatch) headers['if-match'] = e.request.ifMatch;
    const res = await client.request<{ id?: string } | undefined>(e.request.method, e.request.url, {
      body: JSON.parse(text) as unknown,
      headers,
      idempotent: e.request.method !== 'POST' || !!e.request.ifNoneExist,
      ...(signal ? { signal } : {}),
    });
    const loc = res.headers.get('location') ?? res.headers.get('content-location') ?? '';
    const fromLoc = new RegExp(`(?:^|/)${type}/([A-Za-z0-9\\-.]{1,64})(?:/_history/[^/]+)?$`).exec(loc)?.[1];
    const id = res.body?.id ?? fromLoc;
    if (!id) {
      throw new FhirError(new URL(client.baseUrl).origin, res.status, `${e.request.method} ${type}`, undefined,
        `The FHIR server ${new URL(client.baseUrl).origin} did not say which ${type} it created or found (no id, no Location).`);
    }
    if (e.fullUrl) resolved.set(e.fullUrl, `${type}/${id}`);
    out.push({ response: { status: String(res.status), location: `${type}/${id}` } });
  }
  return { resourceType: 'Bundle', type: 'transaction-response', entry: out };
}

/** Pairs the request entries with the transaction-response entries (same order, FHIR R4 3.1.0.11.4). */
export function readTransactionResponse(server: string, request: Bundle, response: Bundle, outcome: 'created' | 'superseded'): WrittenAnalysis {
  const reqEntries = request.entry ?? [];
  const resEntries = response.entry ?? [];
  const origin = new URL(server).origin;
  if (response.resourceType !== 'Bundle' || resEntries.length !== reqEntries.length) {
    throw new FhirError(origin, undefined, 'POST transaction', undefined,
      `The FHIR server ${origin} answered the transaction with ${resEntries.length} entries for ${reqEntries.length} requests; its response cannot be matched to what was written.`);
  }
  const out: Partial<WrittenAnalysis> & { fractures: WrittenResource[] } = { fractures: [] };
  reqEntries.forEach((req, i) => {
    const w = written(origin, req, resEntries[i]!);
    const idValue = (req.resource as { identifier?: { value?: string }[] } | undefined)?.identifier?.[0]?.value ?? '';
    switch (w.resourceType) {
      case 'DocumentReference': out.modelCard = w; break;
      case 'Device': out.device = w; break;
      case 'DiagnosticReport': out.diagnosticReport = w; break;
      case 'Observation':
        if (idValue.startsWith('fracture-')) out.fractures.push(w);
        else out.observation = w;
        break;
      case 'RiskAssessment': out.riskAssessment = w; break;
      case 'Provenance': out.provenance = w; break;
      default: break;
    }
  });
  if (!out.device || !out.observation || !out.diagnosticReport || !out.provenance) {
    throw new FhirError(origin, undefined, 'POST transaction', undefined,
      `The FHIR server ${origin} answered the transaction without the expected Device, DiagnosticReport, Observation and Provenance.`);
  }
  return { ...(out as Omit<WrittenAnalysis, 'outcome'>), outcome };
}

function written(origin: string, req: BundleEntry, res: BundleEntry): WrittenResource {
  const type = req.resource?.resourceType ?? 'Resource';
  const status = Number.parseInt(res.response?.status ?? '', 10);
  // location is "Type/id" or "Type/id/_history/v", relative or absolute; some servers only return the resource.
  const loc = res.response?.location ?? '';
  const m = /(?:^|\/)([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/[^/]+)?$/.exec(loc);
  const id = m && m[1] === type ? m[2] : res.resource?.id;
  if (!id) {
    throw new FhirError(origin, status || undefined, 'POST transaction', undefined,
      `The FHIR server ${origin} did not say which ${type} it created or found (no location or id in the response).`);
  }
  return { resourceType: type, id, created: status === 201 };
}
