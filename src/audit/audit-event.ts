import type { AuditEvent, AuditEventAgent, AuditEventEntity, Coding } from 'fhir/r4.js';
import { DCM_SYSTEM, DICOM_UID_SYSTEM } from '../fhir/codes.js';

/**
 * AuditEvents for each access to a patient's data, in the shape of IHE Basic Audit Log Patterns (BALP,
 * https://profiles.ihe.net/ITI/BALP): a RESTful `rest` event with the FHIR interaction as subtype, the
 * client as Source Role ID (DCM 110153) and the server as Destination Role ID (DCM 110152), the service as
 * the observer (security-source-type 4, application server), the Patient as an entity with object-role 1,
 * and the correlation id as an XrequestId entity (BALP BasicAuditEntityType), so one study's events can be
 * joined with its log lines. The three accesses:
 *  - a CDS hook read the patient's vBMD results (prefetched by the EHR or searched on its FHIR server):
 *    BALP PatientQuery, action E, with the hook named in a Query entity;
 *  - the worker retrieved the study's images from the PACS: DICOM "DICOM Instances Transferred" (DCM
 *    110104, PS3.15 A.5.3.4), action R, the study as an entity (object-role 3 Report, as PS3.15 maps a study);
 *  - the worker wrote the results: BALP PatientCreate, action C, one entity per resource written.
 * Nothing here carries names or MRNs: Patient references by server id, the study by its UID.
 */
const AUDIT_EVENT_TYPE = 'http://terminology.hl7.org/CodeSystem/audit-event-type';
const RESTFUL_INTERACTION = 'http://hl7.org/fhir/restful-interaction';
const ENTITY_TYPE = 'http://terminology.hl7.org/CodeSystem/audit-entity-type';
const OBJECT_ROLE = 'http://terminology.hl7.org/CodeSystem/object-role';
const SOURCE_TYPE = 'http://terminology.hl7.org/CodeSystem/security-source-type';
const BALP_ENTITY_TYPE = 'https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType';
const BALP = 'https://profiles.ihe.net/ITI/BALP/StructureDefinition';

export const SOURCE_ROLE: Coding = { system: DCM_SYSTEM, code: '110153', display: 'Source Role ID' };
export const DESTINATION_ROLE: Coding = { system: DCM_SYSTEM, code: '110152', display: 'Destination Role ID' };
export const INSTANCES_TRANSFERRED: Coding = { system: DCM_SYSTEM, code: '110104', display: 'DICOM Instances Transferred' };

export type AuditOutcome = 'success' | 'minor-failure' | 'serious-failure';
const OUTCOME_CODE: Record<AuditOutcome, AuditEvent['outcome']> = { success: '0', 'minor-failure': '4', 'serious-failure': '8' };

export interface AuditParty {
  /** The service (`vbmd`) or the remote system, by URL. */
  name: string;
  url: string;
}

interface Common {
  /** `Patient/123` on the FHIR server the result belongs to. */
  patient: string;
  correlationId?: string;
  outcome?: AuditOutcome;
  /** This service: observer and (for its own calls) the client. */
  service: AuditParty;
  recorded?: Date;
}

function agent(role: Coding, who: AuditParty, requestor: boolean): AuditEventAgent {
  return {
    type: { coding: [role] },
    who: { display: who.name, identifier: { system: 'urn:ietf:rfc:3986', value: who.url } },
    requestor,
    network: { address: who.url, type: '5' },
  };
}

function patientEntity(patient: string): AuditEventEntity {
  return { what: { reference: patient }, type: { system: ENTITY_TYPE, code: '1', display: 'Person' }, role: { system: OBJECT_ROLE, code: '1', display: 'Patient' } };
}

function requestIdEntity(correlationId: string | undefined): AuditEventEntity[] {
  return correlationId ? [{ what: { identifier: { value: correlationId } }, type: { system: BALP_ENTITY_TYPE, code: 'XrequestId', display: 'X-Request-Id' } }] : [];
}

