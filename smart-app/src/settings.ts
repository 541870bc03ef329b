/** The app's SMART registration. The scopes must match src/sandbox/smart-auth/smart-auth.ts (SMART_APP_SCOPES) and the
 * registration at a real EHR; kept as literals so the browser bundle does not pull the server code. The
 * client id comes from the service (settings.json: SMART_CLIENT_ID); CLIENT_ID is its default. */
export const CLIENT_ID = 'vbmd-smart-app';

/** SMART v2 clinical scopes (scopes-and-launch-context.md), and their v1 names for servers that do not
 * advertise `permission-v2` (SMART 1.0 `.read` = v2 `.rs`). ImagingStudy: to match a study in launch
 * context by its DICOM UID when the result names only the UID. */
const V2_DATA = 'patient/Observation.rs patient/RiskAssessment.rs patient/Patient.rs patient/ImagingStudy.rs';
const V1_DATA = 'patient/Observation.read patient/RiskAssessment.read patient/Patient.read patient/ImagingStudy.read';
/** `online_access`: a refresh token for as long as the user's EHR session lasts (refreshed silently). */
const BASE = 'openid fhirUser online_access';

export const EHR_SCOPE = `launch ${BASE} ${V2_DATA}`;
export const STANDALONE_SCOPE = `launch/patient ${BASE} ${V2_DATA}`;

/** The scope to request: EHR launch (`launch`) or standalone (`launch/patient`), v2 or v1 names. */
export function appScope(o: { ehrLaunch: boolean; v2: boolean }): string {
  return `${o.ehrLaunch ? 'launch' : 'launch/patient'} ${BASE} ${o.v2 ? V2_DATA : V1_DATA}`;
}

/** /smart/settings.json (smart-app/server.ts AppLaunchSettings). */
export interface LaunchSettings {
  clientId: string;
  sandbox: boolean;
}

/** Reads settings.json from the app's own origin; anything unreadable is an error the page shows. */
export async function readLaunchSettings(): Promise<LaunchSettings> {
  const res = await fetch(new URL('./settings.json', window.location.href).href, { cache: 'no-cache' });
  if (!res.ok) throw new Error(`settings.json: HTTP ${res.status}`);
  const v = (await res.json()) as Partial<LaunchSettings>;
  if (typeof v.clientId !== 'string' || !/^[A-Za-z0-9\-._~:]{1,128}$/.test(v.clientId) || typeof v.sandbox !== 'boolean') {
    throw new Error('settings.json is not {clientId, sandbox}');
  }
  return { clientId: v.clientId, sandbox: v.sandbox };
}

/** SMART capabilities of `iss` from its .well-known/smart-configuration; null when it has none we can read
 * (a SMART v1 server publishing only its CapabilityStatement). */
export async function smartCapabilities(iss: string): Promise<string[] | null> {
  try {
    const res = await fetch(`${iss.replace(/\/+$/, '')}/.well-known/smart-configuration`, { headers: { accept: 'application/json' } });
    if (!res.ok) return null;
    const caps = ((await res.json()) as { capabilities?: unknown }).capabilities;
    return Array.isArray(caps) ? caps.filter((c): c is string => typeof c === 'string') : [];
  } catch {
    return null;
  }
}
