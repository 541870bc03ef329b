import { signClientJwt } from '../../cds-hooks/client-jwt.js';
import type { CdsClientKey } from '../../cds-hooks/client-jwt.js';

/**
 * An order-sign hook call as an EHR sends it for a CT order: the draft ServiceRequest (CPT code, accession as
 * an ACSN identifier) in `context.draftOrders`, the vBMD Observations prefetch filled, and the request signed
 * with the EHR's client JWT for the exact service URL (CDS Hooks 2.0 §Trusting CDS Clients).
 */
export interface CtOrder {
  patientId: string;
  userId: string;
  serviceRequestId: string;
  accession: string;
  cpt: string;
  /** The EHR's FHIR base, when it sends one. */
  fhirServer?: string;
  /** The prefetched vBMD Observations (default none). */
  observations?: unknown[];
}

export function orderSignBody(o: CtOrder): Record<string, unknown> {
  return {
    hook: 'order-sign',
    hookInstance: crypto.randomUUID(),
    ...(o.fhirServer ? { fhirServer: o.fhirServer } : {}),
    context: {
      userId: o.userId,
      patientId: o.patientId,
      draftOrders: {
        resourceType: 'Bundle',
        entry: [
          {
            resource: {
              resourceType: 'ServiceRequest',
              id: o.serviceRequestId,
              status: 'draft',
              intent: 'order',
              subject: { reference: `Patient/${o.patientId}` },
              code: { coding: [{ system: 'http://www.ama-assn.org/go/cpt', code: o.cpt }] },
              identifier: [{ type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'ACSN' }] }, value: o.accession }],
            },
          },
        ],
      },
    },
    prefetch: { vbmdObservations: { resourceType: 'Bundle', type: 'searchset', entry: (o.observations ?? []).map((resource) => ({ resource })) } },
  };
}

export interface HookCard {
  indicator: string;
  summary: string;
  detail?: string;
}

/** POSTs the order-sign call to the service at `base`, signed with `key`; the status and the cards. */
export async function signOrder(base: string, key: CdsClientKey, order: CtOrder): Promise<{ status: number; cards: HookCard[] }> {
  const url = `${base}/cds-services/vbmd-order-sign`;
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${await signClientJwt(key, url)}` },
    body: JSON.stringify(orderSignBody(order)),
  });
  const body = (await res.json()) as { cards?: HookCard[] };
  return { status: res.status, cards: body.cards ?? [] };
}
