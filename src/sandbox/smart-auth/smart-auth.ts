import * as nodeCrypto from 'node:crypto';
import { randomBytes } from 'node:crypto';
import express from 'express';
import type { Request, Response, Router } from 'express';
import { exportJWK, generateKeyPair } from 'jose';
import Provider, { errors as oidcErrors } from 'oidc-provider';
import type { Configuration, KoaContextWithOIDC } from 'oidc-provider';
import { z } from 'zod';
import { VbmdError } from '../../util/errors.js';
import { log } from '../../util/log.js';
import { LaunchStore } from './launch-context.js';
import { sandboxMemoryAdapter } from './memory-adapter.js';
import type { LaunchContext } from './launch-context.js';
import { ehrFramePage, errorPage, patientIndexPage, patientPickerPage } from './pages.js';
import { decideAccess, inPatientCompartment, parseScopes } from './scopes.js';

/** The default client id of the vbmd SMART app (a public client: PKCE, no secret); SMART_CLIENT_ID changes it. */
export const SMART_APP_CLIENT_ID = 'vbmd-smart-app';

/** Scopes the app asks for (SMART App Launch 2.x v2 scopes; smart-app/src/settings.ts). EHR launch uses
 * `launch`; standalone uses `launch/patient` instead. `online_access`: a refresh token while the user's
 * session lasts, so the app never has to be relaunched after a short access token runs out. */
export const SMART_APP_SCOPES = 'openid fhirUser online_access patient/Observation.rs patient/RiskAssessment.rs patient/Patient.rs patient/ImagingStudy.rs';
export const SMART_EHR_LAUNCH_SCOPE = `launch ${SMART_APP_SCOPES}`;
export const SMART_STANDALONE_LAUNCH_SCOPE = `launch/patient ${SMART_APP_SCOPES}`;

const SUPPORTED_SCOPES = [
  'openid', 'fhirUser', 'launch', 'launch/patient', 'online_access',
  'patient/Observation.rs', 'patient/RiskAssessment.rs', 'patient/Patient.rs', 'patient/ImagingStudy.rs',
  'patient/Observation.read', 'patient/RiskAssessment.read', 'patient/Patient.read', 'patient/ImagingStudy.read',
];

/** The signed-in user of the sandbox EHR. */
const SANDBOX_USER = 'sandbox-clinician';

export type AccessDecision = { ok: true } | { ok: false; status: 401 | 403 };

export interface SandboxSmartOptions {
  /** Issuer = base URL of the authorization server, e.g. `http://127.0.0.1:8080/auth` (path included). */
  issuerUrl: string;
  /** FHIR base URL this server protects, e.g. `http://127.0.0.1:8080/fhir`; the `aud` the app must send. */
  fhirBaseUrl: string;
  /** The app's launch page; default `<issuer origin>/smart/launch.html`. */
  appLaunchUrl?: string;
  /** Redirect URIs the app may use; default `<issuer origin>/smart/index.html`. */
  appRedirectUris?: string[];
  /** Access-token lifetime (s), or a function read at each issue (tests). Short by design: the app refreshes
   * it with its `online_access` refresh token. Default 300. */
  accessTokenTtlS?: number | (() => number);
  /** How long a session lasts (s): the refresh token's absolute lifetime (rotation keeps the remainder), the
   * grant's and the sign-in session's. Default 8 hours; a function is read at each issue (tests). */
  sessionTtlS?: number | (() => number);
  /** The app's client id (SMART_CLIENT_ID); default SMART_APP_CLIENT_ID. */
  clientId?: string;
  /** Sandbox opt-in (SANDBOX_ANONYMOUS_READ): GET and HEAD without an Authorization header are allowed, for
   * the reference launcher and CDS Hooks sandbox, which proxy an open FHIR server. A request that does carry
   * a token is still checked. */
  anonymousRead?: boolean;
  /** Patients offered by the standalone-launch picker (a free-text id field when absent or empty). */
  listPatients?: () => Promise<{ id: string; label: string }[]>;
  /** Reads a stored resource so `GET Type/id` with a patient/ scope can be checked against the compartment.
   * Without it such reads (other than Patient/id) are refused. */
  readResource?: (resourceType: string, id: string) => Promise<unknown>;
}

