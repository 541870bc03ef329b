import type { Bundle, BundleEntry, Observation } from 'fhir/r4.js';
import type { VbmdReport } from '../bmd/report.js';
import { VbmdError } from '../util/errors.js';
import { log } from '../util/log.js';
import { buildAnalysisBundle } from './bundle.js';
import type { FhirClient } from './client.js';
import type { AnalysisContext } from './context.js';
import { FhirError } from './fhir-error.js';

export interface WrittenResource {
  resourceType: string;
  id: string;
  /** false when the server already held it (a retry or re-run): nothing new was written. */
  created: boolean;
}

export interface WrittenAnalysis {
  device: WrittenResource;
  observation: WrittenResource;
  /** Absent when the summary is indeterminate (no risk statement is made). */
  riskAssessment?: WrittenResource;
  provenance: WrittenResource;
}

/**
 * Writes one analysis as one transaction (see buildAnalysisBundle) and returns the ids the server assigned
 * or found. Safe to call again for the same report: the second call creates nothing.
 */
export async function writeAnalysis(
  client: FhirClient,
  report: VbmdReport,
  ctx: AnalysisContext,
  signal?: AbortSignal,
): Promise<WrittenAnalysis> {
  const bundle = buildAnalysisBundle(report, ctx);
  const response = client.writeMode === 'sequential' ? await writeSequentially(client, bundle, signal) : await client.transaction(bundle, signal);
  const written = readTransactionResponse(client.baseUrl, bundle, response);
  if (!written.observation.created) await checkSamePatient(client, written, ctx, report, signal);
  log.info(
    {
      server: new URL(client.baseUrl).origin,
      observation: written.observation.id,
      created: written.observation.created,
    },
    written.observation.created ? 'vBMD results written to FHIR' : 'vBMD results already in FHIR; nothing new written',
  );
  return written;
}

/**
 * The analysis identity is (study, series, version), not the patient: the same StudyInstanceUID belongs to
 * one patient. If the server already holds this analysis for another patient (a wrong patient mapping, or a
 * study moved between patients), the conditional creates matched it and nothing was written; say so loudly
 * instead of reporting success.
 */
async function checkSamePatient(
  client: FhirClient,
  written: WrittenAnalysis,
  ctx: AnalysisContext,
  report: VbmdReport,
  signal?: AbortSignal,
): Promise<void> {
  const existing = await client.read<Observation>('Observation', written.observation.id, signal);
  const subject = existing.subject?.reference;
  if (subject && subject !== ctx.patient && !subject.endsWith(`/${ctx.patient}`)) {
    throw new VbmdError(
      'bad-input',
      `The FHIR server ${new URL(client.baseUrl).origin} already holds vBMD results of study ${report.input.studyInstanceUid ?? '(no UID)'} for another patient (${subject}, not ${ctx.patient}); nothing was written: resolve the patient mismatch first.`,
    );
  }
}

/**
 * The transaction's entries as separate conditional creates, in Bundle order (Device, Observation,
 * RiskAssessment, Provenance: everything is written after what it references), with `urn:uuid` references
 * rewritten to the ids the server returned. Answers a transaction-response-shaped Bundle.
 */
export async function writeSequentially(client: FhirClient, bundle: Bundle, signal?: AbortSignal): Promise<Bundle> {
  const resolved = new Map<string, string>();
  const out: BundleEntry[] = [];
  for (const e of bundle.entry ?? []) {
    if (!e.resource || !e.request) continue;
    let text = JSON.stringify(e.resource);
    for (const [placeholder, ref] of resolved) text = text.replaceAll(placeholder, ref);
    const type = e.resource.resourceType;
    const res = await client.request<{ id?: string } | undefined>('POST', e.request.url, {
      body: JSON.parse(text) as unknown,
      headers: { ...(e.request.ifNoneExist ? { 'if-none-exist': e.request.ifNoneExist } : {}), prefer: 'return=representation' },
      idempotent: !!e.request.ifNoneExist,
      ...(signal ? { signal } : {}),
    });
    const loc = res.headers.get('location') ?? res.headers.get('content-location') ?? '';
    const fromLoc = new RegExp(`(?:^|/)${type}/([A-Za-z0-9\\-.]{1,64})(?:/_history/[^/]+)?$`).exec(loc)?.[1];
    const id = res.body?.id ?? fromLoc;
    if (!id) {
      throw new FhirError(new URL(client.baseUrl).origin, res.status, `POST ${type}`, undefined,
        `The FHIR server ${new URL(client.baseUrl).origin} did not say which ${type} it created or found (no id, no Location).`);
    }
    if (e.fullUrl) resolved.set(e.fullUrl, `${type}/${id}`);
    out.push({ response: { status: String(res.status), location: `${type}/${id}` } });
  }
  return { resourceType: 'Bundle', type: 'transaction-response', entry: out };
}

/** Pairs the request entries with the transaction-response entries (same order, FHIR R4 3.1.0.11.4). */
export function readTransactionResponse(server: string, request: Bundle, response: Bundle): WrittenAnalysis {
  const reqEntries = request.entry ?? [];
  const resEntries = response.entry ?? [];
  if (response.resourceType !== 'Bundle' || resEntries.length !== reqEntries.length) {
    throw new FhirError(new URL(server).origin, undefined, 'POST transaction', undefined,
      `The FHIR server ${new URL(server).origin} answered the transaction with ${resEntries.length} entries for ${reqEntries.length} requests; its response cannot be matched to what was written.`);
  }
  const out: Partial<WrittenAnalysis> = {};
  reqEntries.forEach((req, i) => {
    const w = written(server, req, resEntries[i]);
    switch (w.resourceType) {
      case 'Device': out.device = w; break;
      case 'Observation': out.observation = w; break;
      case 'RiskAssessment': out.riskAssessment = w; break;
      case 'Provenance': out.provenance = w; break;
      default: break;
    }
  });
  if (!out.device || !out.observation || !out.provenance) {
    throw new FhirError(new URL(server).origin, undefined, 'POST transaction', undefined,
      `The FHIR server ${new URL(server).origin} answered the transaction without the expected Device, Observation and Provenance.`);
  }
  return out as WrittenAnalysis;
}

function written(server: string, req: BundleEntry, res: BundleEntry): WrittenResource {
  const type = req.resource?.resourceType ?? 'Resource';
  const status = Number.parseInt(res.response?.status ?? '', 10);
  // location is "Type/id" or "Type/id/_history/v", relative or absolute; some servers only return the resource.
  const loc = res.response?.location ?? '';
  const m = /(?:^|\/)([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/[^/]+)?$/.exec(loc);
  const id = m && m[1] === type ? m[2] : res.resource?.id;
  if (!id) {
    throw new FhirError(new URL(server).origin, status || undefined, 'POST transaction', undefined,
      `The FHIR server ${new URL(server).origin} did not say which ${type} it created or found (no location or id in the response).`);
  }
  return { resourceType: type, id, created: status === 201 };
}
