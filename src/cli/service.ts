import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Request } from 'express';
import { createClientJwtVerifier } from '../../cds-hooks/client-auth.js';
import type { ClientJwtVerifier } from '../../cds-hooks/client-auth.js';
import type { CdsClientKey } from '../../cds-hooks/client-jwt.js';
import { loadCtValueSet } from '../../cds-hooks/ct-value-set.js';
import { RedisFeedbackStore, SqliteFeedbackStore } from '../../cds-hooks/feedback-store.js';
import type { FeedbackStore } from '../../cds-hooks/feedback-store.js';
import { MemoryReplayCache, RedisReplayCache } from '../../cds-hooks/replay-cache.js';
import type { CdsHooksDeps } from '../../cds-hooks/router.js';
import { connectOriginsFromConfig, createSmartAppRouter, frameAncestorsFromConfig } from '../../smart-app/server.js';
import type { CdsClientConfig, EnvConfig } from '../config.js';
import { config, serviceMode } from '../config.js';
import type { DicomSource } from '../dicom/source.js';
import { FolderDicomSource } from '../dicom/folder-source.js';
import { dicomWebSourceFromConfig } from '../dicom/dicomweb/from-config.js';
import type { DicomWebSource } from '../dicom/dicomweb/source.js';
import type { AuditParty } from '../audit/audit-event.js';
import type { AuditSink } from '../audit/audit-trail.js';
import type { FhirClient } from '../fhir/client.js';
import { fhirClientFromConfig } from '../fhir/client-config.js';
import { DEMO_DATA_TAG } from '../fhir/codes.js';
import { DEMO_PATIENT_IDS } from '../sandbox/demo/patients.js';
import { createAnalysisHandler } from '../jobs/analysis-worker.js';
import type { AnalyzeStudy } from '../jobs/analysis-worker.js';
import { engineAnalyzeStudy } from '../jobs/engine.js';
import { anyAuthorizer, staticTokenAuthorizer } from '../jobs/http-api.js';
import type { ApiAuthorizer } from '../jobs/http-api.js';
import type { JobWorker } from '../jobs/queue.js';
import { jobRetryPolicy } from '../jobs/queue.js';
import { openStores } from '../jobs/stores.js';
import type { ServiceStores } from '../jobs/stores.js';
import { startStudyPoller } from '../jobs/study-poller.js';
import { superviseWorkerProcess } from '../jobs/worker-process.js';
import type { SupervisedWorker } from '../jobs/worker-process.js';
import type { StudyPoller } from '../jobs/study-poller.js';
import { createCohortRouter } from '../population/http.js';
import { compileTherapyValueSet, loadTherapyValueSet } from '../population/therapy-value-set.js';
import type { TherapyMatcher } from '../population/therapy-value-set.js';
import { FhirSearchSource } from '../population/sources/fhir-search.js';
import { createServiceApp, listen } from '../server.js';
import type { ListeningServer, ReadinessCheck, ServiceAppParts } from '../server.js';
import { VbmdError, userMessage } from '../util/errors.js';
import { log } from '../util/log.js';
import { sandboxPaths } from '../sandbox/local-files.js';
import { buildSandbox, SANDBOX_CDS_CLIENT_ISS } from './service-sandbox.js';
import type { SandboxInfo } from './service-sandbox.js';
import { sharedModelRunner } from '../model/shared-runner.js';
import { createPacsStep, stowClientFromConfig } from '../dicom-output/pacs-step.js';
import { auditSinkFromConfig, countingVerifier, createOpsRouter, registerStoreMetrics, startWorkerMetricsServer } from './service-ops.js';
import { createRetrievalGate } from '../backfill/retrieval-gate.js';
import type { RetrievalGate } from '../dicom/dicomweb/http.js';

/**
 * The whole service, as `vbmd start` runs it. Nothing configured = the sandbox (src/cli/service-sandbox.ts:
 * in-process FHIR server with demo patients at /fhir behind the sandbox SMART authorization server, a folder of
 * generated demo CT studies, the embedded queue, a sandbox CDS client key pair); FHIR_BASE_URL + DICOMWEB_URL +
 * CDS_CLIENTS (+ REDIS_URL) = production. `--worker-only` runs the analysis worker and study poller without HTTP
 * (scale-out, or to keep CPU-heavy analysis away from the hooks).
 */
