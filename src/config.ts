import { z } from 'zod';
import { isLoopbackUrl } from './net/address-policy.js';
import { VbmdError } from './util/errors.js';

/**
 * The one reader of environment variables. Every setting is validated here at start, with a message that
 * names the variable; the rest of the code receives typed values. Sections are grouped by the part of the
 * system that uses them; add new settings here, never `process.env` elsewhere.
 */
function httpUrl(name: string) {
  return z
    .string()
    .refine((v) => /^https?:\/\/[^\s/]+/.test(v) && URL.canParse(v), `${name} must be an http(s) URL`)
    .transform((v) => v.replace(/\/+$/, ''));
}

const boolFlag = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

/** FHIR base URLs a CDS client may name as fhirServer; only these may be private or loopback addresses. */
const fhirServers = z.array(httpUrl('fhir_servers[]')).min(1).optional();
const cdsClient = z.union([
  z.object({ iss: z.string().min(1), jwks_url: z.string().url(), fhir_servers: fhirServers }).strict(),
  z.object({ iss: z.string().min(1), jwks: z.object({ keys: z.array(z.record(z.string(), z.unknown())).min(1) }), fhir_servers: fhirServers }).strict(),
]);
export type CdsClientConfig = z.infer<typeof cdsClient>;

const cdsClientsJson = z.string().transform((text, ctx): CdsClientConfig[] => {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    ctx.addIssue({ code: 'custom', message: 'is not valid JSON (expected an array of {"iss","jwks_url"} or {"iss","jwks"})' });
    return z.NEVER;
  }
  const parsed = z.array(cdsClient).safeParse(value);
  if (!parsed.success) {
    ctx.addIssue({
      code: 'custom',
      message: `must be a JSON array of {"iss": ..., "jwks_url": ...} or {"iss": ..., "jwks": {"keys": [...]}} (${parsed.error.issues
        .map((i) => `${i.path.join('.') || 'value'}: ${i.message}`)
        .join('; ')})`,
    });
    return z.NEVER;
  }
  return parsed.data;
});

const logLevel = z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info');