export interface SandboxSmart {
  /** Mount at the root of the app, before the FHIR server: it serves `<fhir base>/.well-known/
   * smart-configuration`, the authorization server under the issuer path, and `/sandbox/launch`. */
  router: Router;
  /** For `createFhirApp({ verifyAccess })`: accepts only unexpired tokens this server issued, within their
   * scopes, confined to the launch patient for patient/ scopes. */
  verifyAccess: (req: Request) => Promise<AccessDecision>;
  /** Mints an EHR `launch` value for a context, and the URL the EHR opens (`launch_uri?iss=&launch=`). */
  createLaunch: (context: LaunchContext) => { launch: string; url: string };
  /** The SMART configuration document (also served over HTTP). */
  smartConfiguration: () => Record<string, unknown>;
}

const launchQuery = z.object({
  patient: z.string().regex(/^[A-Za-z0-9\-.]{1,64}$/, 'patient must be a FHIR id'),
  imagingStudy: z.string().regex(/^[A-Za-z0-9\-.]{1,64}$/).optional(),
  observation: z.string().regex(/^[A-Za-z0-9\-.]{1,64}$/).optional(),
  appContext: z.string().max(2000).optional(),
  banner: z.enum(['0', '1']).optional(),
  open: z.enum(['frame', 'redirect']).optional(),
});

function pathOf(url: string): string {
  return new URL(url).pathname.replace(/\/+$/, '');
}

/** The options resolved once: URLs without trailing slashes, TTLs as functions read at each issue. */
interface SmartSettings {
  issuer: string;
  fhirBase: string;
  issuerPath: string;
  appLaunchUrl: string;
  redirectUris: string[];
  accessTokenTtlS: () => number;
  sessionTtlS: () => number;
  clientId: string;
}

/** grantId -> launch context of that authorization. */
type GrantContexts = Map<string, LaunchContext>;

function resolveSettings(options: SandboxSmartOptions): SmartSettings {
  // oidc-provider 9 targets Node 22 LTS (it prints "Unsupported runtime" on 20) and checks PKCE with
  // crypto.hash, which Node 20 has from 20.12 on: fail at start with a clear line rather than at a token.
  if (typeof (nodeCrypto as { hash?: unknown }).hash !== 'function') {
    throw new VbmdError('config', `The sandbox SMART server needs Node.js >= 20.12 (this is ${process.version}); upgrade Node.`);
  }
  const issuer = options.issuerUrl.replace(/\/+$/, '');
  const fhirBase = options.fhirBaseUrl.replace(/\/+$/, '');
  const origin = new URL(issuer).origin;
  const issuerPath = pathOf(issuer);
  if (!issuerPath) throw new VbmdError('config', `The sandbox SMART issuer ${issuer} needs a path (e.g. /auth) so it does not shadow the app.`);
  const ttlOption = options.accessTokenTtlS ?? 300;
  const sessionOption = options.sessionTtlS ?? 8 * 3600;
  return {
    issuer,
    fhirBase,
    issuerPath,
    appLaunchUrl: options.appLaunchUrl ?? `${origin}/smart/launch.html`,
    redirectUris: options.appRedirectUris ?? [`${origin}/smart/index.html`],
    accessTokenTtlS: () => (typeof ttlOption === 'function' ? ttlOption() : ttlOption),
    sessionTtlS: () => (typeof sessionOption === 'function' ? sessionOption() : sessionOption),
    clientId: options.clientId ?? SMART_APP_CLIENT_ID,
  };
}

