import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Request } from 'express';
import { createClientJwtVerifier } from '../../cds-hooks/client-auth.js';
import { loadOrCreateClientKeyFile } from '../../cds-hooks/client-jwt.js';
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
import { StaticTokenProvider } from '../net/token-provider.js';
import { FhirClient } from '../fhir/client.js';
import { fhirClientFromConfig } from '../fhir/client-config.js';
import { DEMO_DATA_TAG } from '../fhir/codes.js';
import { createFhirApp, TransactionalMemoryRepository } from '../fhir/server/index.js';
import { DEMO_PATIENT_IDS, seedDemoData } from '../fhir/sandbox/demo-data.js';
import { createAnalysisHandler } from '../jobs/analysis-worker.js';
import type { AnalyzeStudy } from '../jobs/analysis-worker.js';
import { engineAnalyzeStudy } from '../jobs/engine.js';
import { anyAuthorizer, staticTokenAuthorizer } from '../jobs/http-api.js';
import type { ApiAuthorizer } from '../jobs/http-api.js';
import type { JobWorker } from '../jobs/queue.js';
import { openStores } from '../jobs/stores.js';
import type { ServiceStores } from '../jobs/stores.js';
import { startStudyPoller } from '../jobs/study-poller.js';
import { superviseWorkerProcess } from '../jobs/worker-process.js';
import type { SupervisedWorker } from '../jobs/worker-process.js';
import type { StudyPoller } from '../jobs/study-poller.js';
import { createCohortRouter } from '../population/http.js';
import { compileTherapyValueSet, loadTherapyValueSet } from '../population/therapy-value-set.js';
import { FhirSearchSource } from '../population/sources/fhir-search.js';
import { createServiceApp, listen } from '../server.js';
import type { ListeningServer, ReadinessCheck, ServiceAppParts } from '../server.js';
import { VbmdError, userMessage } from '../util/errors.js';
import { log } from '../util/log.js';
import { ensureDemoStudies } from './demo-studies.js';
import { loadOrCreateSandboxTokens, sandboxPaths } from './sandbox-files.js';
import { sharedModelRunner } from '../model/shared-runner.js';
import { createPacsStep, stowClientFromConfig } from '../dicom-output/pacs-step.js';
import type { DemoStudy } from './demo-studies.js';
import { auditSinkFromConfig, countingVerifier, createOpsRouter, registerStoreMetrics, startWorkerMetricsServer } from './service-ops.js';
import { createRetrievalGate } from '../backfill/retrieval-gate.js';
import type { RetrievalGate } from '../dicom/dicomweb/http.js';

/**
 * The whole service, as `vbmd start` runs it. Nothing configured = the sandbox (in-process FHIR server with demo
 * patients at /fhir behind the sandbox SMART authorization server, a folder of generated demo CT studies,
 * the embedded queue, a sandbox CDS client key pair); FHIR_BASE_URL + DICOMWEB_URL + CDS_CLIENTS (+ REDIS_URL)
 * = production. `--worker-only` runs the analysis worker and study poller without HTTP (scale-out, or to
 * keep CPU-heavy analysis away from the hooks).
 */
export const SANDBOX_CDS_CLIENT_ISS = 'urn:vbmd:sandbox-ehr';

export interface SandboxCredentials {
  /** Full access to the sandbox FHIR server (the "EHR" role): the worker's writes, `vbmd hook` prefetch. */
  serviceToken: string;
  /** For POST /api/studies/{uid}/analyze, /api/jobs, /api/cohort. */
  apiToken: string;
  cdsClientKeyFile: string;
}

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
  sandbox?: SandboxCredentials & { fhirBaseUrl: string; demoStudies: DemoStudy[] };
  close(): Promise<void>;
}

