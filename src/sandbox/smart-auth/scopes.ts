/**
 * SMART App Launch 2.x scopes (scopes-and-launch-context.md) and the access decision the sandbox FHIR
 * server makes for a token: which interactions a scope allows, and the patient compartment a `patient/`
 * scope is confined to. Pure functions: the HTTP side lives in smart-auth.ts.
 */

export type ScopeContext = 'patient' | 'user' | 'system';
export type Interaction = 'c' | 'r' | 'u' | 'd' | 's';

export interface ResourceScope {
  context: ScopeContext;
  /** A resource type or `*`. */
  resourceType: string;
  interactions: ReadonlySet<Interaction>;
}

const V2_PERMISSIONS = /^c?r?u?d?s?$/;

/** Parses one clinical-data scope (`patient/Observation.rs`, v1 `user/*.read`); undefined for others
 * (`openid`, `launch`, ...) and for ones with a query suffix we do not enforce (`?category=`). */
export function parseResourceScope(scope: string): ResourceScope | undefined {
  const m = /^(patient|user|system)\/([A-Za-z]+|\*)\.([a-z*]+)$/.exec(scope);
  if (!m) return undefined;
  const [, context, resourceType, perms] = m as unknown as [string, ScopeContext, string, string];
  let interactions: Interaction[];
  // SMART v1 names, equivalent to v2 `rs` / `cud` / `cruds` (scopes-and-launch-context.md, "SMART 1.0 scopes").
  if (perms === 'read') interactions = ['r', 's'];
  else if (perms === 'write') interactions = ['c', 'u', 'd'];
  else if (perms === '*') interactions = ['c', 'r', 'u', 'd', 's'];
  else if (V2_PERMISSIONS.test(perms) && perms.length > 0) interactions = [...perms] as Interaction[];
  else return undefined;
  return { context, resourceType, interactions: new Set(interactions) };
}

export function parseScopes(scope: string): ResourceScope[] {
  return scope
    .split(/\s+/)
    .filter(Boolean)
    .map(parseResourceScope)
    .filter((s): s is ResourceScope => s !== undefined);
}

/** One FHIR REST request, reduced to what the decision needs. `path` is relative to the FHIR base. */
export interface FhirRequestShape {
  method: string;
  /** e.g. `/Observation`, `/Patient/123`, `/` */
  path: string;
  query: URLSearchParams;
  /** Parsed JSON body (batch/transaction Bundles). */
  body?: unknown;
}

export interface TokenGrant {
  scopes: ResourceScope[];
  /** Launch context patient id, required for `patient/` scopes. */
  patient?: string;
}

export type Decision =
  | { ok: true; needsCompartmentCheck?: { resourceType: string; id: string } }
  | { ok: false; status: 403; reason: string };

/** Search parameters that place a search inside one patient's compartment (FHIR R4 CompartmentDefinition
 * patient: Observation.subject/patient, RiskAssessment.subject, ImagingStudy.subject, ...). */
const PATIENT_PARAMS = ['patient', 'subject'];

function allows(scopes: ResourceScope[], context: ScopeContext[], type: string, interaction: Interaction): ResourceScope[] {
  return scopes.filter(
    (s) => context.includes(s.context) && (s.resourceType === type || s.resourceType === '*') && s.interactions.has(interaction),
  );
}

function deny(reason: string): Decision {
  return { ok: false, status: 403, reason };
}

function referencesPatient(value: string, patient: string): boolean {
  return value === patient || value === `Patient/${patient}` || value.endsWith(`/Patient/${patient}`);
}

/**
 * Decides whether `grant` allows `req`. `user/` and `system/` scopes are not confined to a patient;
 * `patient/` scopes are confined to the launch patient: searches must name that patient (and only that
 * one), reads by id of other types need a compartment check on the stored resource (returned as
 * `needsCompartmentCheck`), and writes are not allowed by read-only scopes.
 */
export function decideAccess(grant: TokenGrant, req: FhirRequestShape): Decision {
  const method = req.method.toUpperCase();
  const segments = req.path.split('/').filter(Boolean);
  const unconfined: ScopeContext[] = ['user', 'system'];

  // Batch/transaction: every entry must be allowed on its own (unconfined scopes only: a patient-scoped
  // client has no business writing bundles).
  if (method === 'POST' && segments.length === 0) {
    const entries = (req.body as { entry?: { request?: { method?: string; url?: string } }[] } | undefined)?.entry ?? [];
    for (const e of entries) {
      const m = (e.request?.method ?? '').toUpperCase();
      const type = (e.request?.url ?? '').split(/[/?]/)[0];
      const need: Interaction = m === 'POST' ? 'c' : m === 'PUT' || m === 'PATCH' ? 'u' : m === 'DELETE' ? 'd' : 'r';
      if (!type || allows(grant.scopes, unconfined, type, need).length === 0) {
        return deny(`Bundle entry ${m} ${type || '?'} is not allowed by the token's scopes`);
      }
    }
    return { ok: true };
  }

  const [type, id, ...rest] = segments;
  if (!type || !/^[A-Z][A-Za-z]+$/.test(type)) return deny('Only resource-type requests are allowed');
  if (rest.length > 0 || (id !== undefined && id.startsWith('$'))) {
    // _history, $operations and compartment searches are not part of what SMART tokens here grant.
    return deny(`${req.path} is not allowed with SMART scopes`);
  }
  const isSearch = (method === 'GET' && id === undefined) || (method === 'POST' && id === '_search');
  const isRead = method === 'GET' && id !== undefined && id !== '_search';
  const interaction: Interaction | undefined = isSearch
    ? 's'
    : isRead
      ? 'r'
      : method === 'POST'
        ? 'c'
        : method === 'PUT' || method === 'PATCH'
          ? 'u'
          : method === 'DELETE'
            ? 'd'
            : undefined;
  if (!interaction) return deny(`${method} is not allowed`);

  if (allows(grant.scopes, unconfined, type, interaction).length > 0) return { ok: true };
  if (allows(grant.scopes, ['patient'], type, interaction).length === 0) {
    return deny(`The token's scopes do not allow ${interaction === 's' ? 'searching' : 'this request on'} ${type}`);
  }
  const patient = grant.patient;
  if (!patient) return deny('A patient/ scope without a launch patient allows nothing');

  if (interaction === 's') {
    if (type === 'Patient') {
      const ids = req.query.getAll('_id').flatMap((v) => v.split(','));
      return ids.length > 0 && ids.every((v) => v === patient) ? { ok: true } : deny('Patient searches must be limited to the launch patient (_id)');
    }
    const values = PATIENT_PARAMS.flatMap((p) => req.query.getAll(p)).flatMap((v) => v.split(','));
    if (values.length === 0) return deny(`Searches of ${type} must name the launch patient (patient=)`);
    return values.every((v) => referencesPatient(v, patient)) ? { ok: true } : deny('The search names another patient');
  }
  if (interaction === 'r') {
    if (type === 'Patient') return id === patient ? { ok: true } : deny('The token is for another patient');
    return { ok: true, needsCompartmentCheck: { resourceType: type, id: id as string } };
  }
  return deny('Writes are not allowed by patient/ read scopes');
}

/** True when the stored resource lies in the patient's compartment (by subject or patient reference). */
export function inPatientCompartment(resource: unknown, patient: string): boolean {
  const r = resource as { resourceType?: string; id?: string; subject?: { reference?: string }; patient?: { reference?: string } };
  if (r.resourceType === 'Patient') return r.id === patient;
  const ref = r.subject?.reference ?? r.patient?.reference;
  return typeof ref === 'string' && referencesPatient(ref, patient);
}