/** oidc-provider's configuration: one public PKCE client, SMART scopes, `aud` and `launch` parameters. */
function providerConfiguration(s: SmartSettings, grantContexts: GrantContexts, jwk: Record<string, unknown>): Configuration {
  const { fhirBase, redirectUris, accessTokenTtlS, sessionTtlS } = s;
  return {
    adapter: sandboxMemoryAdapter(),
    // Browsers send Origin with the app's token POST: only the origins of the registered redirect URIs may call
    // (SMART App Launch "CORS": token endpoint open to registered origins).
    clientBasedCORS: (_ctx, origin) => redirectUris.some((u) => new URL(u).origin === origin),
    clients: [
      {
        client_id: s.clientId,
        token_endpoint_auth_method: 'none',
        redirect_uris: redirectUris,
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
      },
    ],
    jwks: { keys: [jwk as never] },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    scopes: SUPPORTED_SCOPES,
    claims: { openid: ['sub'], fhirUser: ['fhirUser'] },
    // Scope claims go into the ID token too (fhirclient reads fhirUser from it).
    conformIdTokenClaims: false,
    // PKCE for every client; oidc-provider 9 implements S256 only, so `plain` and a missing challenge fail.
    pkce: { required: () => true },
    // SMART `online_access` (and `offline_access`): a refresh token. oidc-provider's default issues one for
    // offline_access only; an online one still ends with the session (expiresWithSession).
    issueRefreshToken: async (_ctx, client, code) => client.grantTypeAllowed('refresh_token') && (code.scopes.has('online_access') || code.scopes.has('offline_access')),
    features: { devInteractions: { enabled: false }, revocation: { enabled: true } },
    routes: { authorization: '/authorize', token: '/token', jwks: '/jwks', revocation: '/revoke', userinfo: '/userinfo' },
    ttl: {
      AccessToken: accessTokenTtlS,
      AuthorizationCode: 60,
      IdToken: accessTokenTtlS,
      Interaction: 600,
      Session: sessionTtlS,
      Grant: sessionTtlS,
      // Rotation (public clients) keeps the first token's end: a session lasts sessionTtlS, not forever.
      RefreshToken: (ctx) => ctx?.oidc?.entities.RotatedRefreshToken?.remainingTTL ?? sessionTtlS(),
    },
    extraParams: {
      launch: null,
      // SMART: `aud` is the FHIR base the token is for; refusing others stops a token leaking to a server
      // the user did not mean.
      aud(_ctx: KoaContextWithOIDC, value: string | undefined) {
        if (value !== undefined && value.replace(/\/+$/, '') !== fhirBase) {
          throw new oidcErrors.InvalidRequest(`aud must be this server's FHIR base URL (${fhirBase})`);
        }
      },
    },
    interactions: { url: (_ctx, interaction) => `${s.issuerPath}/interaction/${interaction.uid}` },
    findAccount: (_ctx, sub) => ({
      accountId: sub,
      claims: () => ({ sub, fhirUser: `${fhirBase}/Practitioner/${sub}` }),
    }),
    extraTokenClaims: (_ctx, token) => {
      const grantId = (token as { grantId?: string }).grantId;
      const context = grantId ? grantContexts.get(grantId) : undefined;
      return context ? { patient: context.patient } : undefined;
    },
    renderError: (ctx, out) => {
      ctx.type = 'html';
      ctx.body = errorPage('Sign-in failed', `${String(out.error)}: ${String(out.error_description ?? '')}`);
    },
  };
}

/** The provider with a fresh signing key, adding the SMART launch context to its token responses. */
async function createProvider(s: SmartSettings, grantContexts: GrantContexts): Promise<Provider> {
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = { ...(await exportJWK(privateKey)), kid: randomBytes(8).toString('hex'), alg: 'RS256', use: 'sig' };
  const provider = new Provider(s.issuer, providerConfiguration(s, grantContexts, jwk));
  // SMART launch context rides on the token response (app-launch.md "Response"), next to access_token.
  provider.use(async (ctx, next) => {
    await next();
    if (ctx.oidc?.route !== 'token' || ctx.status !== 200) return;
    const body = ctx.body as Record<string, unknown> | undefined;
    const token = typeof body?.access_token === 'string' ? await provider.AccessToken.find(body.access_token) : undefined;
    const context = token?.grantId ? grantContexts.get(token.grantId) : undefined;
    if (!body || !context) return;
    body.patient = context.patient;
    if (context.fhirContext?.length) body.fhirContext = context.fhirContext;
    body.need_patient_banner = context.needPatientBanner;
    if (context.appContext !== undefined) body.appContext = context.appContext;
    ctx.set('Cache-Control', 'no-store');
  });
  return provider;
}

/**
 * The sign-in interaction. The sandbox EHR user is always signed in; EHR launch resolves `launch` to its
 * context, standalone launch asks which patient (the launch/patient scope), as SMART's "patient picker".
 */