const envSchema = z.object({
  LOG_LEVEL: logLevel,
  PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  HOST: z.string().default('127.0.0.1'),
  /** Where durable local state lives (embedded queue, watches). */
  VBMD_DATA_DIR: z.string().default('.vbmd-data'),
  /** JSON calibration file (site phantom / asynchronous calibration), see src/bmd/calibration. */
  VBMD_CALIBRATION_FILE: z.string().optional(),
  /** The vBMD network (models/MODEL_CARD.md): on by default with the committed model (src/model/model-file.ts
   * DEFAULT_MODEL_FILE); false = geometric ROI only, and reports carry no model. */
  VBMD_MODEL: boolFlag.default(true),
  /** Another model file `<name>-<version>.onnx` with its `.sha256` beside it (a site's retrained model). */
  VBMD_MODEL_FILE: z.string().min(1).optional(),
  /** onnxruntime intra-op threads for the model worker (default: cores - 1, 1 to 4; src/model/model-runner.ts). */
  VBMD_MODEL_THREADS: z.coerce.number().int().min(1).max(64).optional(),

  // --- Service (CDS Hooks, pipeline, `vbmd start`: cds-hooks/README.md). Nothing set = sandbox; see serviceMode(). ---
  /** Public URL of this service as clients call it (behind a proxy); CDS JWT `aud` is checked against it. */
  PUBLIC_BASE_URL: httpUrl('PUBLIC_BASE_URL').optional(),
  /** The EHR's FHIR R4 base; unset = the in-process sandbox FHIR server at /fhir. */
  FHIR_BASE_URL: httpUrl('FHIR_BASE_URL').optional(),
  /** Static bearer token for FHIR writes (simplest deployment). */
  FHIR_BEARER_TOKEN: z.string().min(1).optional(),
  /** SMART Backend Services (client_credentials + private_key_jwt): client id, key file (JWK or PKCS#8 PEM). */
  FHIR_CLIENT_ID: z.string().min(1).optional(),
  FHIR_PRIVATE_KEY_FILE: z.string().min(1).optional(),
  FHIR_KEY_ALG: z.enum(['RS384', 'ES384']).default('ES384'),
  FHIR_KEY_ID: z.string().min(1).optional(),
  /** Token endpoint; by default read from `${FHIR_BASE_URL}/.well-known/smart-configuration`. */
  FHIR_TOKEN_URL: httpUrl('FHIR_TOKEN_URL').optional(),
  FHIR_SCOPES: z
    .string()
    .default('system/Observation.cru system/RiskAssessment.cru system/Device.cru system/Provenance.c system/Patient.rs system/ServiceRequest.rs'),
  /** `transaction` (atomic, default) or `sequential` conditional creates for FHIR servers without transactions. */
  FHIR_WRITE_MODE: z.enum(['transaction', 'sequential']).default('transaction'),
  /** The PACS's DICOMweb base (QIDO/WADO-RS); unset = the sandbox folder of generated demo studies. */
  DICOMWEB_URL: httpUrl('DICOMWEB_URL').optional(),
  DICOMWEB_BEARER_TOKEN: z.string().min(1).optional(),
  DICOMWEB_USERNAME: z.string().min(1).optional(),
  DICOMWEB_PASSWORD: z.string().min(1).optional(),
  /** STOW-RS base for the DICOM results (SR, SEG, key image; src/dicom-output); default DICOMWEB_URL, "none" = not sent. */
  STOW_URL: z.union([z.literal('none'), httpUrl('STOW_URL')]).optional(),
  /** Folder of DICOM studies for the folder-backed source (sandbox default: `${VBMD_DATA_DIR}/dicom`). */
  DICOM_FOLDER: z.string().optional(),
  /** Plain http to non-loopback hosts is refused unless this is true (TLS is required by CDS Hooks 2.0). */
  ALLOW_INSECURE_HTTP: boolFlag.default(false),
  /** BullMQ on this Redis when set; the embedded SQLite queue otherwise. */
  REDIS_URL: z
    .string()
    .regex(/^rediss?:\/\//, 'must start with redis:// or rediss://')
    .optional(),
  /** With REDIS_URL: refuse to start (and fail readiness) when Redis neither appends (AOF) nor snapshots (RDB),
   * since a restart would then lose queued jobs and order watches; false = run anyway with an error-level warning. */
  REDIS_REQUIRE_PERSISTENCE: boolFlag.default(true),
  /** Trusted CDS clients: JSON array of {"iss": ..., "jwks_url": ...} or {"iss": ..., "jwks": {"keys": [...]}}, each
   * with optional "fhir_servers": the FHIR base URLs it may send as fhirServer (see cds-hooks/README.md). */
  CDS_CLIENTS: cdsClientsJson.optional(),
  /** Patient-view warning when vBMD falls faster than this, percent per year. */
  CDS_DECLINE_PCT_PER_YEAR: z.coerce.number().positive().max(100).default(5),
  /** An override of the patient-view card with a reason (CDS feedback) quiets that patient's card this long,
   * days, or until a newer result arrives. */
  CDS_OVERRIDE_QUIET_DAYS: z.coerce.number().positive().max(3650).default(90),
  /** JSON file of the CT procedure codes that trigger measurement (default: cds-hooks/ct-value-set.json). */
  CDS_CT_VALUE_SET_FILE: z.string().optional(),
  /** Longest client JWT lifetime accepted (exp - iat) and how long jti values are remembered, seconds. */
  CDS_JWT_MAX_LIFETIME_S: z.coerce.number().int().positive().max(3600).default(3600),
  /** Where cards link: the SMART app launch page; default `${PUBLIC_BASE_URL}/smart/launch.html`. */
  SMART_LAUNCH_URL: httpUrl('SMART_LAUNCH_URL').optional(),
  /** Origins allowed to frame the SMART app (the EHR's web origin), comma- or space-separated; default: the
   * service's own origin and the FHIR server's (CSP frame-ancestors). */
  SMART_FRAME_ANCESTORS: z
    .string()
    .regex(/^(https?:\/\/[^\s,/]+)([\s,]+https?:\/\/[^\s,/]+)*$/, 'must be origins like https://ehr.example.org, comma-separated')
    .optional(),
  /** Origins the SMART app may call besides FHIR_BASE_URL's (the EHR's authorization server when its token
   * endpoint is on another host), comma- or space-separated (CSP connect-src). */
  SMART_CONNECT_ORIGINS: z
    .string()
    .regex(/^(https?:\/\/[^\s,/]+)([\s,]+https?:\/\/[^\s,/]+)*$/, 'must be origins like https://auth.ehr.example.org, comma-separated')
    .optional(),
  /** The SMART app's client id as registered at the EHR (public client; the sandbox registers the same). */
  SMART_CLIENT_ID: z
    .string()
    .regex(/^[A-Za-z0-9\-._~:]{1,128}$/, 'must be 1-128 characters of letters, digits and -._~:')
    .default('vbmd-smart-app'),
  /** Sandbox only: let anyone read (GET) the sandbox FHIR server's synthetic data without a token, as the
   * reference SMART launcher and CDS Hooks sandbox expect of the open server they proxy. Writes still need a token. */
  SANDBOX_ANONYMOUS_READ: boolFlag.default(false),
  /** Sandbox authorization server: access-token lifetime, and how long an `online_access` refresh token
   * keeps a session going (seconds). */
  SANDBOX_ACCESS_TOKEN_TTL_S: z.coerce.number().int().min(5).max(86_400).default(300),
  SANDBOX_SESSION_TTL_S: z.coerce.number().int().min(10).max(7 * 86_400).default(8 * 3600),
  /** Comma-separated bearer tokens allowed to call POST /api/studies/{uid}/analyze (besides CDS client JWTs). */
  ANALYZE_API_TOKENS: z.string().optional(),
  /** FHIR identifier system of the MRN the PACS stores as DICOM PatientID; unset = a PatientID is looked for
   * among the Patient's identifiers of any system (the chart cross-check, src/jobs/patient-match.ts). */
  PATIENT_MRN_SYSTEM: z.string().min(1).max(1024).optional(),
  /** DICOM issuers (IssuerOfPatientID, accession issuer) -> FHIR identifier systems, JSON object. */
  DICOM_ISSUER_SYSTEMS: z
    .string()
    .transform((text, ctx): Record<string, string> => {
      try {
        const parsed = z.record(z.string().min(1), z.string().min(1)).safeParse(JSON.parse(text));
        if (parsed.success) return parsed.data;
      } catch {
        /* reported below */
      }
      ctx.addIssue({ code: 'custom', message: 'must be a JSON object of DICOM issuer -> FHIR identifier system, e.g. {"HOSP-A":"urn:oid:1.2.3"}' });
      return z.NEVER;
    })
    .optional(),
  /** How long an order's watch waits for its study, hours; QIDO poll interval, seconds. */
  WATCH_TTL_HOURS: z.coerce.number().positive().default(24 * 14),
  QIDO_POLL_INTERVAL_S: z.coerce.number().positive().default(60),
  /** Seconds a polled study's instance count must stay the same before it is analysed (default: one poll
   * interval); a PACS that pushes complete studies (Orthanc's StableAge) needs no polling at all. */
  QIDO_SETTLE_S: z.coerce.number().positive().optional(),
  WORKER_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(1),
  JOB_ATTEMPTS: z.coerce.number().int().min(1).max(100).default(5),
  JOB_BACKOFF_MS: z.coerce.number().int().min(0).default(15_000),
  /** A running job's lease (embedded) / lock (BullMQ): a dead worker's job is taken again after about this. */
  JOB_LEASE_S: z.coerce.number().positive().max(3600).default(30),
  /** Run the analysis worker in this process (`vbmd start`); false for a web-only node. */
  RUN_WORKER: boolFlag.default(true),

  // --- Operations: metrics, audit trail (README.md "Operations"). ---
  /** A `--worker-only` process serves its own /metrics on this port (loopback HOST unless set); unset = none.
   * A web process serves /metrics on PORT, its supervised worker's included. */
  METRICS_PORT: z.coerce.number().int().min(1).max(65535).optional(),
  /** AuditEvents go to the FHIR server (needs the AuditEvent.c scope) unless false; refused ones, and all when
   * false, go to this append-only file (default `${VBMD_DATA_DIR}/audit/audit-events.ndjson`). */
  AUDIT_TO_FHIR: boolFlag.default(true),
  AUDIT_LOG_FILE: z.string().min(1).optional(),

  // --- Population queries (`vbmd cohort`, GET /api/cohort; src/population/README.md). ---
  /** Bearer token for the cohort's FHIR search / Bulk Data source. FHIR_BEARER_TOKEN or Backend Services are
   * used instead only when the source is on the FHIR_BASE_URL server (a token never goes to another host). */
  COHORT_BEARER_TOKEN: z.string().min(1).optional(),
  /** JSON value set of bone-targeted therapy for --untreated (default: src/population/bone-therapy-value-set.json). */
  COHORT_THERAPY_VALUE_SET_FILE: z.string().optional(),
});

export type EnvConfig = z.infer<typeof envSchema>;

let cached: EnvConfig | undefined;

export function loadEnvConfig(env: NodeJS.ProcessEnv = process.env): EnvConfig {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    throw new VbmdError('config', `Invalid configuration: ${lines.join('; ')}.`);
  }
  return parsed.data;
}

