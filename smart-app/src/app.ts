import FHIR from 'fhirclient';
import { VBMD_SUMMARY_CODE_TOKEN } from '../../src/fhir/codes.js';
import { renderTrendChart } from './chart.js';
import { latestRisk, parsePatient, parseVbmdObservations } from './fhir-parse.js';
import type { PatientSummary, RiskSummary, VbmdStudy } from './model.js';
import { buildTrend, changeSincePreviousStudy, contextReferences, latestByLevel, latestStudy, rateOfChange, studyForContext } from './trend.js';
import type { Trend } from './trend.js';
import type { ErrorKind } from './views.js';
import {
  alertsView,
  errorView,
  latestLevelsView,
  levelToggles,
  noDataView,
  patientBanner,
  rateView,
  riskView,
  studyDetails,
  valuesTable,
} from './views.js';

/**
 * index.html: the SMART redirect_uri and the app. Completes the authorization (fhirclient exchanges the code
 * with the PKCE verifier), reads the patient's vBMD Observations and RiskAssessments from the FHIR server
 * (the only origin it talks to), and renders. Timing marks for the browser test are on window.__vbmd.
 */

type Client = Awaited<ReturnType<typeof FHIR.oauth2.ready>>;

interface Unavailable {
  unavailable: number;
}
const isUnavailable = (v: unknown): v is Unavailable => typeof v === 'object' && v !== null && 'unavailable' in v;

interface Loaded {
  studies: VbmdStudy[];
  skipped: number;
  risk: RiskSummary | null | 'unavailable';
  patient: PatientSummary | null;
}