function addInteractionRoutes(router: Router, provider: Provider, s: SmartSettings, launches: LaunchStore, grantContexts: GrantContexts, options: SandboxSmartOptions): void {
  async function finish(req: Request, res: Response, scope: string, context: LaunchContext | null): Promise<void> {
    const details = await provider.interactionDetails(req, res);
    const clientId = String(details.params.client_id);
    const grant = new provider.Grant({ accountId: SANDBOX_USER, clientId });
    const requested = new Set(scope.split(/\s+/).filter(Boolean));
    grant.addOIDCScope([...requested].filter((sc) => SUPPORTED_SCOPES.includes(sc)).join(' '));
    const grantId = await grant.save();
    if (context) grantContexts.set(grantId, context);
    await provider.interactionFinished(
      req,
      res,
      { login: { accountId: SANDBOX_USER }, consent: { grantId } },
      { mergeWithLastSubmission: false },
    );
  }

  async function fail(req: Request, res: Response, description: string): Promise<void> {
    await provider.interactionFinished(req, res, { error: 'invalid_request', error_description: description }, { mergeWithLastSubmission: false });
  }

  router.get(`${s.issuerPath}/interaction/:uid`, (req, res, next) => {
    (async () => {
      const details = await provider.interactionDetails(req, res);
      const params = details.params as Record<string, string | undefined>;
      const scope = params.scope ?? '';
      const scopes = scope.split(/\s+/);
      if (params.launch !== undefined) {
        const context = launches.get(params.launch);
        if (!context) return fail(req, res, 'The launch value is unknown or has expired: launch the app again from the EHR.');
        if (!scopes.includes('launch')) return fail(req, res, 'An EHR launch must request the "launch" scope.');
        return finish(req, res, scope, context);
      }
      if (scopes.includes('launch/patient')) {
        const patients = options.listPatients ? await options.listPatients() : [];
        res.type('html').send(
          patientPickerPage({ action: `${s.issuerPath}/interaction/${details.uid}/patient`, patients, clientId: String(params.client_id) }),
        );
        return;
      }
      // Neither launch nor launch/patient: a token without patient context (patient/ scopes then allow nothing).
      return finish(req, res, scope, null);
    })().catch(next);
  });

  router.post(`${s.issuerPath}/interaction/:uid/patient`, express.urlencoded({ extended: false, limit: '10kb' }), (req, res, next) => {
    (async () => {
      const details = await provider.interactionDetails(req, res);
      const parsed = z.object({ patient: z.string().regex(/^[A-Za-z0-9\-.]{1,64}$/) }).safeParse(req.body);
      if (!parsed.success) return fail(req, res, 'No valid patient was chosen.');
      const scope = String((details.params as Record<string, unknown>).scope ?? '');
      return finish(req, res, scope, { patient: parsed.data.patient, needPatientBanner: true });
    })().catch(next);
  });
}

function smartConfigurationOf(issuer: string): Record<string, unknown> {
  return {
    issuer,
    jwks_uri: `${issuer}/jwks`,
    authorization_endpoint: `${issuer}/authorize`,
    token_endpoint: `${issuer}/token`,
    revocation_endpoint: `${issuer}/revoke`,
    userinfo_endpoint: `${issuer}/userinfo`,
    grant_types_supported: ['authorization_code', 'refresh_token'],
    response_types_supported: ['code'],
    token_endpoint_auth_methods_supported: ['none'],
    scopes_supported: SUPPORTED_SCOPES,
    code_challenge_methods_supported: ['S256'],
    capabilities: [
      'launch-ehr', 'launch-standalone', 'client-public', 'sso-openid-connect',
      'context-ehr-patient', 'context-standalone-patient', 'context-banner',
      'permission-patient', 'permission-online', 'permission-v1', 'permission-v2',
    ],
  };
}

