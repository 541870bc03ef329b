import type { BmdCategory } from '../bmd/report.js';
import { categoryForVbmd as categoryOf } from '../bmd/report.js';
import type { Basis, Extracted, SkipReason, TherapyRecord, VbmdScan } from './resources.js';
import type { TherapyClass } from './therapy-value-set.js';
import type { Change } from '../trend/significant-change.js';
import type { TimedVbmd } from '../trend/rate-of-change.js';
import { ScanStore } from './scan-store.js';
import type { Trend } from './trend.js';
import { cohortTrend } from './trend.js';

/**
 * Streaming aggregation keyed by patient. Memory per patient: one small fixed record (latest measured scan,
 * treatment bits) plus five numbers per scan (a hash of the study, issued, effective, value, month) in a
 * chunked typed array (scan-store.ts): about 44 bytes a scan, no Observation kept. The per-scan numbers are what makes "superseded"
 * work as in every other reader (src/fhir/result-reader.ts): a second result of the same study replaces the
 * first when it was issued later, and its counts, trend point and latest value go with it. Resources may
 * arrive in any order and the result does not depend on it: ties on the latest time keep the lower value
 * (the more cautious reading), never whichever came first.
 */

export const CATEGORIES: readonly BmdCategory[] = ['osteoporosis', 'osteopenia', 'normal', 'indeterminate'];

const ACTIVE_ANTIRESORPTIVE = 1;
const ACTIVE_ANABOLIC = 2;
const PAST_THERAPY = 4;
/** Fields per scan in the ScanStore: [studyHash (NaN: no study UID), issuedMs, effectiveMs, vbmd (NaN:
 * indeterminate), monthIndex]. */
const [STUDY, ISSUED, EFFECTIVE, VALUE, MONTH] = [0, 1, 2, 3, 4] as const;

interface LatestDetail {
  ms: number;
  vbmd: number;
  effective: string;
  basis: Basis | null;
  status: string;
  uncalibrated: boolean;
  studyUid: string | null;
  studyHash: number;
  observationId: string | null;
}

interface PatientState {
  /** Index of the patient's newest-added scan in the ScanStore (-1: none) and the number of scans. */
  head: number;
  n: number;
  latest: LatestDetail | null;
  therapyBits: number;
  activeTherapy: string | null;
}

/** 52-bit FNV-1a-style hash of a study UID (two 26-bit halves), exact in a double; NaN for no UID, so scans
 * without a study never merge. */
export function studyHash(uid: string | null): number {
  if (!uid) return Number.NaN;
  let a = 0x811c9dc5;
  let b = 0x01000193;
  for (let i = 0; i < uid.length; i++) {
    const c = uid.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193) >>> 0;
    b = Math.imul(b ^ c, 0x5bd1e995) >>> 0;
  }
  return (a & 0x3ffffff) * 0x4000000 + (b & 0x3ffffff);
}

export type TherapyOnRecord = 'active' | 'past' | 'none';

export interface CohortRow {
  patient: string;
  /** Latest measured scan (one with a value) inside the window; null when every scan was indeterminate. */
  latestEffective: string | null;
  latestVbmdMgCm3: number | null;
  category: BmdCategory;
  basis: Basis | null;
  status: string | null;
  /** The latest value is not traceable to any calibration (nominal default). */
  uncalibrated: boolean | null;
  studyUid: string | null;
  observationId: string | null;
  /** Summary Observations in the window, indeterminate ones included. */
  scans: number;
  measuredScans: number;
  /** The newest scan had no value (dataAbsentReason): the latest value shown is older than the last scan. */
  latestScanIndeterminate: boolean;
  trend: Trend | null;
  /** The first measured scan of the trend's window (trend.ts: the 3 years up to the latest measured scan) against
   * the latest: a decline only beyond the least significant change (src/trend/significant-change.ts). */
  change: Change | null;
  /** 'active': an active bone-targeted MedicationRequest/Statement; 'past': only inactive ones on record. */
  therapy: TherapyOnRecord;
  therapyClasses: TherapyClass[];
  activeTherapy: string | null;
}

export interface MonthCounts {
  month: string;
  scans: number;
  osteoporosis: number;
  osteopenia: number;
  normal: number;
  indeterminate: number;
}