export { SANDBOX_CDS_CLIENT_ISS } from './service-sandbox.js';
export type { SandboxCredentials } from './service-sandbox.js';

export interface StartOptions {
  workerOnly?: boolean;
  /** Test seams: the measurement step, lease/lock time, store key prefix, and skipping the banner. */
  analyze?: AnalyzeStudy;
  leaseMs?: number;
  storePrefix?: string;
  quiet?: boolean;
  /** Sandbox: skip generating demo CT studies (tests bring their own). */
  skipDemoStudies?: boolean;
  /** The built SMART app to serve (default smart-app/dist; tests build their own). */
  smartAppDist?: string;
  /** Run the worker on this process's event loop instead of a supervised child (debugging; hooks then
   * wait while a study is analysed). */
  inProcessWorker?: boolean;
}

export interface RunningService {
  mode: 'sandbox' | 'production';
  url?: string;
  publicBaseUrl?: string;
  stores: ServiceStores;
  sandbox?: SandboxInfo;
  close(): Promise<void>;
}

type Mode = 'sandbox' | 'production';
type SourceFactory = { get: () => DicomSource; dicomWeb?: DicomWebSource; folder?: string };
type AppParts = Partial<ServiceAppParts> & { readiness: ReadinessCheck[]; mounts: NonNullable<ServiceAppParts['mounts']>; rootRouters: NonNullable<ServiceAppParts['rootRouters']> };
type Audit = { sink: AuditSink; service: AuditParty };

/** What the steps of startService share once the stores are up. */
interface ServiceContext {
  cfg: EnvConfig;
  options: StartOptions;
  mode: Mode;
  dataDir: string;
  stores: ServiceStores;
  closers: (() => Promise<void>)[];
  source: SourceFactory;
  listener: ListeningServer | undefined;
  publicBaseUrl: string;
  parts: AppParts;
}

/** The FHIR side, as the sandbox or the production builder leaves it. */
interface FhirSide {
  fhir: FhirClient;
  apiTokens: string[];
  sandbox?: SandboxInfo;
  sandboxKey?: CdsClientKey;
}

function sourceFactory(cfg: EnvConfig, dataDir: string, mode: Mode, retrievalGate?: RetrievalGate): SourceFactory {
  const dicomWeb = dicomWebSourceFromConfig(cfg, retrievalGate ? { retrievalGate } : {});
  if (dicomWeb) return { get: () => dicomWeb, dicomWeb };
  const folder = resolve(cfg.DICOM_FOLDER ?? (mode === 'sandbox' ? sandboxPaths(dataDir).dicom : ''));
  if (!folder) throw new VbmdError('config', 'Neither DICOMWEB_URL nor DICOM_FOLDER is set: vbmd does not know where images come from.');
  mkdirSync(folder, { recursive: true });
  // A fresh scan per job / poll round: studies are added to the folder while the service runs.
  return { get: () => new FolderDicomSource(folder), folder };
}

export async function startService(cfg: EnvConfig = config(), options: StartOptions = {}): Promise<RunningService> {
  const mode = serviceMode(cfg);
  const dataDir = resolve(cfg.VBMD_DATA_DIR);
  const stores = openServiceStores(cfg, options, dataDir);
  const closers: (() => Promise<void>)[] = [];
  const closeAll = async (): Promise<void> => {
    for (const c of closers.reverse()) {
      try {
        await c();
      } catch (e) {
        log.warn({ err: userMessage(e) }, 'error while stopping');
      }
    }
    await stores.close();
  };

  try {
    const ctx = await startSharedSteps(cfg, options, mode, dataDir, stores, closers);
    // FHIR: the EHR's server (production) or the in-process sandbox server, both written over HTTP.
    const side = mode === 'sandbox' ? await sandboxSide(ctx) : productionSide(cfg);
    const audit: Audit = { sink: auditSinkFromConfig(cfg, side.fhir), service: { name: 'vbmd', url: ctx.publicBaseUrl } };
    addReadiness(ctx, side.fhir);
    const supervised = await startPipeline(ctx, side, audit);
    if (ctx.listener) await mountHttpApp(ctx, ctx.listener, side, audit, supervised);

    const running: RunningService = {
      mode,
      ...(ctx.listener ? { url: ctx.listener.url } : {}),
      publicBaseUrl: ctx.publicBaseUrl,
      stores,
      ...(side.sandbox ? { sandbox: side.sandbox } : {}),
      close: closeAll,
    };
    if (!options.quiet) printBanner(running, cfg, options);
    return running;
  } catch (e) {
    await closeAll();
    throw e;
  }
}

