import FHIR from 'fhirclient';
import { VBMD_SUMMARY_CODE_TOKEN } from '../../src/fhir/codes.js';
import { renderTrendChart } from './chart.js';
import { blockBehind, describeBlock, watchCspBlocks } from './csp-watch.js';
import { latestRisk, parseImagingStudyUid, parsePatient, parseVbmdObservations } from './fhir-parse.js';
import { legendView } from './legend.js';
import type { PatientSummary, RiskSummary, VbmdStudy } from './model.js';
import type { Client, SessionKeeper } from './session.js';
import { keepSessionAlive, relaunchHref } from './session.js';
import { buildTrend, changeSincePreviousStudy, contextReferences, latestByLevel, latestStudy, rateOfChange, studyForContext } from './trend.js';
import type { RateOfChange, Trend } from './trend.js';
import type { ErrorKind } from './views.js';
import {
  errorView,
  latestLevelsView,
  levelToggles,
  noDataView,
  patientBanner,
  rateView,
  riskView,
  sessionEndedView,
  studyFacts,
  summaryView,
  valuesTable,
} from './views.js';

/**
 * index.html: the SMART redirect_uri and the app. Completes the authorization (fhirclient exchanges the code
 * with the PKCE verifier), reads the patient's vBMD Observations and RiskAssessments from the FHIR server,
 * and renders: the result and its alerts and caveats first, then the trend, then how it was measured. The
 * session is kept alive with the refresh token; when it ends the data stays on screen with a relaunch link.
 * Timing marks for the browser test are on window.__vbmd.
 */
watchCspBlocks();
// Refresh requests of a public client carry its client_id (RFC 6749 sections 6 and 3.2.1).
FHIR.oauth2.settings.refreshTokenWithClientId = true;

interface Unavailable {
  unavailable: number;
}
const isUnavailable = (v: unknown): v is Unavailable => typeof v === 'object' && v !== null && 'unavailable' in v;

interface Loaded {
  studies: VbmdStudy[];
  skipped: number;
  risk: RiskSummary | null | 'unavailable';
  patient: PatientSummary | null;
  /** `ImagingStudy/<id>` in launch context -> its DICOM UID (results found by polling carry only the UID). */
  contextUids: Map<string, string>;
}

interface Timing {
  tokenArrivedMs?: number;
  readyToLoadMs?: number;
  loadMs?: number;
  renderMs?: number;
  trendPaintedMs?: number;
  tokenToTrendMs?: number;
  refreshes?: number;
}

declare global {
  interface Window {
    __vbmd?: Timing & { state?: string };
  }
}

const root = (): HTMLElement => document.getElementById('app') as HTMLElement;

function setState(state: string): void {
  document.body.dataset.state = state;
  window.__vbmd = { ...(window.__vbmd ?? {}), state };
}

type Classified = { kind: ErrorKind; detail: string; retry: boolean };

async function classify(e: unknown, client: Client | null): Promise<Classified> {
  const err = e as { status?: number; message?: string; response?: { url?: string } };
  const message = err?.message ?? String(e);
  const status = typeof err?.status === 'number' ? err.status : undefined;
  if (status === undefined && /Failed to fetch|NetworkError|network/i.test(message)) {
    const block = await blockBehind();
    if (block) return { kind: 'blocked', detail: describeBlock(block), retry: false };
    return { kind: 'network', detail: message, retry: true };
  }
  // Without a client the failing request was the token exchange, at the authorization server.
  if (status !== undefined && !client) return { kind: 'launch-failed', detail: `HTTP ${status} from the authorization server (token request)`, retry: false };
  // A refused refresh (the token endpoint answers 400/401) or a 401 from the FHIR server once the token ran out.
  const fromTokenEndpoint = client !== null && err?.response?.url !== undefined && err.response.url === client.state.tokenUri;
  if (fromTokenEndpoint) return { kind: 'expired', detail: '', retry: false };
  if (status === 401) {
    const expiresAt = Number(client?.state.expiresAt ?? 0);
    if (expiresAt && expiresAt * 1000 <= Date.now() + 1000) return { kind: 'expired', detail: '', retry: false };
    return { kind: 'unauthorized', detail: 'HTTP 401 from the FHIR server', retry: false };
  }
  if (status === 403) return { kind: 'forbidden', detail: 'HTTP 403 from the FHIR server', retry: false };
  if (status !== undefined) return { kind: 'server', detail: `HTTP ${status} from ${client?.state.serverUrl ?? 'the FHIR server'}`, retry: true };
  if (/No 'state' parameter|No state found|No server url/i.test(message)) return { kind: 'no-context', detail: '', retry: false };
  return { kind: 'launch-failed', detail: message.split('\n')[0] ?? '', retry: false };
}

