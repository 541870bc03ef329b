import { describe, expect, it } from 'vitest';
import { decideAccess, inPatientCompartment, parseResourceScope, parseScopes } from '../../src/sandbox/smart-auth/scopes.js';
import type { FhirRequestShape } from '../../src/sandbox/smart-auth/scopes.js';

const req = (method: string, url: string, body?: unknown): FhirRequestShape => {
  const u = new URL(url, 'http://x');
  return { method, path: u.pathname, query: u.searchParams, ...(body ? { body } : {}) };
};

describe('SMART scopes', () => {
  it('parses v2 and v1 scopes and ignores the rest', () => {
    expect(parseResourceScope('patient/Observation.rs')).toEqual({ context: 'patient', resourceType: 'Observation', interactions: new Set(['r', 's']) });
    expect([...(parseResourceScope('user/*.read')?.interactions ?? [])]).toEqual(['r', 's']);
    expect([...(parseResourceScope('system/Observation.cud')?.interactions ?? [])]).toEqual(['c', 'u', 'd']);
    expect(parseResourceScope('patient/Observation.sr')).toBeUndefined(); // v2 order is c r u d s
    expect(parseResourceScope('patient/Observation.rs?category=imaging')).toBeUndefined();
    expect(parseScopes('openid fhirUser launch patient/Patient.rs')).toHaveLength(1);
  });
});

describe('decideAccess', () => {
  const patientGrant = { scopes: parseScopes('patient/Observation.rs patient/Patient.rs'), patient: 'p1' };

  it('confines patient/ scopes to the launch patient', () => {
    expect(decideAccess(patientGrant, req('GET', '/Observation?patient=p1')).ok).toBe(true);
    expect(decideAccess(patientGrant, req('GET', '/Observation?subject=Patient/p1&code=x')).ok).toBe(true);
    expect(decideAccess(patientGrant, req('POST', '/Observation/_search?patient=p1')).ok).toBe(true);
    expect(decideAccess(patientGrant, req('GET', '/Observation?patient=p1,p2')).ok).toBe(false);
    expect(decideAccess(patientGrant, req('GET', '/Observation?patient=p1&subject=Patient/p2')).ok).toBe(false);
    expect(decideAccess(patientGrant, req('GET', '/Observation')).ok).toBe(false);
    expect(decideAccess(patientGrant, req('GET', '/Patient?_id=p1')).ok).toBe(true);
    expect(decideAccess(patientGrant, req('GET', '/Patient?name=x')).ok).toBe(false);
    expect(decideAccess(patientGrant, req('GET', '/Patient/p2')).ok).toBe(false);
    expect(decideAccess(patientGrant, req('GET', '/Observation/o1'))).toEqual({ ok: true, needsCompartmentCheck: { resourceType: 'Observation', id: 'o1' } });
    expect(decideAccess(patientGrant, req('GET', '/Observation/o1/_history')).ok).toBe(false);
    expect(decideAccess(patientGrant, req('GET', '/Observation/$lastn?patient=p1')).ok).toBe(false);
    expect(decideAccess(patientGrant, req('PUT', '/Observation/o1')).ok).toBe(false);
    expect(decideAccess(patientGrant, req('GET', '/RiskAssessment?patient=p1')).ok).toBe(false);
    expect(decideAccess({ scopes: patientGrant.scopes }, req('GET', '/Observation?patient=p1')).ok).toBe(false);
  });

  it('lets system/ scopes write what they name, bundle entries included', () => {
    const system = { scopes: parseScopes('system/Observation.cru system/Device.cru') };
    expect(decideAccess(system, req('POST', '/Observation')).ok).toBe(true);
    expect(decideAccess(system, req('GET', '/Observation/1')).ok).toBe(true);
    expect(decideAccess(system, req('GET', '/Observation')).ok).toBe(false); // cru has no s(earch)
    expect(decideAccess(system, req('DELETE', '/Observation/1')).ok).toBe(false);
    const bundle = (urls: string[]) => ({ resourceType: 'Bundle', entry: urls.map((url) => ({ request: { method: 'POST', url } })) });
    expect(decideAccess(system, req('POST', '/', bundle(['Observation', 'Device']))).ok).toBe(true);
    expect(decideAccess(system, req('POST', '/', bundle(['Observation', 'Provenance']))).ok).toBe(false);
    expect(decideAccess(patientGrant, req('POST', '/', bundle(['Observation']))).ok).toBe(false);
  });

  it('checks the compartment of a stored resource', () => {
    expect(inPatientCompartment({ resourceType: 'Observation', subject: { reference: 'Patient/p1' } }, 'p1')).toBe(true);
    expect(inPatientCompartment({ resourceType: 'Observation', subject: { reference: 'Patient/p10' } }, 'p1')).toBe(false);
    expect(inPatientCompartment({ resourceType: 'Device' }, 'p1')).toBe(false);
    expect(inPatientCompartment({ resourceType: 'Patient', id: 'p1' }, 'p1')).toBe(true);
  });
});