function openServiceStores(cfg: EnvConfig, options: StartOptions, dataDir: string): ServiceStores {
  return openStores({
    dataDir,
    ...(cfg.REDIS_URL ? { redisUrl: cfg.REDIS_URL } : {}),
    retry: jobRetryPolicy(cfg),
    leaseMs: options.leaseMs ?? cfg.JOB_LEASE_S * 1000,
    ...(options.storePrefix ? { prefix: options.storePrefix } : {}),
    requireRedisPersistence: cfg.REDIS_REQUIRE_PERSISTENCE,
    boundedRedisWaits: options.workerOnly !== true,
  });
}

/** Stores started, the image source, and the listening socket (none with --worker-only). */
async function startSharedSteps(
  cfg: EnvConfig,
  options: StartOptions,
  mode: Mode,
  dataDir: string,
  stores: ServiceStores,
  closers: (() => Promise<void>)[],
): Promise<ServiceContext> {
  // Redis reachable and persisting before anything is taken on (stores.ts, redis-persistence.ts).
  await stores.start();
  const offStoreMetrics = registerStoreMetrics(stores);
  closers.push(async () => offStoreMetrics());
  // Retrievals are measured; the archive backfill's are capped by the limits in the shared store (src/backfill).
  const source = sourceFactory(cfg, dataDir, mode, createRetrievalGate({ settings: stores.settings, leases: stores.leases }));
  let listener: ListeningServer | undefined;
  if (!options.workerOnly) {
    listener = await listen(cfg.PORT, cfg.HOST);
    const l = listener;
    closers.push(() => l.close());
  }
  const publicBaseUrl = cfg.PUBLIC_BASE_URL ?? listener?.url ?? `http://127.0.0.1:${cfg.PORT}`;
  const parts: AppParts = { readiness: [], mounts: [], rootRouters: [] };
  return { cfg, options, mode, dataDir, stores, closers, source, listener, publicBaseUrl, parts };
}

function configApiTokens(cfg: EnvConfig): string[] {
  return (cfg.ANALYZE_API_TOKENS ?? '').split(',').map((t) => t.trim()).filter(Boolean);
}

/** Production builder: the EHR's FHIR server from config. */
function productionSide(cfg: EnvConfig): FhirSide {
  return { fhir: fhirClientFromConfig(cfg), apiTokens: configApiTokens(cfg) };
}

/** Sandbox builder (service-sandbox.ts); its API token is accepted next to the configured ones. */
async function sandboxSide(ctx: ServiceContext): Promise<FhirSide> {
  const built = await buildSandbox({
    cfg: ctx.cfg,
    dataDir: ctx.dataDir,
    stores: ctx.stores,
    publicBaseUrl: ctx.publicBaseUrl,
    demoFolder: ctx.source.folder,
    skipDemoStudies: ctx.options.skipDemoStudies,
    ehr: ctx.listener ? ctx.parts : undefined,
  });
  return { ...built, apiTokens: [...configApiTokens(ctx.cfg), built.sandbox.apiToken] };
}

function addReadiness(ctx: ServiceContext, fhir: FhirClient): void {
  const { parts, source, stores } = ctx;
  parts.readiness.push({ name: 'fhir', check: async () => void (await fhir.request('GET', 'metadata')) });
  parts.readiness.push({
    name: 'dicom',
    check: async () => {
      if (source.dicomWeb) await source.dicomWeb.findStudies({ studyInstanceUid: '1.2.3.4.5.6.7.8.9' });
      else if (source.folder && !existsSync(source.folder)) throw new VbmdError('not-found', `DICOM folder ${source.folder} does not exist.`);
    },
  });
  parts.readiness.push({ name: 'queue', check: () => stores.check() });
}