async function load(client: Client, patientId: string, needBanner: boolean, contextRefs: readonly string[]): Promise<Loaded> {
  const opts = { pageLimit: 0, flat: true } as const;
  const pid = encodeURIComponent(patientId);
  // `subject=Patient/<id>`: a type-qualified reference search (FHIR R4 search 3.1.1.4.9) that every server
  // understands; the bare-id form is not (the Medplum-based sandbox server among them), and there `patient=`
  // (subject.where(resolve() is Patient)) is 3-4x slower than `subject=`.
  const patientParam = `subject=${encodeURIComponent(`Patient/${patientId}`)}`;
  // The vBMD results are the app; the RiskAssessment, the Patient and the study in context are extras: an EHR
  // that grants only Observation access (403) or lacks the resource (404) still gets the trend.
  const optional = <T,>(p: Promise<T>): Promise<T | Unavailable> =>
    p.catch((e: unknown) => {
      const status = (e as { status?: number })?.status;
      if (status === 403 || status === 404) return { unavailable: status };
      throw e;
    });
  const studyRefs = contextRefs.filter((r) => r.startsWith('ImagingStudy/'));
  const [obs, risks, patient, ...studies] = await Promise.all([
    client.request<unknown[]>(`Observation?${patientParam}&code=${encodeURIComponent(VBMD_SUMMARY_CODE_TOKEN)}&_count=200`, opts),
    optional(client.request<unknown[]>(`RiskAssessment?${patientParam}&_count=100`, opts)),
    needBanner ? optional(client.request<unknown>(`Patient/${pid}`)) : Promise.resolve(null),
    ...studyRefs.map((r) => optional(client.request<unknown>(r))),
  ]);
  const parsed = parseVbmdObservations(obs);
  if (parsed.skipped.length) console.warn('vbmd: skipped resources', parsed.skipped);
  const contextUids = new Map<string, string>();
  studyRefs.forEach((ref, i) => {
    const uid = isUnavailable(studies[i]) ? null : parseImagingStudyUid(studies[i]);
    if (uid) contextUids.set(ref, uid);
  });
  return {
    studies: parsed.items,
    skipped: parsed.skipped.length,
    risk: isUnavailable(risks) ? 'unavailable' : latestRisk(risks),
    patient: patient === null ? null : isUnavailable(patient) ? { id: patientId, name: `Patient ${patientId} (details not available)` } : parsePatient(patient),
    contextUids,
  };
}

const TITLE = '<header class="app-head"><h1>Bone density from CT (vBMD)</h1><button type="button" id="reload" class="secondary">Reload data</button></header><div id="session-slot"></div>';