/** `GET /sandbox/launch`: the EHR side of an EHR launch (a patient index without `?patient=`). */
function launchHandler(createLaunch: SandboxSmart['createLaunch'], options: SandboxSmartOptions): express.RequestHandler {
  return (req, res, next) => {
    if (req.query.patient === undefined) {
      (options.listPatients ? options.listPatients() : Promise.resolve([]))
        .then((patients) => res.type('html').send(patientIndexPage(patients)))
        .catch(next);
      return;
    }
    const q = launchQuery.safeParse(req.query);
    if (!q.success) {
      res.status(400).type('html').send(errorPage('Cannot launch', `Give a patient id: /sandbox/launch?patient=ID (${q.error.issues[0]?.message ?? 'bad query'}).`));
      return;
    }
    const refs = [
      ...(q.data.imagingStudy ? [{ reference: `ImagingStudy/${q.data.imagingStudy}` }] : []),
      ...(q.data.observation ? [{ reference: `Observation/${q.data.observation}` }] : []),
    ];
    const fhirContext = refs.length ? refs : undefined;
    const { url } = createLaunch({
      patient: q.data.patient,
      fhirContext,
      needPatientBanner: q.data.banner !== '0',
      ...(q.data.appContext ? { appContext: q.data.appContext } : {}),
    });
    if (q.data.open === 'redirect') {
      res.redirect(302, url);
      return;
    }
    res.type('html').send(ehrFramePage({ patient: q.data.patient, fhirContext: fhirContext?.[0]?.reference, appUrl: url }));
  };
}

/** Checks a FHIR request's bearer token: issued here, unexpired, within its scopes and the launch patient. */
function accessVerifier(provider: Provider, options: SandboxSmartOptions): SandboxSmart['verifyAccess'] {
  return async (req: Request): Promise<AccessDecision> => {
    const header = req.headers.authorization ?? '';
    if (!header && options.anonymousRead && (req.method === 'GET' || req.method === 'HEAD')) return { ok: true };
    const m = /^Bearer\s+([A-Za-z0-9\-._~+/]+=*)$/i.exec(header);
    if (!m) return { ok: false, status: 401 };
    const token = await provider.AccessToken.find(m[1]).catch(() => undefined);
    if (!token || token.isExpired) return { ok: false, status: 401 };
    const patient = (token.extra as { patient?: unknown } | undefined)?.patient;
    const url = new URL(req.url, 'http://local');
    const decision = decideAccess(
      { scopes: parseScopes(token.scope ?? ''), patient: typeof patient === 'string' ? patient : undefined },
      { method: req.method, path: url.pathname, query: url.searchParams, body: req.body },
    );
    if (!decision.ok) {
      log.debug({ reason: decision.reason, method: req.method, path: url.pathname }, 'sandbox SMART: request refused');
      return { ok: false, status: 403 };
    }
    if (decision.needsCompartmentCheck) {
      if (!options.readResource || typeof patient !== 'string') return { ok: false, status: 403 };
      const { resourceType, id } = decision.needsCompartmentCheck;
      const resource = await options.readResource(resourceType, id).catch(() => undefined);
      // A missing resource is let through so the FHIR server answers 404 itself.
      if (resource !== undefined && !inPatientCompartment(resource, patient)) return { ok: false, status: 403 };
    }
    return { ok: true };
  };
}

/**
 * The sandbox SMART authorization server (oidc-provider, OpenID Certified) plus the EHR side of a launch.
 * SMART on top of OAuth/OIDC: the `launch` and `aud` authorize parameters, launch context (`patient`,
 * `fhirContext`, `need_patient_banner`) in the token response, PKCE with S256 only (oidc-provider has no
 * `plain`, and we require PKCE for every client), short-lived opaque access tokens checked in process.
 */
export async function createSandboxSmart(options: SandboxSmartOptions): Promise<SandboxSmart> {
  const s = resolveSettings(options);
  const launches = new LaunchStore();
  const grantContexts: GrantContexts = new Map();
  const provider = await createProvider(s, grantContexts);

  const router = express.Router();
  addInteractionRoutes(router, provider, s, launches, grantContexts, options);
  const smartConfiguration = (): Record<string, unknown> => smartConfigurationOf(s.issuer);
  // Discovery is open to any origin (SMART App Launch, "CORS").
  router.get(`${pathOf(s.fhirBase)}/.well-known/smart-configuration`, (_req, res) => {
    res.set('Access-Control-Allow-Origin', '*').json(smartConfiguration());
  });
  const createLaunch = (context: LaunchContext): { launch: string; url: string } => {
    const launch = launches.create(context);
    const url = new URL(s.appLaunchUrl);
    url.searchParams.set('iss', s.fhirBase);
    url.searchParams.set('launch', launch);
    return { launch, url: url.href };
  };
  router.get('/sandbox/launch', launchHandler(createLaunch, options));
  router.use(s.issuerPath, provider.callback() as unknown as express.RequestHandler);

  return { router, verifyAccess: accessVerifier(provider, options), createLaunch, smartConfiguration };
}