/** The pipeline: worker + study poller, in a supervised child process or (worker-only, tests) in this one. */
async function startPipeline(ctx: ServiceContext, side: FhirSide, audit: Audit): Promise<SupervisedWorker | undefined> {
  const { cfg, options, closers } = ctx;
  let supervised: SupervisedWorker | undefined;
  const inProcess = options.workerOnly || (cfg.RUN_WORKER && (options.inProcessWorker || options.analyze !== undefined));
  if (!inProcess && cfg.RUN_WORKER) {
    // The engine's seconds of CPU per study must not stall the hooks: the worker and poller run in a
    // supervised child process with the same settings.
    const child = superviseWorkerProcess(cfg, { PUBLIC_BASE_URL: ctx.publicBaseUrl });
    supervised = child;
    closers.push(() => child.stop());
  }
  if (inProcess) await startInProcessPipeline(ctx, side, audit);
  return supervised;
}

async function startInProcessPipeline(ctx: ServiceContext, side: FhirSide, audit: Audit): Promise<void> {
  const { cfg, options, mode, stores, source, closers } = ctx;
  // Load and verify the model (src/model/model-file.ts) before taking jobs: a missing or corrupt model file stops
  // the start with its one-sentence VbmdError instead of failing every job later.
  if (!options.analyze) await sharedModelRunner(cfg);
  // DICOM results go to STOW_URL (default DICOMWEB_URL); none in the sandbox's folder mode.
  const stow = stowClientFromConfig(cfg);
  if (stow) closers.push(async () => stow.close());
  const worker: JobWorker = stores.queue.process(
    createAnalysisHandler({
      source: source.get,
      analyze: options.analyze ?? engineAnalyzeStudy(cfg.VBMD_CALIBRATION_FILE ? { calibrationFile: cfg.VBMD_CALIBRATION_FILE } : {}),
      fhir: side.fhir,
      watches: stores.watches,
      patientMatch: {
        ...(cfg.PATIENT_MRN_SYSTEM ? { mrnSystem: cfg.PATIENT_MRN_SYSTEM } : {}),
        ...(cfg.DICOM_ISSUER_SYSTEMS ? { issuerSystems: cfg.DICOM_ISSUER_SYSTEMS } : {}),
      },
      ...(mode === 'sandbox' ? { tags: [{ ...DEMO_DATA_TAG }] } : {}),
      ...(stow ? { pacs: createPacsStep(stow) } : {}),
      audit: { ...audit, pacs: { name: 'PACS', url: cfg.DICOMWEB_URL ?? `file://${source.folder ?? ''}` } },
    }),
    { concurrency: cfg.WORKER_CONCURRENCY, drainTimeoutMs: 60_000 },
  );
  closers.push(() => worker.close());
  const poller: StudyPoller = startStudyPoller({
    watches: stores.watches,
    source: source.get,
    queue: stores.queue,
    // The sandbox demo should not make people wait a minute.
    intervalMs: (mode === 'sandbox' ? Math.min(cfg.QIDO_POLL_INTERVAL_S, 5) : cfg.QIDO_POLL_INTERVAL_S) * 1000,
    ...(cfg.QIDO_SETTLE_S ? { settleMs: cfg.QIDO_SETTLE_S * 1000 } : {}),
  });
  closers.push(() => poller.stop());
  if (options.workerOnly && cfg.METRICS_PORT) {
    const m = await startWorkerMetricsServer(cfg.METRICS_PORT, cfg.HOST, staticTokenAuthorizer(side.apiTokens));
    closers.push(() => m.close());
  }
}