function sourceFactory(cfg: EnvConfig, dataDir: string, mode: 'sandbox' | 'production', retrievalGate?: RetrievalGate): { get: () => DicomSource; dicomWeb?: DicomWebSource; folder?: string } {
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
  const stores = openStores({
    dataDir,
    ...(cfg.REDIS_URL ? { redisUrl: cfg.REDIS_URL } : {}),
    retry: { attempts: cfg.JOB_ATTEMPTS, backoffMs: cfg.JOB_BACKOFF_MS },
    leaseMs: options.leaseMs ?? cfg.JOB_LEASE_S * 1000,
    ...(options.storePrefix ? { prefix: options.storePrefix } : {}),
    requireRedisPersistence: cfg.REDIS_REQUIRE_PERSISTENCE,
    boundedRedisWaits: options.workerOnly !== true,
  });
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

    // FHIR: the EHR's server (production) or the in-process sandbox server, both written over HTTP.
    let fhir: FhirClient;
    let sandbox: RunningService['sandbox'];
    let sandboxKey: CdsClientKey | undefined;
    const parts: Partial<ServiceAppParts> & { readiness: ReadinessCheck[]; mounts: NonNullable<ServiceAppParts['mounts']>; rootRouters: NonNullable<ServiceAppParts['rootRouters']> } = {
      readiness: [],
      mounts: [],
      rootRouters: [],
    };
    let apiTokens = (cfg.ANALYZE_API_TOKENS ?? '').split(',').map((t) => t.trim()).filter(Boolean);

    if (mode === 'sandbox') {
      if (stores.sqlite) {
        // The sandbox FHIR store lives in memory and starts empty; finished jobs would otherwise stop a demo
        // study from being analysed (and written) again after a restart.
        stores.sqlite.prepare(`DELETE FROM jobs WHERE state = 'completed'`).run();
      }
      const tokens = loadOrCreateSandboxTokens(dataDir);
      apiTokens = [...apiTokens, tokens.apiToken];
      const paths = sandboxPaths(dataDir);
      sandboxKey = await loadOrCreateClientKeyFile(paths.cdsClientKey, SANDBOX_CDS_CLIENT_ISS);
      const fhirBaseUrl = `${publicBaseUrl}/fhir`;
      fhir = new FhirClient({ baseUrl: fhirBaseUrl, auth: new StaticTokenProvider(tokens.serviceToken) });
      const demoStudies = options.skipDemoStudies || !source.folder ? [] : await ensureDemoStudies(source.folder);
      sandbox = { ...tokens, cdsClientKeyFile: paths.cdsClientKey, fhirBaseUrl, demoStudies };
      if (listener) {
        const repository = new TransactionalMemoryRepository();
        await seedDemoData(repository);
        // Loaded only here: production never starts the sandbox authorization server.
        const { createSandboxSmart } = await import('../sandbox/index.js');
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
        const serviceAuth = staticTokenAuthorizer([tokens.serviceToken]);
        parts.rootRouters.push(smart.router);
        parts.mounts.push({
          path: '/fhir',
          handler: createFhirApp({
            repository,
            baseUrl: fhirBaseUrl,
            verifyAccess: async (req: Request) => ((await serviceAuth(req)) ? { ok: true } : smart.verifyAccess(req)),
          }),
        });
      }
    } else {
      fhir = fhirClientFromConfig(cfg);
    }
    const audit = { sink: auditSinkFromConfig(cfg, fhir), service: { name: 'vbmd', url: publicBaseUrl } };
    parts.readiness.push({ name: 'fhir', check: async () => void (await fhir.request('GET', 'metadata')) });
    parts.readiness.push({
      name: 'dicom',
      check: async () => {
        if (source.dicomWeb) await source.dicomWeb.findStudies({ studyInstanceUid: '1.2.3.4.5.6.7.8.9' });
        else if (source.folder && !existsSync(source.folder)) throw new VbmdError('not-found', `DICOM folder ${source.folder} does not exist.`);
      },
    });
    parts.readiness.push({ name: 'queue', check: () => stores.check() });

    // The pipeline: worker + study poller.
    let worker: JobWorker | undefined;
    let poller: StudyPoller | undefined;
    let supervised: SupervisedWorker | undefined;
    const inProcess = options.workerOnly || (cfg.RUN_WORKER && (options.inProcessWorker || options.analyze !== undefined));
    if (!inProcess && cfg.RUN_WORKER) {
      // The engine's seconds of CPU per study must not stall the hooks: the worker and poller run in a
      // supervised child process with the same settings.
      const child = superviseWorkerProcess(cfg, { PUBLIC_BASE_URL: publicBaseUrl });
      supervised = child;
      closers.push(() => child.stop());
    }
    if (inProcess) {
      // Load and verify the model (src/model/model-file.ts) before taking jobs: a missing or corrupt model file stops
      // the start with its one-sentence VbmdError instead of failing every job later.
      if (!options.analyze) await sharedModelRunner(cfg);
      // DICOM results go to STOW_URL (default DICOMWEB_URL); none in the sandbox's folder mode.
      const stow = stowClientFromConfig(cfg);
      if (stow) closers.push(async () => stow.close());
      worker = stores.queue.process(
        createAnalysisHandler({
          source: source.get,
          analyze: options.analyze ?? engineAnalyzeStudy(cfg.VBMD_CALIBRATION_FILE ? { calibrationFile: cfg.VBMD_CALIBRATION_FILE } : {}),
          fhir,
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
      const w = worker;
      closers.push(() => w.close());
      poller = startStudyPoller({
        watches: stores.watches,
        source: source.get,
        queue: stores.queue,
        // The sandbox demo should not make people wait a minute.
        intervalMs: (mode === 'sandbox' ? Math.min(cfg.QIDO_POLL_INTERVAL_S, 5) : cfg.QIDO_POLL_INTERVAL_S) * 1000,
        ...(cfg.QIDO_SETTLE_S ? { settleMs: cfg.QIDO_SETTLE_S * 1000 } : {}),
      });
      const p = poller;
      closers.push(() => p.stop());
      if (options.workerOnly && cfg.METRICS_PORT) {
        const m = await startWorkerMetricsServer(cfg.METRICS_PORT, cfg.HOST, staticTokenAuthorizer(apiTokens));
        closers.push(() => m.close());
      }
    }

    if (listener) {
      const clients: CdsClientConfig[] = [...(cfg.CDS_CLIENTS ?? [])];
      // The sandbox EHR may name the in-process FHIR server (a loopback address) as its fhirServer.
      if (sandboxKey) clients.push({ iss: sandboxKey.iss, jwks: { keys: [sandboxKey.publicJwk as Record<string, unknown>] }, fhir_servers: [sandbox!.fhirBaseUrl] });
      const replayCache = stores.redis ? new RedisReplayCache(stores.redis) : new MemoryReplayCache();
      const feedback: FeedbackStore = stores.redis ? new RedisFeedbackStore(stores.redis) : new SqliteFeedbackStore(stores.sqlite!);
      const therapyMatcher = cfg.COHORT_THERAPY_VALUE_SET_FILE ? compileTherapyValueSet(await loadTherapyValueSet(cfg.COHORT_THERAPY_VALUE_SET_FILE)) : undefined;
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
        opsAuthorize: (req) => staticTokenAuthorizer(apiTokens)(req),
        allowInsecureHttp: cfg.ALLOW_INSECURE_HTTP,
        clientFhirServers: new Map(clients.flatMap((c) => (c.fhir_servers ? [[c.iss, c.fhir_servers] as const] : []))),
        overrideQuietMs: cfg.CDS_OVERRIDE_QUIET_DAYS * 86_400_000,
        // The card checks therapy against the value set the cohort uses.
        ...(therapyMatcher ? { therapyMatcher } : {}),
      };
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

    const running: RunningService = {
      mode,
      ...(listener ? { url: listener.url } : {}),
      publicBaseUrl,
      stores,
      ...(sandbox ? { sandbox } : {}),
      close: closeAll,
    };
    if (!options.quiet) printBanner(running, cfg, options);
    return running;
  } catch (e) {
    await closeAll();
    throw e;
  }
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