export interface WindowMs {
  sinceMs?: number;
  /** Exclusive upper bound. */
  untilMs?: number;
}

export class CohortAccumulator {
  private readonly patients = new Map<string, PatientState>();
  private readonly months = new Map<string, MonthCounts>();
  private readonly scans = new ScanStore();
  readonly skipped: Record<SkipReason | 'outside-window', number> = {
    invalid: 0,
    'not-vbmd': 0,
    'entered-in-error': 0,
    'not-a-result': 0,
    'no-subject': 0,
    'no-effective-time': 0,
    unit: 0,
    superseded: 0,
    'not-bone-therapy': 0,
    'unresolved-medication-reference': 0,
    'other-resource-type': 0,
    'outside-window': 0,
  };
  resourcesRead = 0;
  scansRead = 0;
  therapyRecordsRead = 0;

  constructor(private readonly window: WindowMs = {}) {}

  get patientCount(): number {
    return this.patients.size;
  }

  add(x: Extracted): void {
    this.resourcesRead++;
    if (x.kind === 'skip') this.skipped[x.reason]++;
    else if (x.kind === 'scan') this.addScan(x.scan);
    else this.addTherapy(x.therapy);
  }

  private state(patient: string): PatientState {
    let s = this.patients.get(patient);
    if (!s) {
      s = { head: -1, n: 0, latest: null, therapyBits: 0, activeTherapy: null };
      this.patients.set(patient, s);
    }
    return s;
  }

  private month(key: string): MonthCounts {
    let m = this.months.get(key);
    if (!m) {
      m = { month: key, scans: 0, osteoporosis: 0, osteopenia: 0, normal: 0, indeterminate: 0 };
      this.months.set(key, m);
    }
    return m;
  }

  private countMonth(monthIndex: number, vbmd: number, delta: 1 | -1): void {
    const y = Math.floor(monthIndex / 12);
    const m = this.month(`${String(y).padStart(4, '0')}-${String((monthIndex % 12) + 1).padStart(2, '0')}`);
    m.scans += delta;
    m[categoryOf(Number.isNaN(vbmd) ? null : vbmd)] += delta;
  }

  addScan(scan: VbmdScan): void {
    const { sinceMs, untilMs } = this.window;
    if ((sinceMs !== undefined && scan.effectiveMs < sinceMs) || (untilMs !== undefined && scan.effectiveMs >= untilMs)) {
      this.skipped['outside-window']++;
      return;
    }
    this.scansRead++;
    const s = this.state(scan.patient);
    const hash = studyHash(scan.studyUid);
    const issued = scan.issuedMs ?? -Infinity;
    const value = scan.vbmdMgCm3 ?? Number.NaN;
    // The month as written in effectiveDateTime (the local date of the scan), as a number.
    const ym = /^(\d{4})-(\d{2})/.exec(scan.effective);
    const monthIndex = ym ? Number(ym[1]) * 12 + Number(ym[2]) - 1 : new Date(scan.effectiveMs).getUTCFullYear() * 12 + new Date(scan.effectiveMs).getUTCMonth();
    const st = this.scans;
    let at = -1;
    if (!Number.isNaN(hash)) for (let i = s.head; i >= 0 && at < 0; i = st.prev(i)) if (st.get(i, STUDY) === hash) at = i;
    const fields = [hash, issued, scan.effectiveMs, value, monthIndex];
    if (at >= 0) {
      const old = st.get(at, VALUE);
      // Same rule as result-reader.ts supersedes(): issued later wins; a tie keeps the lower value.
      const newer = issued > st.get(at, ISSUED) || (issued === st.get(at, ISSUED) && (Number.isNaN(value) ? Infinity : value) < (Number.isNaN(old) ? Infinity : old));
      this.skipped.superseded++;
      if (!newer) return;
      this.countMonth(st.get(at, MONTH), old, -1);
      st.set(at, fields);
    } else {
      s.head = st.append(s.head, fields);
      s.n++;
    }
    this.countMonth(monthIndex, value, 1);
    // A replaced study that held the latest value hands it to its replacement, whatever the values.
    if (s.latest && !Number.isNaN(hash) && s.latest.studyHash === hash) s.latest = null;
    if (scan.vbmdMgCm3 === null) {
      if (s.latest === null) s.latest = this.latestFromPoints(s);
      return;
    }
    const l = s.latest;
    if (!l || scan.effectiveMs > l.ms || (scan.effectiveMs === l.ms && scan.vbmdMgCm3 < l.vbmd)) {
      s.latest = {
        ms: scan.effectiveMs,
        vbmd: scan.vbmdMgCm3,
        effective: scan.effective,
        basis: scan.basis,
        status: scan.status,
        uncalibrated: scan.uncalibrated,
        studyUid: scan.studyUid,
        studyHash: hash,
        observationId: scan.observationId,
      };
    }
  }

