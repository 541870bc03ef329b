import type { Request, Response } from 'express';
import type { z } from 'zod';
import { calledUrl } from './client-auth.js';
import type { VerifiedClient } from './client-auth.js';
import type { CdsHooksDeps } from './deps.js';
import { CDS_SERVICES } from './discovery.js';
import type { CdsServiceDefinition, ServiceId } from './discovery.js';
import type { patientViewRequest } from './hook-request.js';
import type { FetchDataOptions } from './prefetch.js';

/** A hook request body once its service's schema (hook-request.ts) has accepted it. */
export type HookBody = {
  hook: string;
  hookInstance: string;
  fhirServer?: string;
  fhirAuthorization?: z.infer<typeof patientViewRequest>['fhirAuthorization'];
  context: Record<string, unknown> & { patientId: string; draftOrders?: unknown; selections?: string[] };
  prefetch?: Record<string, unknown>;
};

/** What every CDS service needs of one call besides the body: its definition, FHIR access, the card link. */
export interface HookCall {
  serviceId: ServiceId;
  def: CdsServiceDefinition;
  /** How the prefetch a client did not send may be fetched from its fhirServer (prefetch.ts). */
  fetchOpts: FetchDataOptions;
  /** The SMART app's launch URL for card links (SMART_LAUNCH_URL, else beside the called URL). */
  smartLaunchUrl: () => string;
}

export function hookCall(deps: CdsHooksDeps, serviceId: ServiceId, req: Request, client: VerifiedClient): HookCall {
  const listed = deps.clientFhirServers?.get(client.iss);
  return {
    serviceId,
    def: CDS_SERVICES.find((s) => s.id === serviceId)!,
    fetchOpts: {
      ...(deps.fhirTimeoutMs ? { timeoutMs: deps.fhirTimeoutMs } : {}),
      allowInsecureHttp: deps.allowInsecureHttp === true,
      ...(listed ? { allowedFhirServers: listed } : {}),
    },
    smartLaunchUrl: () =>
      deps.smartLaunchUrl ?? `${calledUrl(req, deps.publicBaseUrl).replace(/\/cds-services(\/.*)?$/, '')}/smart/launch.html`,
  };
}

export function badRequest(res: Response, message: string): void {
  res.status(400).json({ error: 'bad-request', message });
}
