import type { Request } from 'express';
import { loadOrCreateClientKeyFile } from '../../cds-hooks/client-jwt.js';
import type { CdsClientKey } from '../../cds-hooks/client-jwt.js';
import type { EnvConfig } from '../config.js';
import { FhirClient } from '../fhir/client.js';
import { createFhirApp, TransactionalMemoryRepository } from '../sandbox/fhir-server/index.js';
import { DEMO_PATIENT_IDS, seedDemoData } from '../sandbox/demo/patients.js';
import { staticTokenAuthorizer } from '../jobs/http-api.js';
import type { ServiceStores } from '../jobs/stores.js';
import { StaticTokenProvider } from '../net/token-provider.js';
import type { ServiceAppParts } from '../server.js';
import { ensureDemoStudies } from '../sandbox/demo/ct-studies.js';
import type { DemoStudy } from '../sandbox/demo/ct-studies.js';
import { loadOrCreateSandboxTokens, sandboxPaths } from '../sandbox/local-files.js';

/**
 * The sandbox builder of `vbmd start` (src/cli/service.ts): what nothing configured means. An in-process FHIR
 * server with demo patients at /fhir behind the sandbox SMART authorization server, a folder of generated demo
 * CT studies, and a sandbox CDS client key pair. The production builder is the FHIR client from config.
 */
export const SANDBOX_CDS_CLIENT_ISS = 'urn:vbmd:sandbox-ehr';

export interface SandboxCredentials {
  /** Full access to the sandbox FHIR server (the "EHR" role): the worker's writes, `vbmd hook` prefetch. */
  serviceToken: string;
  /** For POST /api/studies/{uid}/analyze, /api/jobs, /api/cohort. */
  apiToken: string;
  cdsClientKeyFile: string;
}

export type SandboxInfo = SandboxCredentials & { fhirBaseUrl: string; demoStudies: DemoStudy[] };

/** Where the sandbox EHR's routers go when the service listens (the service app's parts). */
export interface SandboxEhrParts {
  rootRouters: NonNullable<ServiceAppParts['rootRouters']>;
  mounts: NonNullable<ServiceAppParts['mounts']>;
}

export interface SandboxBuildInput {
  cfg: EnvConfig;
  dataDir: string;
  stores: ServiceStores;
  publicBaseUrl: string;
  /** The demo DICOM folder (absent when images come from DICOMweb). */
  demoFolder: string | undefined;
  skipDemoStudies: boolean | undefined;
  /** Present when the service listens: the sandbox EHR (FHIR server + SMART) is mounted there. */
  ehr: SandboxEhrParts | undefined;
}

export interface SandboxSide {
  fhir: FhirClient;
  sandbox: SandboxInfo;
  sandboxKey: CdsClientKey;
}

export async function buildSandbox(input: SandboxBuildInput): Promise<SandboxSide> {
  const { stores, dataDir, publicBaseUrl } = input;
  if (stores.kind === 'embedded') {
    // The sandbox FHIR store lives in memory and starts empty; finished jobs would otherwise stop a demo
    // study from being analysed (and written) again after a restart.
    await stores.queue.purge(['completed']);
  }
  const tokens = loadOrCreateSandboxTokens(dataDir);
  const paths = sandboxPaths(dataDir);
  const sandboxKey = await loadOrCreateClientKeyFile(paths.cdsClientKey, SANDBOX_CDS_CLIENT_ISS);
  const fhirBaseUrl = `${publicBaseUrl}/fhir`;
  const fhir = new FhirClient({ baseUrl: fhirBaseUrl, auth: new StaticTokenProvider(tokens.serviceToken) });
  const demoStudies = input.skipDemoStudies || !input.demoFolder ? [] : await ensureDemoStudies(input.demoFolder);
  const sandbox: SandboxInfo = { ...tokens, cdsClientKeyFile: paths.cdsClientKey, fhirBaseUrl, demoStudies };
  if (input.ehr) await mountSandboxEhr(input.cfg, input.ehr, publicBaseUrl, fhirBaseUrl, tokens.serviceToken);
  return { fhir, sandbox, sandboxKey };
}

/** The fake EHR: the in-process FHIR server with the demo patients, behind the sandbox SMART server. */
async function mountSandboxEhr(cfg: EnvConfig, ehr: SandboxEhrParts, publicBaseUrl: string, fhirBaseUrl: string, serviceToken: string): Promise<void> {
  const repository = new TransactionalMemoryRepository();
  await seedDemoData(repository);
  // Loaded only here: production never starts the sandbox authorization server.
  const { createSandboxSmart } = await import('../sandbox/smart-auth/index.js');
  const smart = await createSandboxSmart({
    issuerUrl: `${publicBaseUrl}/auth`,
    fhirBaseUrl,
    clientId: cfg.SMART_CLIENT_ID,
    accessTokenTtlS: cfg.SANDBOX_ACCESS_TOKEN_TTL_S,
    sessionTtlS: cfg.SANDBOX_SESSION_TTL_S,
    anonymousRead: cfg.SANDBOX_ANONYMOUS_READ,
    listPatients: async () => Object.values(DEMO_PATIENT_IDS).map((id) => ({ id, label: id })),
    readResource: (type, id) => repository.readResource(type, id),
  });
  const serviceAuth = staticTokenAuthorizer([serviceToken]);
  ehr.rootRouters.push(smart.router);
  ehr.mounts.push({
    path: '/fhir',
    handler: createFhirApp({
      repository,
      baseUrl: fhirBaseUrl,
      verifyAccess: async (req: Request) => ((await serviceAuth(req)) ? { ok: true } : smart.verifyAccess(req)),
    }),
  });
}
