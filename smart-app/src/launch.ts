import FHIR from 'fhirclient';
import { blockBehind, describeBlock, watchCspBlocks } from './csp-watch.js';
import { errorView } from './error-view.js';
import type { ErrorKind } from './error-view.js';
import { appScope, readLaunchSettings, smartCapabilities } from './settings.js';

/**
 * launch.html: the SMART launch_uri. EHR launch arrives with `iss` and `launch`; without `launch` it is a
 * standalone launch against `iss` asking for `launch/patient` (in the sandbox `iss` may be left out: this
 * service's own FHIR server). Scopes are SMART v2 unless the server's smart-configuration lacks
 * `permission-v2`, then v1. PKCE S256 is required: fhirclient refuses servers that do not advertise it.
 */
watchCspBlocks();

function show(kind: ErrorKind, detail: string): void {
  (document.getElementById('app') as HTMLElement).innerHTML = errorView(kind, detail, false);
  document.body.dataset.state = `error:${kind}`;
}

async function main(): Promise<void> {
  const params = new URLSearchParams(window.location.search);
  const launch = params.get('launch');
  const settings = await readLaunchSettings();
  let iss = params.get('iss');
  if (!iss && launch) return show('no-context', 'The EHR sent a launch without the FHIR server address (iss).');
  if (!iss && !settings.sandbox) {
    return show('needs-iss', `Open ${new URL('./launch.html', window.location.href).href}?iss=<the EHR's FHIR base URL> for a standalone launch, or open the app from the patient's chart.`);
  }
  iss ??= new URL('../fhir', window.location.href).href;
  const capabilities = await smartCapabilities(iss);
  const v2 = capabilities?.includes('permission-v2') ?? false;
  document.body.dataset.scopes = v2 ? 'v2' : 'v1';
  await FHIR.oauth2.authorize({
    clientId: settings.clientId,
    scope: appScope({ ehrLaunch: Boolean(launch), v2 }),
    redirectUri: './index.html',
    iss,
    ...(launch ? { launch } : {}),
    pkceMode: 'required',
    // EHRs embed the app in an iframe: finish the authorization in that same frame, not in the EHR window.
    completeInTarget: true,
  });
}

main().catch(async (e: unknown) => {
  const block = await blockBehind();
  if (block) return show('blocked', describeBlock(block));
  show('launch-failed', e instanceof Error ? e.message.split('\n')[0]! : String(e));
});