  /** After a replacement removed the latest scan's details: the newest remaining measured scan, with the
   * details a plain number can keep (rare: a later-issued result of the latest study without a value). */
  private latestFromPoints(s: PatientState): LatestDetail | null {
    const st = this.scans;
    let best = -1;
    for (let i = s.head; i >= 0; i = st.prev(i)) {
      const v = st.get(i, VALUE);
      if (Number.isNaN(v)) continue;
      const t = st.get(i, EFFECTIVE);
      if (best < 0 || t > st.get(best, EFFECTIVE) || (t === st.get(best, EFFECTIVE) && v < st.get(best, VALUE))) best = i;
    }
    if (best < 0) return null;
    const ms = st.get(best, EFFECTIVE);
    return { ms, vbmd: st.get(best, VALUE), effective: new Date(ms).toISOString(), basis: null, status: 'unknown', uncalibrated: false, studyUid: null, studyHash: st.get(best, STUDY), observationId: null };
  }

  addTherapy(t: TherapyRecord): void {
    this.therapyRecordsRead++;
    const s = this.state(t.patient);
    if (t.active) {
      s.therapyBits |= t.therapy.class === 'anabolic' ? ACTIVE_ANABOLIC : ACTIVE_ANTIRESORPTIVE;
      // Deterministic whatever the order: keep the alphabetically first active ingredient.
      if (s.activeTherapy === null || t.therapy.ingredient < s.activeTherapy) s.activeTherapy = t.therapy.ingredient;
    } else {
      s.therapyBits |= PAST_THERAPY;
    }
  }

  /** Every patient with at least one summary Observation in the window (medication-only patients are not
   * part of a vBMD cohort). */
  *rows(): Generator<CohortRow> {
    for (const [patient, s] of this.patients) {
      if (s.n === 0) continue;
      const classes: TherapyClass[] = [];
      if (s.therapyBits & ACTIVE_ANTIRESORPTIVE) classes.push('antiresorptive');
      if (s.therapyBits & ACTIVE_ANABOLIC) classes.push('anabolic');
      const measured: TimedVbmd[] = [];
      let lastScanMs = -Infinity;
      let lastScanIndeterminate = false;
      for (let i = s.head; i >= 0; i = this.scans.prev(i)) {
        const t = this.scans.get(i, EFFECTIVE);
        const v = this.scans.get(i, VALUE);
        const indeterminate = Number.isNaN(v);
        if (t > lastScanMs || (t === lastScanMs && !indeterminate)) {
          lastScanMs = t;
          lastScanIndeterminate = indeterminate;
        }
        if (!indeterminate) measured.push({ tMs: t, vbmdMgCm3: v });
      }
      const { trend, change } = cohortTrend(measured);
      const l = s.latest;
      yield {
        patient,
        latestEffective: l?.effective ?? null,
        latestVbmdMgCm3: l?.vbmd ?? null,
        category: l ? categoryOf(l.vbmd) : 'indeterminate',
        basis: l?.basis ?? null,
        status: l?.status ?? null,
        uncalibrated: l?.uncalibrated ?? null,
        studyUid: l?.studyUid ?? null,
        observationId: l?.observationId ?? null,
        scans: s.n,
        measuredScans: measured.length,
        latestScanIndeterminate: lastScanIndeterminate,
        trend,
        change,
        therapy: classes.length > 0 ? 'active' : s.therapyBits & PAST_THERAPY ? 'past' : 'none',
        therapyClasses: classes,
        activeTherapy: s.activeTherapy,
      };
    }
  }

  monthCounts(): MonthCounts[] {
    return [...this.months.values()].sort((a, b) => (a.month < b.month ? -1 : a.month > b.month ? 1 : 0));
  }
}
