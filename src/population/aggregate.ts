import type { BmdCategory } from '../bmd/report.js';
import { categoryForVbmd as categoryOf } from '../bmd/report.js';
import type { Basis, Extracted, SkipReason, TherapyRecord, VbmdScan } from './resources.js';
import type { TherapyClass } from './therapy-value-set.js';
import type { Trend, TrendState } from './trend.js';
import { addTrendPoint, newTrendState, trendOf } from './trend.js';

/**
 * Streaming aggregation keyed by patient. Memory is one small fixed-size record per patient (latest measured
 * scan, counters, the online trend moments, treatment bits) plus one counter row per calendar month; no
 * Observation is kept. Resources may arrive in any order (Observations before or after medications, scans
 * unsorted), and the result does not depend on that order: ties on the latest time keep the lower value
 * (the more cautious reading), never whichever came first.
 */

export const CATEGORIES: readonly BmdCategory[] = ['osteoporosis', 'osteopenia', 'normal', 'indeterminate'];

const ACTIVE_ANTIRESORPTIVE = 1;
const ACTIVE_ANABOLIC = 2;
const PAST_THERAPY = 4;

interface PatientState {
  scans: number;
  latestMs: number;
  latestEffective: string | null;
  latestVbmd: number | null;
  latestBasis: Basis | null;
  latestStatus: string | null;
  latestStudyUid: string | null;
  latestObservationId: string | null;
  /** Time of the newest scan of any kind, and whether that one was indeterminate. */
  lastScanMs: number;
  lastScanIndeterminate: boolean;
  trend: TrendState;
  therapyBits: number;
  activeTherapy: string | null;
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
  studyUid: string | null;
  observationId: string | null;
  /** Summary Observations in the window, indeterminate ones included. */
  scans: number;
  measuredScans: number;
  /** The newest scan had no value (dataAbsentReason): the latest value shown is older than the last scan. */
  latestScanIndeterminate: boolean;
  trend: Trend | null;
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
  readonly skipped: Record<SkipReason | 'outside-window', number> = {
    invalid: 0,
    'not-vbmd': 0,
    'entered-in-error': 0,
    'not-a-result': 0,
    'no-subject': 0,
    'no-effective-time': 0,
    unit: 0,
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
      s = {
        scans: 0,
        latestMs: -Infinity,
        latestEffective: null,
        latestVbmd: null,
        latestBasis: null,
        latestStatus: null,
        latestStudyUid: null,
        latestObservationId: null,
        lastScanMs: -Infinity,
        lastScanIndeterminate: false,
        trend: newTrendState(),
        therapyBits: 0,
        activeTherapy: null,
      };
      this.patients.set(patient, s);
    }
    return s;
  }

  addScan(scan: VbmdScan): void {
    const { sinceMs, untilMs } = this.window;
    if ((sinceMs !== undefined && scan.effectiveMs < sinceMs) || (untilMs !== undefined && scan.effectiveMs >= untilMs)) {
      this.skipped['outside-window']++;
      return;
    }
    this.scansRead++;
    const s = this.state(scan.patient);
    s.scans++;
    const month = /^\d{4}-\d{2}/.test(scan.effective) ? scan.effective.slice(0, 7) : new Date(scan.effectiveMs).toISOString().slice(0, 7);
    let m = this.months.get(month);
    if (!m) {
      m = { month, scans: 0, osteoporosis: 0, osteopenia: 0, normal: 0, indeterminate: 0 };
      this.months.set(month, m);
    }
    m.scans++;
    m[scan.category]++;

    const indeterminate = scan.vbmdMgCm3 === null;
    if (scan.effectiveMs > s.lastScanMs || (scan.effectiveMs === s.lastScanMs && !indeterminate)) {
      s.lastScanMs = scan.effectiveMs;
      s.lastScanIndeterminate = indeterminate;
    }
    if (scan.vbmdMgCm3 === null) return;
    addTrendPoint(s.trend, scan.effectiveMs, scan.vbmdMgCm3);
    const newer = scan.effectiveMs > s.latestMs || (scan.effectiveMs === s.latestMs && scan.vbmdMgCm3 < (s.latestVbmd ?? Infinity));
    if (newer) {
      s.latestMs = scan.effectiveMs;
      s.latestEffective = scan.effective;
      s.latestVbmd = scan.vbmdMgCm3;
      s.latestBasis = scan.basis;
      s.latestStatus = scan.status;
      s.latestStudyUid = scan.studyUid;
      s.latestObservationId = scan.observationId;
    }
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
      if (s.scans === 0) continue;
      const classes: TherapyClass[] = [];
      if (s.therapyBits & ACTIVE_ANTIRESORPTIVE) classes.push('antiresorptive');
      if (s.therapyBits & ACTIVE_ANABOLIC) classes.push('anabolic');
      yield {
        patient,
        latestEffective: s.latestEffective,
        latestVbmdMgCm3: s.latestVbmd,
        category: s.latestVbmd === null ? 'indeterminate' : categoryOf(s.latestVbmd),
        basis: s.latestBasis,
        status: s.latestStatus,
        studyUid: s.latestStudyUid,
        observationId: s.latestObservationId,
        scans: s.scans,
        measuredScans: s.trend.n,
        latestScanIndeterminate: s.lastScanIndeterminate,
        trend: trendOf(s.trend),
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