interface Timing {
  tokenArrivedMs?: number;
  /** token response -> first FHIR request (fhirclient's ready() bookkeeping) */
  readyToLoadMs?: number;
  /** FHIR searches (Observation, RiskAssessment, Patient in parallel) */
  loadMs?: number;
  renderMs?: number;
  trendPaintedMs?: number;
  tokenToTrendMs?: number;
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

function classify(e: unknown, client: Client | null): { kind: ErrorKind; detail: string; retry: boolean } {
  const err = e as { status?: number; message?: string };
  const message = err?.message ?? String(e);
  const status = typeof err?.status === 'number' ? err.status : undefined;
  // Without a client the failing request was the token exchange, at the authorization server.
  if (status !== undefined && !client) return { kind: 'launch-failed', detail: `HTTP ${status} from the authorization server (token request)`, retry: false };
  if (status === 401) {
    const expiresAt = Number(client?.state.expiresAt ?? 0);
    // fhirclient stores expiresAt in seconds; a 401 after it means the short-lived token ran out.
    if (expiresAt && expiresAt * 1000 <= Date.now() + 1000) return { kind: 'expired', detail: '', retry: false };
    return { kind: 'unauthorized', detail: 'HTTP 401 from the FHIR server', retry: false };
  }
  if (status === 403) return { kind: 'forbidden', detail: 'HTTP 403 from the FHIR server', retry: false };
  const where = client?.state.serverUrl ?? 'the FHIR server';
  if (status !== undefined) return { kind: 'server', detail: `HTTP ${status} from ${where}`, retry: true };
  if (/No 'state' parameter|No state found|No server url/i.test(message)) return { kind: 'no-context', detail: '', retry: false };
  if (/Failed to fetch|NetworkError|network/i.test(message)) return { kind: 'network', detail: message, retry: true };
  return { kind: 'launch-failed', detail: message.split('\n')[0], retry: false };
}

function showError(e: unknown, client: Client | null, retry: () => void): void {
  const c = classify(e, client);
  root().innerHTML = errorView(c.kind, c.detail, c.retry);
  document.getElementById('retry')?.addEventListener('click', retry);
  setState(`error:${c.kind}`);
}

async function load(client: Client, patientId: string, needBanner: boolean): Promise<Loaded> {
  const opts = { pageLimit: 0, flat: true } as const;
  const pid = encodeURIComponent(patientId);
  // `subject=Patient/<id>`: a type-qualified reference search (FHIR R4 search 3.1.1.4.9) that every server
  // understands; the bare-id form is not (the Medplum-based sandbox server among them), and there `patient=`
  // (subject.where(resolve() is Patient)) is 3-4x slower than `subject=`.
  const patientParam = `subject=${encodeURIComponent(`Patient/${patientId}`)}`;
  // The vBMD results are the app; the RiskAssessment and the Patient are extras: an EHR that grants only
  // Observation access (403) or lacks the resource (404) still gets the trend, with that part marked missing.
  const optional = <T,>(p: Promise<T>): Promise<T | Unavailable> =>
    p.catch((e: unknown) => {
      const status = (e as { status?: number })?.status;
      if (status === 403 || status === 404) return { unavailable: status };
      throw e;
    });
  const [obs, risks, patient] = await Promise.all([
    client.request<unknown[]>(`Observation?${patientParam}&code=${encodeURIComponent(VBMD_SUMMARY_CODE_TOKEN)}&_count=200`, opts),
    optional(client.request<unknown[]>(`RiskAssessment?${patientParam}&_count=100`, opts)),
    needBanner ? optional(client.request<unknown>(`Patient/${pid}`)) : Promise.resolve(null),
  ]);
  const parsed = parseVbmdObservations(obs);
  if (parsed.skipped.length) console.warn('vbmd: skipped resources', parsed.skipped);
  return {
    studies: parsed.items,
    skipped: parsed.skipped.length,
    risk: isUnavailable(risks) ? 'unavailable' : latestRisk(risks),
    patient: patient === null ? null : isUnavailable(patient) ? { id: patientId, name: `Patient ${patientId} (details not available)` } : parsePatient(patient),
  };
}


function render(data: Loaded, client: Client, needBanner: boolean): void {
  const banner = needBanner && data.patient ? patientBanner(data.patient) : '';
  if (data.studies.length === 0) {
    root().innerHTML = `${banner}<header class="app-head"><h1>Bone density from CT (vBMD)</h1></header>${noDataView()}`;
    setState('no-data');
    return;
  }
  const trend = buildTrend(data.studies);
  const rate = rateOfChange(trend.summary);
  const latest = latestStudy(data.studies);
  const contextRefs = contextReferences(client.state.tokenResponse);
  const contextStudy = studyForContext(data.studies, contextRefs);
  const contextRef = contextRefs[0];
  const focus = contextStudy ?? latest;
  const shown = new Set<string>();

  root().innerHTML = `${banner}
<header class="app-head"><h1>Bone density from CT (vBMD)</h1><button type="button" id="reload" class="secondary">Reload data</button>${
    contextRef && !contextStudy ? `<p class="muted small" data-testid="context-missing">No result yet for ${contextRef.replace(/^ImagingStudy\//, 'study ').replace(/^Observation\//, 'result ')}; showing the latest.</p>` : ''
  }${data.skipped ? `<p class="muted small">${data.skipped} record(s) could not be read and are not shown.</p>` : ''}</header>
${alertsView(latest, rate)}
<div class="grid">
<main class="col-main">
<section class="card" aria-labelledby="trend-h"><h2 id="trend-h">Trend</h2>
<div id="chart" data-testid="chart-container"></div>
${trend.summary.some((p) => p.uncalibrated) ? '<p class="small muted" data-testid="uncalibrated-legend">Hollow points: uncalibrated results (nominal calibration, typical error 12–16 mg/cm³).</p>' : ''}
${rateView(rate, trend.summary.length, changeSincePreviousStudy(trend.summary))}
<div id="toggles">${levelToggles(trend, shown)}</div>
${valuesTable(data.studies)}
</section>
</main>
<aside class="col-side" tabindex="0" aria-label="Study details">
${focus ? studyDetails(focus, focus === contextStudy) : ''}
${riskView(data.risk)}
${latestLevelsView(latestByLevel(data.studies))}
</aside>
</div>`;
  drawChart(trend, shown, focus?.observationId);
  document.getElementById('toggles')?.addEventListener('change', (ev) => {
    const input = ev.target as HTMLInputElement;
    if (input.name !== 'level') return;
    if (input.checked) shown.add(input.value);
    else shown.delete(input.value);
    drawChart(trend, shown, focus?.observationId);
  });
  setState('ready');
}

function drawChart(trend: Trend, shown: ReadonlySet<string>, highlight: string | undefined): void {
  const el = document.getElementById('chart');
  if (el) el.innerHTML = renderTrendChart(trend, { width: 780, height: 330, showLevels: shown, highlight });
}

/** When the token response finished arriving, on this page's clock (Resource Timing of the token POST). */
function tokenArrivedMs(): number | undefined {
  const entries = performance.getEntriesByType('resource') as PerformanceResourceTiming[];
  const token = entries.filter((e) => /\/token(\?|$)/.test(new URL(e.name).pathname + new URL(e.name).search)).pop();
  return token?.responseEnd;
}

async function run(): Promise<void> {
  setState('loading');
  root().innerHTML = '<p class="loading" role="status">Loading bone-density results…</p>';
  let client: Client | null = null;
  try {
    client = await FHIR.oauth2.ready();
  } catch (e) {
    showError(e, null, () => window.location.reload());
    return;
  }
  const c = client;
  const patientId = c.patient.id;
  if (!patientId) {
    root().innerHTML = errorView('no-context', 'The EHR granted access without a patient in context.', false);
    setState('error:no-context');
    return;
  }
  const needBanner = Boolean((c.state.tokenResponse as { need_patient_banner?: boolean } | undefined)?.need_patient_banner);
  const arrived = tokenArrivedMs();
  const attempt = async (): Promise<void> => {
    try {
      const t0 = performance.now();
      const data = await load(c, patientId, needBanner);
      const t1 = performance.now();
      render(data, c, needBanner);
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
      showError(e, c, () => void attempt());
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