/** The CDS Hooks dependencies: trusted clients (and the sandbox EHR's key), replay cache, feedback store. */
async function cdsDeps(ctx: ServiceContext, side: FhirSide, therapyMatcher: TherapyMatcher | undefined): Promise<{ cds: CdsHooksDeps; verifier: ClientJwtVerifier }> {
  const { cfg, stores, publicBaseUrl } = ctx;
  const clients: CdsClientConfig[] = [...(cfg.CDS_CLIENTS ?? [])];
  // The sandbox EHR may name the in-process FHIR server (a loopback address) as its fhirServer.
  if (side.sandboxKey) clients.push({ iss: side.sandboxKey.iss, jwks: { keys: [side.sandboxKey.publicJwk as Record<string, unknown>] }, fhir_servers: [side.sandbox!.fhirBaseUrl] });
  const replayCache = stores.redis ? new RedisReplayCache(stores.redis) : new MemoryReplayCache();
  const feedback: FeedbackStore = stores.redis ? new RedisFeedbackStore(stores.redis) : new SqliteFeedbackStore(stores.sqlite!);
  const verifier = createClientJwtVerifier({ clients, replayCache, maxLifetimeS: cfg.CDS_JWT_MAX_LIFETIME_S });
  const cds: CdsHooksDeps = {
    // Rejections counted by reason on /metrics (the verdict is the verifier's).
    verifier: countingVerifier(verifier),
    publicBaseUrl,
    valueSet: loadCtValueSet(cfg.CDS_CT_VALUE_SET_FILE),
    declinePctPerYear: cfg.CDS_DECLINE_PCT_PER_YEAR,
    smartLaunchUrl: cfg.SMART_LAUNCH_URL ?? `${publicBaseUrl}/smart/launch.html`,
    watches: stores.watches,
    watchTtlMs: cfg.WATCH_TTL_HOURS * 3600_000,
    feedback,
    opsAuthorize: (req) => staticTokenAuthorizer(side.apiTokens)(req),
    allowInsecureHttp: cfg.ALLOW_INSECURE_HTTP,
    clientFhirServers: new Map(clients.flatMap((c) => (c.fhir_servers ? [[c.iss, c.fhir_servers] as const] : []))),
    overrideQuietMs: cfg.CDS_OVERRIDE_QUIET_DAYS * 86_400_000,
    // The card checks therapy against the value set the cohort uses.
    ...(therapyMatcher ? { therapyMatcher } : {}),
  };
  return { cds, verifier };
}

/** The HTTP app: CDS Hooks, the SMART app, the cohort and ops APIs, and the sandbox EHR's parts. */
async function mountHttpApp(ctx: ServiceContext, listener: ListeningServer, side: FhirSide, audit: Audit, supervised: SupervisedWorker | undefined): Promise<void> {
  const { cfg, options, mode, stores, parts, publicBaseUrl } = ctx;
  const { fhir, apiTokens, sandbox } = side;
  const therapyMatcher = cfg.COHORT_THERAPY_VALUE_SET_FILE ? compileTherapyValueSet(await loadTherapyValueSet(cfg.COHORT_THERAPY_VALUE_SET_FILE)) : undefined;
  const { cds, verifier } = await cdsDeps(ctx, side, therapyMatcher);
  const clientJwt = async (req: Request): Promise<boolean> => {
    const url = `${(cfg.PUBLIC_BASE_URL ?? publicBaseUrl).replace(/\/+$/, '')}${req.originalUrl.split('?')[0]}`;
    return (await verifier.verify(req.get('authorization'), url)).ok;
  };
  const apiAuthorize: ApiAuthorizer = anyAuthorizer(staticTokenAuthorizer(apiTokens), clientJwt);
  try {
    parts.mounts.push({
      path: '/smart',
      // The EHR's web origin must be allowed to frame the app and its FHIR and authorization servers to be
      // called from it, in every mode (a sandbox service is launched by other EHRs and launchers too).
      handler: createSmartAppRouter({
        fhirOrigins: connectOriginsFromConfig(cfg.FHIR_BASE_URL, cfg.SMART_CONNECT_ORIGINS),
        ...(cfg.SMART_FRAME_ANCESTORS ? { frameAncestors: frameAncestorsFromConfig(cfg.SMART_FRAME_ANCESTORS) } : {}),
        launch: { clientId: cfg.SMART_CLIENT_ID, sandbox: mode === 'sandbox' },
        ...(options.smartAppDist ? { distDir: options.smartAppDist } : {}),
      }),
    });
  } catch (e) {
    log.warn({ err: userMessage(e) }, 'SMART app not served');
  }
  parts.mounts.push({
    path: '/api/cohort',
    handler: createCohortRouter({
      source: () => new FhirSearchSource(fhir.baseUrl, { auth: { token: () => fhirToken(cfg, mode, sandbox), invalidate: () => undefined } }),
      authorize: (req) => staticTokenAuthorizer(apiTokens)(req),
      ...(therapyMatcher ? { matcher: therapyMatcher } : {}),
    }),
  });
  parts.rootRouters.push(
    createOpsRouter({ authorize: staticTokenAuthorizer(apiTokens), stores, audit, ...(supervised ? { workerMetrics: supervised.metrics } : {}) }),
  );
  const app = createServiceApp({
    ...parts,
    cds,
    queue: stores.queue,
    apiAuthorize,
    publicBaseUrl,
  });
  listener.use(app);
}