function contextNote(ref: string | undefined, found: boolean): string {
  if (!ref || found) return '';
  const what = ref.replace(/^ImagingStudy\//, 'study ').replace(/^Observation\//, 'result ').replace(/^urn:dicom:uid:/, 'study ');
  return `<p class="muted small" data-testid="context-missing">No result yet for ${what}; showing the latest.</p>`;
}

function render(data: Loaded, contextRefs: readonly string[], needBanner: boolean): void {
  const banner = needBanner && data.patient ? patientBanner(data.patient) : '';
  if (data.studies.length === 0) {
    root().innerHTML = `${banner}${TITLE}${noDataView()}`;
    setState('no-data');
    return;
  }
  const trend = buildTrend(data.studies);
  const rate = rateOfChange(trend.summary);
  const latest = latestStudy(data.studies);
  const contextStudy = studyForContext(data.studies, contextRefs, data.contextUids);
  const focus = contextStudy ?? latest!;
  const shown = new Set<string>();
  const notes = `${contextNote(contextRefs[0], contextStudy !== null)}${data.skipped ? `<p class="muted small">${data.skipped} record(s) could not be read and are not shown.</p>` : ''}`;

  root().innerHTML = `${banner}${TITLE}
<div class="layout">
${summaryView({ focus, fromContext: focus === contextStudy, latest, rate, notes })}
<section class="card trend" aria-labelledby="trend-h"><h2 id="trend-h">Trend</h2>
<div id="chart" class="chart-box" data-testid="chart-container"></div>
<div id="legend"></div>
${rateView(rate, trend.summary.length, changeSincePreviousStudy(trend.summary))}
<div id="toggles">${levelToggles(trend, shown)}</div>
${valuesTable(data.studies)}
</section>
<div class="details">
${studyFacts(focus)}
${riskView(data.risk)}
${latestLevelsView(latestByLevel(data.studies))}
</div>
</div>`;
  const draw = (): void => drawChart(trend, rate, shown, focus.observationId);
  draw();
  document.getElementById('toggles')?.addEventListener('change', (ev) => {
    const input = ev.target as HTMLInputElement;
    if (input.name !== 'level') return;
    if (input.checked) shown.add(input.value);
    else shown.delete(input.value);
    draw();
  });
  redraw = draw;
  setState('ready');
}

/** Redraws the chart at its container's new width (a resized EHR panel, a rotated phone). */
let redraw: (() => void) | null = null;
let drawnWidth = 0;
window.addEventListener('resize', () => {
  const el = document.getElementById('chart');
  if (redraw && el && Math.abs(el.clientWidth - drawnWidth) > 4) requestAnimationFrame(() => redraw?.());
});

function drawChart(trend: Trend, rate: RateOfChange | null, shown: ReadonlySet<string>, highlight: string): void {
  const el = document.getElementById('chart');
  if (!el) return;
  const width = Math.max(260, Math.floor(el.clientWidth));
  const height = Math.round(width < 480 ? width * 0.75 : Math.min(360, Math.max(260, width * 0.45)));
  drawnWidth = width;
  el.innerHTML = renderTrendChart(trend, { width, height, showLevels: shown, highlight, rate });
  const legend = document.getElementById('legend');
  if (legend) legend.innerHTML = legendView(trend, rate, shown);
}

/** When the token response finished arriving, on this page's clock (Resource Timing of the token POST). */
function tokenArrivedMs(): number | undefined {
  const entries = performance.getEntriesByType('resource') as PerformanceResourceTiming[];
  const token = entries.filter((e) => /\/token(\?|$)/.test(new URL(e.name).pathname + new URL(e.name).search)).pop();
  return token?.responseEnd;
}

async function showError(e: unknown, client: Client | null, retry: () => void): Promise<void> {
  const c = await classify(e, client);
  root().innerHTML = errorView(c.kind, c.detail, c.retry, c.kind === 'expired' && client ? relaunchHref(client) : undefined);
  document.getElementById('retry')?.addEventListener('click', retry);
  setState(`error:${c.kind}`);
}

let keeper: SessionKeeper | null = null;
let loadedAtMs = 0;

/** The session is over: what is on screen stays, marked with its age, and a relaunch link is offered. */
function endSession(client: Client): void {
  keeper?.stop();
  document.body.dataset.session = 'ended';
  const slot = document.getElementById('session-slot');
  if (!slot || !loadedAtMs) {
    root().innerHTML = errorView('expired', '', false, relaunchHref(client));
    setState('error:expired');
    return;
  }
  slot.innerHTML = sessionEndedView(loadedAtMs, relaunchHref(client));
  const reloadButton = document.getElementById('reload');
  if (reloadButton) reloadButton.hidden = true;
}

async function run(): Promise<void> {
  setState('loading');
  root().innerHTML = '<p class="loading" role="status">Loading bone-density results…</p>';
  let client: Client;
  try {
    client = await FHIR.oauth2.ready();
  } catch (e) {
    await showError(e, null, () => window.location.reload());
    return;
  }
  const c = client;
  const patientId = c.patient.id;
  if (!patientId) {
    root().innerHTML = errorView('no-context', 'The EHR granted access without a patient in context.', false);
    setState('error:no-context');
    return;
  }
  const tokenResponse = c.state.tokenResponse as { need_patient_banner?: boolean } | undefined;
  const needBanner = Boolean(tokenResponse?.need_patient_banner);
  const contextRefs = contextReferences(tokenResponse);
  const arrived = tokenArrivedMs();
  document.body.dataset.session = 'active';
  keeper = keepSessionAlive(c, () => endSession(c));
  const attempt = async (): Promise<void> => {
    if (document.body.dataset.session === 'ended') return;
    try {
      const t0 = performance.now();
      const data = await load(c, patientId, needBanner, contextRefs);
      const t1 = performance.now();
      render(data, contextRefs, needBanner);
      loadedAtMs = Date.now();
      window.__vbmd = { ...(window.__vbmd ?? {}), refreshes: keeper?.refreshes() ?? 0 };
      const t2 = performance.now();
      // Two frames later the chart has been laid out and painted (first paint only, not reloads).
      if (window.__vbmd?.trendPaintedMs !== undefined) return;
      requestAnimationFrame(() =>
        requestAnimationFrame(() => {
          const painted = performance.now();
          window.__vbmd = {
            ...(window.__vbmd ?? {}),
            tokenArrivedMs: arrived,
            readyToLoadMs: arrived !== undefined ? t0 - arrived : undefined,
            loadMs: t1 - t0,
            renderMs: t2 - t1,
            trendPaintedMs: painted,
            ...(arrived !== undefined ? { tokenToTrendMs: painted - arrived } : {}),
          };
        }),
      );
    } catch (e) {
      const kind = (await classify(e, c)).kind;
      if (kind === 'expired') return endSession(c);
      await showError(e, c, () => void attempt());
    }
  };
  reload = attempt;
  await attempt();
}

/** Re-reads the data with the current token (the header's Reload button). */
let reload: (() => Promise<void>) | null = null;
document.addEventListener('click', (ev) => {
  if ((ev.target as HTMLElement).closest?.('#reload') && reload) void reload();
});

void run();