/**
 * LOG_LEVEL alone, for the logger that every module imports: reading the whole configuration there would stop
 * any import on an unrelated bad setting, before the start could report it. A bad LOG_LEVEL gives 'info'
 * here; config() still refuses it at start with the variable named.
 */
export function logLevelSetting(env: NodeJS.ProcessEnv = process.env): z.infer<typeof logLevel> {
  const parsed = logLevel.safeParse(env.LOG_LEVEL);
  return parsed.success ? parsed.data : 'info';
}

/** Process-wide configuration, read once. */
export function config(): EnvConfig {
  cached ??= loadEnvConfig();
  return cached;
}

/**
 * Sandbox (neither FHIR_BASE_URL nor DICOMWEB_URL: in-process FHIR, demo DICOM folder, embedded queue, the
 * sandbox CDS client plus any CDS_CLIENTS) or production (the EHR's FHIR server, the PACS, trusted CDS
 * clients). A half-configured production service is refused at start with every missing setting named, so it
 * never runs against the wrong FHIR server.
 */
export function serviceMode(cfg: EnvConfig): 'sandbox' | 'production' {
  // The settings that point at real systems choose production; CDS_CLIENTS only adds trusted clients (a
  // sandbox may trust an outside CDS client: the reference CDS Hooks sandbox, an EHR's test system).
  const production = cfg.FHIR_BASE_URL !== undefined || cfg.DICOMWEB_URL !== undefined;
  if (!production) return 'sandbox';
  const problems: string[] = [];
  if (cfg.SANDBOX_ANONYMOUS_READ) problems.push('SANDBOX_ANONYMOUS_READ is for the sandbox only (it opens the sandbox FHIR server to anonymous reads): unset it');
  if (!cfg.FHIR_BASE_URL) problems.push('FHIR_BASE_URL is not set (the EHR FHIR R4 base URL)');
  if (!cfg.DICOMWEB_URL && !cfg.DICOM_FOLDER) problems.push('DICOMWEB_URL is not set (the PACS DICOMweb base URL)');
  if (!cfg.CDS_CLIENTS || cfg.CDS_CLIENTS.length === 0) problems.push('CDS_CLIENTS is not set (the trusted CDS clients, JSON)');
  // CDS client JWTs must name this URL as aud; taken from the Host header instead, a caller would choose it.
  if (!cfg.PUBLIC_BASE_URL) problems.push('PUBLIC_BASE_URL is not set (the URL CDS clients call, e.g. https://vbmd.example.org)');
  if (cfg.FHIR_CLIENT_ID && !cfg.FHIR_PRIVATE_KEY_FILE) problems.push('FHIR_CLIENT_ID is set but FHIR_PRIVATE_KEY_FILE is not');
  if (cfg.FHIR_PRIVATE_KEY_FILE && !cfg.FHIR_CLIENT_ID) problems.push('FHIR_PRIVATE_KEY_FILE is set but FHIR_CLIENT_ID is not');
  if (!cfg.FHIR_BEARER_TOKEN && !cfg.FHIR_CLIENT_ID) {
    problems.push('no FHIR credentials: set FHIR_BEARER_TOKEN, or FHIR_CLIENT_ID + FHIR_PRIVATE_KEY_FILE (SMART Backend Services)');
  }
  if ((cfg.DICOMWEB_USERNAME === undefined) !== (cfg.DICOMWEB_PASSWORD === undefined)) {
    problems.push('DICOMWEB_USERNAME and DICOMWEB_PASSWORD must be set together');
  }
  if (!cfg.ALLOW_INSECURE_HTTP) {
    for (const name of ['FHIR_BASE_URL', 'DICOMWEB_URL', 'PUBLIC_BASE_URL', 'FHIR_TOKEN_URL'] as const) {
      const v = cfg[name];
      if (v && v.startsWith('http://') && !isLoopbackUrl(v)) problems.push(`${name} uses plain http to a non-loopback host (use https, or ALLOW_INSECURE_HTTP=true)`);
    }
  }
  if (problems.length > 0) throw new VbmdError('config', `Production configuration is incomplete: ${problems.join('; ')}.`);
  return 'production';
}

// Loopback is decided on the parsed address (src/net/address-policy.ts), never on the host name's text.
export { isLoopbackUrl };
