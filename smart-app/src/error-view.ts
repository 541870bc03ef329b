import { esc } from './format.js';

/** Error states a user can act on: what happened and what to do, in one place (launch.html and the app). */

export type ErrorKind =
  | 'no-context'
  | 'needs-iss'
  | 'launch-failed'
  | 'blocked'
  | 'expired'
  | 'unauthorized'
  | 'forbidden'
  | 'server'
  | 'network';

const ERROR_TEXT: Record<ErrorKind, { title: string; action: string }> = {
  'no-context': {
    title: 'Open this app from a patient chart',
    action: 'The app was opened without a patient. Launch it from the patient’s chart in the EHR (or from an alert card); bookmarks of this page do not work.',
  },
  'needs-iss': {
    title: 'Which EHR should the app sign in to?',
    action: 'A standalone launch needs the EHR’s FHIR server address: add ?iss= and that address to this page’s URL (below), or open the app from the patient’s chart in the EHR.',
  },
  'launch-failed': { title: 'Sign-in did not complete', action: 'Launch the app again from the EHR. If it keeps failing, give this message to your EHR support team.' },
  blocked: {
    title: 'The app’s security policy blocked a request',
    action: 'The vbmd service lets the app call only its own address and the EHR addresses it is configured with. Your vbmd administrator can allow this one (details below); then launch the app again.',
  },
  expired: { title: 'Your session has ended', action: 'The app’s access to the EHR has ended. Sign in again, or open the app again from the patient’s chart.' },
  unauthorized: { title: 'The FHIR server did not accept the app’s access', action: 'Launch the app again from the EHR. If this repeats, your EHR support team should check the app’s registration.' },
  forbidden: {
    title: 'You do not have access to these results',
    action: 'The EHR did not grant the app read access to this patient’s Observation and RiskAssessment records. Ask your EHR support team to allow it.',
  },
  server: { title: 'The FHIR server had a problem', action: 'Try again in a minute. If it keeps failing, contact radiology IT and quote the details below.' },
  network: { title: 'The FHIR server could not be reached', action: 'Check your network connection and try again.' },
};

export function errorView(kind: ErrorKind, detail: string, canRetry: boolean, relaunchHref?: string): string {
  const t = ERROR_TEXT[kind];
  return `<section class="error" role="alert" data-testid="state-error" data-kind="${kind}"><h2>${esc(t.title)}</h2><p>${esc(t.action)}</p>${
    detail ? `<p class="detail" data-testid="error-detail">Details: ${esc(detail)}</p>` : ''
  }${canRetry ? '<button type="button" id="retry">Try again</button>' : ''}${relaunchHref ? `<a class="button" data-testid="relaunch" href="${esc(relaunchHref)}">Sign in again</a>` : ''}</section>`;
}
