import { mkdir, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Bundle } from 'fhir/r4.js';
import type { VbmdReport } from '../bmd/report.js';
import { VbmdError } from '../util/errors.js';
import { buildAnalysisBundle } from './bundle.js';
import type { FhirClientSettings } from './client-config.js';
import { createFhirClient } from './client-config.js';
import type { AnalysisContext } from './context.js';
import { assertValidFhirResource } from './definitions.js';
import { loadModelCard } from './model-card.js';
import type { WrittenAnalysis } from './write-analysis.js';
import { writeAnalysis } from './write-analysis.js';

export interface FhirOutputOptions extends Omit<FhirClientSettings, 'baseUrl'> {
  /** Write the transaction Bundle (JSON) here (`vbmd analyze --fhir-bundle out.json`). */
  bundlePath?: string;
  /** POST the Bundle to this FHIR base (`vbmd analyze --fhir URL`). */
  fhirUrl?: string;
  /** `Patient/123` (or a bare id); required: the report carries no FHIR patient. */
  patient?: string;
  serviceRequest?: string;
  imagingStudy?: string;
  issued?: string;
  signal?: AbortSignal;
}

export interface FhirOutputResult {
  bundle: Bundle;
  bundlePath?: string;
  written?: WrittenAnalysis;
}

/**
 * CLI glue for `vbmd analyze`: build the analysis Bundle once, check it against the R4 definitions (a bad
 * Bundle is a bug and must not reach an EHR), then write it to a file and/or post it. Nothing to do when
 * neither a path nor a URL is given.
 */
export async function writeFhirOutputs(report: VbmdReport, o: FhirOutputOptions): Promise<FhirOutputResult> {
  if (!o.bundlePath && !o.fhirUrl) throw new VbmdError('bad-input', 'Give --fhir-bundle FILE or --fhir URL to produce FHIR output.');
  if (!o.patient) {
    throw new VbmdError('bad-input', 'FHIR output needs the patient: add --patient Patient/<id> (the id of the patient on the FHIR server).');
  }
  const ctx: AnalysisContext = {
    patient: o.patient.includes('/') ? o.patient : `Patient/${o.patient}`,
    ...(o.serviceRequest ? { serviceRequest: o.serviceRequest.includes('/') ? o.serviceRequest : `ServiceRequest/${o.serviceRequest}` } : {}),
    ...(o.imagingStudy ? { imagingStudy: o.imagingStudy.includes('/') ? o.imagingStudy : `ImagingStudy/${o.imagingStudy}` } : {}),
    // One release time for the file and the server copy.
    issued: o.issued ?? new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
  };
  // The file holds the first-write form of the analysis (with the model card, as the server gets it); the
  // server copy goes through writeAnalysis, which supersedes an earlier result of the study in place.
  const modelCard = report.model ? loadModelCard() : null;
  const bundle = buildAnalysisBundle(report, ctx, { modelCard });
  for (const e of bundle.entry ?? []) if (e.resource) assertValidFhirResource(e.resource);
  const result: FhirOutputResult = { bundle };
  if (o.bundlePath) {
    await mkdir(dirname(o.bundlePath), { recursive: true });
    // Write then rename: a crash never leaves half a Bundle that a later import would choke on.
    const tmp = `${o.bundlePath}.tmp-${process.pid}`;
    await writeFile(tmp, `${JSON.stringify(bundle, null, 2)}\n`, 'utf8');
    await rename(tmp, o.bundlePath);
    result.bundlePath = o.bundlePath;
  }
  if (o.fhirUrl) {
    const client = createFhirClient({ ...o, baseUrl: o.fhirUrl });
    result.written = await writeAnalysis(client, report, ctx, o.signal, { modelCard });
  }
  return result;
}
