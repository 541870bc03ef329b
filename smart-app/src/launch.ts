import FHIR from 'fhirclient';
import { CLIENT_ID, EHR_SCOPE, STANDALONE_SCOPE } from './settings.js';
import { errorView } from './error-view.js';

/**
 * launch.html: the SMART launch_uri. EHR launch arrives with `iss` and `launch`; without `launch` it is a
 * standalone launch against `iss` (default: this server's own FHIR base, `/fhir`) asking for
 * `launch/patient`. PKCE S256 is required: fhirclient refuses servers that do not advertise it.
 */
async function main(): Promise<void> {
  const params = new URLSearchParams(window.location.search);
  const launch = params.get('launch');
  const iss = params.get('iss') ?? (launch ? null : new URL('../fhir', window.location.href).href);
  const root = document.getElementById('app') as HTMLElement;
  if (!iss) {
    root.innerHTML = errorView('no-context', 'The EHR sent a launch without the FHIR server address (iss).', false);
    return;
  }
  try {
    await FHIR.oauth2.authorize({
      clientId: CLIENT_ID,
      scope: launch ? EHR_SCOPE : STANDALONE_SCOPE,
      redirectUri: './index.html',
      iss,
      ...(launch ? { launch } : {}),
      pkceMode: 'required',
      // EHRs embed the app in an iframe: finish the authorization in that same frame, not in the EHR window.
      completeInTarget: true,
    });
  } catch (e) {
    root.innerHTML = errorView('launch-failed', e instanceof Error ? e.message : String(e), false);
  }
}

void main();