function base(c: Common, profile: string | undefined, type: Coding, subtype: Coding | undefined, action: AuditEvent['action']): AuditEvent {
  return {
    resourceType: 'AuditEvent',
    ...(profile ? { meta: { profile: [`${BALP}/${profile}`] } } : {}),
    type,
    ...(subtype ? { subtype: [subtype] } : {}),
    action,
    recorded: (c.recorded ?? new Date()).toISOString(),
    outcome: OUTCOME_CODE[c.outcome ?? 'success'],
    agent: [],
    source: { observer: { display: c.service.name, identifier: { system: 'urn:ietf:rfc:3986', value: c.service.url } }, type: [{ system: SOURCE_TYPE, code: '4', display: 'Application Server' }] },
    entity: [],
  };
}

const REST: Coding = { system: AUDIT_EVENT_TYPE, code: 'rest', display: 'Restful Operation' };

/** A CDS hook read the patient's vBMD results: the EHR (the CDS client) asked, this service read. */
export function hookAccessEvent(c: Common & { hook: string; client: AuditParty; fhirServer?: AuditParty }): AuditEvent {
  const e = base(c, 'IHE.BasicAudit.PatientQuery', REST, { system: RESTFUL_INTERACTION, code: 'search-type', display: 'search type' }, 'E');
  e.agent = [agent(SOURCE_ROLE, c.service, false), agent(DESTINATION_ROLE, c.fhirServer ?? c.client, false), { ...agent({ system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType', code: 'IRCP', display: 'information recipient' }, c.client, true), network: undefined }];
  e.entity = [
    patientEntity(c.patient),
    {
      type: { system: ENTITY_TYPE, code: '2', display: 'System Object' },
      role: { system: OBJECT_ROLE, code: '24', display: 'Query' },
      description: `CDS Hooks ${c.hook}: the patient's vBMD Observations (prefetch or FHIR search)`,
      query: Buffer.from(`Observation?patient=${c.patient}`).toString('base64'),
    },
    ...requestIdEntity(c.correlationId),
  ];
  return e;
}

/** The worker retrieved a study's images (WADO-RS) from the PACS. */
export function studyRetrievalEvent(c: Common & { studyInstanceUid: string; pacs: AuditParty }): AuditEvent {
  const e = base(c, undefined, INSTANCES_TRANSFERRED, undefined, 'R');
  e.agent = [agent(SOURCE_ROLE, c.pacs, false), agent(DESTINATION_ROLE, c.service, true)];
  e.entity = [
    patientEntity(c.patient),
    {
      what: { identifier: { system: DICOM_UID_SYSTEM, value: `urn:oid:${c.studyInstanceUid}` } },
      type: { system: ENTITY_TYPE, code: '2', display: 'System Object' },
      role: { system: OBJECT_ROLE, code: '3', display: 'Report' },
      description: 'Study retrieved for vBMD measurement',
    },
    ...requestIdEntity(c.correlationId),
  ];
  return e;
}

/** The worker wrote the results (DiagnosticReport, Observations, RiskAssessment, ...) to the FHIR server. */
export function resultWriteEvent(c: Common & { fhirServer: AuditParty; resources: readonly string[] }): AuditEvent {
  const e = base(c, 'IHE.BasicAudit.PatientCreate', REST, { system: RESTFUL_INTERACTION, code: 'create', display: 'create' }, 'C');
  e.agent = [agent(SOURCE_ROLE, c.service, true), agent(DESTINATION_ROLE, c.fhirServer, false)];
  e.entity = [
    patientEntity(c.patient),
    ...c.resources.map((reference) => ({ what: { reference }, type: { system: ENTITY_TYPE, code: '2', display: 'System Object' }, role: { system: OBJECT_ROLE, code: '4', display: 'Domain Resource' } })),
    ...requestIdEntity(c.correlationId),
  ];
  return e;
}
