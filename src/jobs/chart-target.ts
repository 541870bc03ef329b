import type { Patient } from 'fhir/r4.js';
import type { DicomPatientIdentity } from '../dicom/patient-identity.js';
import type { DicomSource } from '../dicom/source.js';
import type { FhirClient } from '../fhir/client.js';
import { FhirError } from '../fhir/fhir-error.js';
import { VbmdError } from '../util/errors.js';
import type { AnalysisJobData } from './analysis-job.js';
import { accessionIssuerAgrees, matchPatient, systemForIssuer } from './patient-match.js';
import type { PatientMatchConfig } from './patient-match.js';
import type { StudyWatch, WatchStore } from './watches.js';

/**
 * Whose chart a study's result goes to, decided before any pixels are read, and checked. The patient comes
 * from the job (the analyze API, an ImagingStudy notification), else from the order's watch for the
 * study's accession, else from the study's DICOM PatientID looked up as a Patient identifier (none or several
 * found: held for review; the archive backfill relies on this). Then the
 * study's DICOM patient is compared with that FHIR Patient (patient-match.ts). A disagreement, two orders
 * claiming one accession, or a job and an order naming different patients stop the job as `needs-review`:
 * nothing is written to any chart, and the reason (ids, no PHI) is in the job and the log.
 */
export interface ChartTarget {
  patient: string;
  serviceRequest?: string;
  /** The order's watch, marked found once the result is written. */
  watchId?: string;
  matchedBy: 'identifier' | 'name-and-birth-date';
}

export interface ChartTargetDeps {
  fhir: FhirClient;
  watches: WatchStore;
  patientMatch?: PatientMatchConfig;
  /** Reads the accession's issuer when an order gave one and the study search did not return it. */
  source?: DicomSource;
}

/** What an order says about the study it expects: a watch as stored, or as the job's record carries it. */
type OrderClaim = Pick<StudyWatch, 'id' | 'patientId' | 'serviceRequestId' | 'accessionSystem'>;

/** The order the record came with (the poller's watch), from the record itself: nothing is read again. */
function recordClaim(job: AnalysisJobData): OrderClaim | undefined {
  if (!job.watchId || !job.patient) return undefined;
  return {
    id: job.watchId,
    patientId: job.patient.replace(/^Patient\//, ''),
    ...(job.serviceRequest ? { serviceRequestId: job.serviceRequest.replace(/^ServiceRequest\//, '') } : {}),
    ...(job.accessionIssuer ? { accessionSystem: job.accessionIssuer } : {}),
  };
}

/** The study's accession issuer; read from an instance only when an order's issuer must be compared with it. */
async function studyIssuer(deps: ChartTargetDeps, uid: string, identity: DicomPatientIdentity, claims: OrderClaim[], signal: AbortSignal): Promise<string | undefined> {
  if (identity.accessionIssuer || !deps.source || !claims.some((c) => c.accessionSystem)) return identity.accessionIssuer;
  return (await deps.source.studyIdentity(uid, { signal }))?.accessionIssuer;
}

const hold = (studyUid: string, why: string): VbmdError =>
  new VbmdError('needs-review', `Held for review, nothing written for study ${studyUid}: ${why}`, { studyInstanceUid: studyUid });

/** The order's watch for this study, if any; throws needs-review when orders conflict over it. Every order
 * naming the accession is looked at (one read of the watch store): two orders may claim one study. */
async function orderWatch(deps: ChartTargetDeps, job: AnalysisJobData, identity: DicomPatientIdentity, signal: AbortSignal): Promise<OrderClaim | undefined> {
  const cfg = deps.patientMatch ?? {};
  const uid = job.studyInstanceUid;
  const accession = job.accessionNumber ?? identity.accessionNumber;
  const claims: OrderClaim[] = accession ? await deps.watches.listByAccession(accession) : [];
  const named = recordClaim(job);
  if (named && !claims.some((w) => w.id === named.id)) claims.push(named);
  // Accession numbers are unique only per issuer: an order whose accession has another issuer is not this study's.
  const issuer = await studyIssuer(deps, uid, identity, claims, signal);
  const matching = claims.filter((w) => accessionIssuerAgrees(issuer, w.accessionSystem, cfg));
  if (named && !matching.some((w) => w.id === named.id)) {
    throw hold(uid, `the study's accession issuer differs from the one the order (watch ${named.id}) gave its accession.`);
  }
  if (matching.length > 1) {
    throw hold(uid, `${matching.length} orders claim the study's accession number (watches ${matching.map((w) => w.id).join(', ')}); only one can be its order.`);
  }
  return matching[0];
}

/** The Patient whose identifier is the study's PatientID (of the issuer's or the MRN system), when exactly one. */
async function patientByDicomId(deps: ChartTargetDeps, identity: DicomPatientIdentity, uid: string, signal: AbortSignal): Promise<string> {
  const cfg = deps.patientMatch ?? {};
  if (!identity.patientId) {
    throw new VbmdError('bad-input', `Study ${uid} has no PatientID and no order or caller named the patient; send the patient with the analyze request.`);
  }
  const system = systemForIssuer(identity.issuerOfPatientId, cfg) ?? cfg.mrnSystem;
  const found = await deps.fhir.search<Patient>('Patient', { identifier: system ? `${system}|${identity.patientId}` : identity.patientId, _count: 2 }, { signal, maxPages: 1 });
  if (found.length === 1 && found[0]!.id) return `Patient/${found[0]!.id}`;
  // No match or several: a person decides; a result in the wrong chart is worse than none.
  const origin = new URL(deps.fhir.baseUrl).origin;
  throw hold(
    uid,
    found.length === 0
      ? `no Patient in ${origin} has the study's DICOM PatientID${system ? ` in system ${system}` : ''}; register the patient or send the patient with the analyze request.`
      : `several Patients in ${origin} have the study's DICOM PatientID${system ? ` in system ${system}` : ''}; merge them or send the patient with the analyze request.`,
  );
}

async function readPatient(fhir: FhirClient, ref: string, uid: string, signal: AbortSignal): Promise<Patient> {
  try {
    return (await fhir.request<Patient>('GET', ref, { signal })).body;
  } catch (e) {
    if (e instanceof FhirError && (e.status === 404 || e.status === 410)) throw hold(uid, `${ref}, named by the order or the caller, does not exist in the FHIR server.`);
    throw e;
  }
}

export async function chartTarget(deps: ChartTargetDeps, job: AnalysisJobData, identity: DicomPatientIdentity, signal: AbortSignal): Promise<ChartTarget> {
  const uid = job.studyInstanceUid;
  const watch = await orderWatch(deps, job, identity, signal);
  const fromOrder = watch ? `Patient/${watch.patientId}` : undefined;
  if (job.patient && fromOrder && job.patient !== fromOrder) {
    throw hold(uid, `the request names ${job.patient} but the order for the study's accession (watch ${watch!.id}) names ${fromOrder}.`);
  }
  const patient = job.patient ?? fromOrder ?? (await patientByDicomId(deps, identity, uid, signal));
  const match = matchPatient(identity, await readPatient(deps.fhir, patient, uid, signal), deps.patientMatch ?? {});
  if (!match.ok) throw hold(uid, match.reason);
  const serviceRequest = job.serviceRequest ?? (watch?.serviceRequestId ? `ServiceRequest/${watch.serviceRequestId}` : undefined);
  return { patient, ...(serviceRequest ? { serviceRequest } : {}), ...(watch ? { watchId: watch.id } : {}), matchedBy: match.by };
}