async function fhirToken(cfg: EnvConfig, mode: 'sandbox' | 'production', sandbox: RunningService['sandbox']): Promise<string> {
  if (mode === 'sandbox') return sandbox!.serviceToken;
  if (cfg.FHIR_BEARER_TOKEN) return cfg.FHIR_BEARER_TOKEN;
  throw new VbmdError('config', 'The cohort API needs FHIR_BEARER_TOKEN (or COHORT_BEARER_TOKEN) in production.');
}

function printBanner(s: RunningService, cfg: EnvConfig, options: StartOptions): void {
  const lines: string[] = [];
  if (options.workerOnly) {
    lines.push(`vbmd worker running (${s.stores.kind} queue, concurrency ${cfg.WORKER_CONCURRENCY}). Ctrl-C stops it gracefully.`);
  } else if (s.mode === 'sandbox' && s.sandbox) {
    const base = s.publicBaseUrl!;
    const demo = s.sandbox.demoStudies[0];
    lines.push(
      `vbmd sandbox on ${base}  (in-process FHIR, demo patients, ${s.stores.kind} queue; data in ${resolve(cfg.VBMD_DATA_DIR)})`,
      '',
      'Try:',
      `  curl ${base}/healthz ; curl ${base}/readyz`,
      `  npx tsx src/cli.ts hook patient-view --patient ${DEMO_PATIENT_IDS.declining}      # warning card: osteoporosis range, falling`,
      `  npx tsx src/cli.ts hook patient-view --patient ${DEMO_PATIENT_IDS.stableNormal}   # no card (normal, stable)`,
      ...(demo
        ? [
            `  npx tsx src/cli.ts hook order-sign --patient ${DEMO_PATIENT_IDS.stableNormal} --code 71250 --accession ${demo.accessionNumber}`,
            `      # info card; the demo CT with that accession is found in ${s.sandbox.demoStudies.length ? 'the demo folder' : ''} and analysed (vBMD ~${demo.expectedVbmdMgCm3} mg/cm3)`,
            `  npx tsx src/cli.ts hook patient-view --patient ${DEMO_PATIENT_IDS.stableNormal}   # then: warning card from the new result`,
          ]
        : []),
      `  SMART app, EHR launch: ${base}/sandbox/launch?patient=${DEMO_PATIENT_IDS.declining}`,
      `  curl -H "authorization: Bearer $(node -p 'require(\"${sandboxPaths(resolve(cfg.VBMD_DATA_DIR)).tokens}\").apiToken')" '${base}/api/cohort?category=osteoporosis'`,
      `  CDS discovery needs a client JWT: the sandbox EHR key is ${s.sandbox.cdsClientKeyFile} (iss ${SANDBOX_CDS_CLIENT_ISS})` +
        (cfg.CDS_CLIENTS?.length ? `; also trusted (CDS_CLIENTS): ${cfg.CDS_CLIENTS.map((c) => c.iss).join(', ')}.` : '.'),
      ...(cfg.SANDBOX_ANONYMOUS_READ ? [`  SANDBOX_ANONYMOUS_READ: anyone may read ${s.sandbox.fhirBaseUrl} without a token (synthetic data; writes still need one).`] : []),
    );
  } else {
    lines.push(`vbmd service on ${s.url} (public ${s.publicBaseUrl}), ${s.stores.kind} queue. GET /readyz checks FHIR, DICOM and the queue.`);
  }
  process.stderr.write(`${lines.join('\n')}\n`);
}
