import { describe, expect, it } from 'vitest';
import { chooseDiscChain, localSpacingMm } from '../../src/bmd/spine/disc-chain.js';
import { discComplexScore, refineDiscCentre, whiteTopHat } from '../../src/bmd/spine/disc-profile.js';
import { rejectDepthOutliers } from '../../src/bmd/spine/find-spine.js';
import { labelLevels, type LevelEvidence } from '../../src/bmd/spine/labels.js';
import { assignRibsToSegments } from '../../src/bmd/spine/rib-assignment.js';
import type { RibTrace } from '../../src/bmd/spine/ribs.js';
import { segmentsFromDiscChain } from '../../src/bmd/spine/segments.js';

/**
 * A 1 mm profile along a column of levels `spacing` mm apart: cancellous bone at `interiorHu`, a disc of
 * `discMm` at `discHu` between two 2 mm endplates at `plateHu`. Discs at `first`, `first + spacing`, ...
 */
function columnProfile(n: number, first: number, spacing: number, o: { interiorHu: number; discHu: number; plateHu: number; discMm: number }): Float32Array {
  const p = new Float32Array(n).fill(o.interiorHu);
  for (let d = first; d < n; d += spacing) {
    const h = o.discMm / 2;
    for (let s = Math.round(d - h - 2); s <= Math.round(d + h + 2); s++) {
      if (s < 0 || s >= n) continue;
      p[s] = Math.abs(s - d) <= h ? o.discHu : o.plateHu;
    }
  }
  return p;
}

const discsOf = (p: Float32Array, spacing: number): number[] => {
  const t = whiteTopHat(p, new Float32Array(p.length).fill(0.6 * spacing));
  const score = discComplexScore(t, new Float32Array(p.length).fill(0.25 * spacing));
  const chain = chooseDiscChain(score, { spacingMm: new Float32Array(p.length).fill(spacing), stepMm: 1 });
  return chain.map((c) => refineDiscCentre(p, t, c, 0.3 * spacing));
};

describe('disc finding on the straightened profile', () => {
  it('finds every disc whether it reads darker or brighter than the bodies (thick lumbar disc, thin merged thoracic one, osteoporotic bone)', () => {
    // Lumbar, dense bone: dark 10 mm disc between bright endplates.
    expect(discsOf(columnProfile(200, 20, 36, { interiorHu: 160, discHu: 80, plateHu: 260, discMm: 10 }), 36)).toEqual([20, 56, 92, 128, 164]);
    // Thoracic at 2 mm slices: a 3 mm disc is not resolved, the complex is one bright band.
    expect(discsOf(columnProfile(200, 15, 22, { interiorHu: 150, discHu: 200, plateHu: 230, discMm: 2 }), 22)).toEqual([15, 37, 59, 81, 103, 125, 147, 169, 191]);
    // Osteoporotic: cancellous bone darker than the disc.
    expect(discsOf(columnProfile(200, 20, 30, { interiorHu: 50, discHu: 90, plateHu: 200, discMm: 8 }), 30)).toEqual([20, 50, 80, 110, 140, 170]);
  });

  it('keeps a disc on its own complex, not on a short body between two complexes (C7 between C6-C7 and C7-T1)', () => {
    const p = new Float32Array(160).fill(140);
    for (const s of [97, 98, 99, 101, 102, 103]) p[s] = 320; // C7-T1: endplates either side of a thin disc
    p[100] = 250;
    for (let s = 113; s <= 117; s++) p[s] = 300; // C6-C7, merged into one band; C7's body (104-112) between
    const t = p.map((v) => Math.max(0, v - 140));
    expect(refineDiscCentre(p, t, 103, 6)).toBe(100);
  });

  it('reads the vertebral spacing off the profile, and not a multiple of it where the body depth bounds the lag', () => {
    const p = columnProfile(300, 10, 24, { interiorHu: 150, discHu: 90, plateHu: 250, discMm: 5 });
    // Every other disc faint: the two-level period correlates too.
    for (let d = 34; d < 300; d += 48) for (let s = d - 5; s <= d + 5; s++) if (s < 300) p[s] = 0.5 * (p[s] + 150);
    const free = localSpacingMm(p, 1);
    const bounded = localSpacingMm(p, 1, new Float32Array(300).fill(26));
    expect(Math.abs(bounded[150] - 24)).toBeLessThanOrEqual(1);
    expect(free[150]).toBeGreaterThan(0);
  });

  it('keeps one regular chain across a hidden disc and splits the long gap, flagging the boundary as inferred', () => {
    const score = new Float32Array(200);
    for (const d of [20, 45, 70, 120, 145, 170]) score[d] = 100; // 95 is hidden (cement, fused level)
    const chain = chooseDiscChain(score, { spacingMm: new Float32Array(200).fill(25), stepMm: 1 });
    expect(chain).toEqual([20, 45, 70, 120, 145, 170]);
    const segs = segmentsFromDiscChain(chain, 0, 199, () => 25, score, 1);
    const inner = segs.filter((s) => s.caudalDisc && s.cranialDisc);
    expect(inner.map((s) => [s.sFrom, s.sTo])).toEqual([[20, 45], [45, 70], [70, 95], [95, 120], [120, 145], [145, 170]]);
    expect(inner.filter((s) => s.cranialInferred || s.caudalInferred).length).toBe(2);
    // The open ends are pieces without a disc on their far side.
    expect(segs[0]).toMatchObject({ sFrom: 0, sTo: 20, caudalDisc: false, cranialDisc: true });
  });

  it('rejects a run of body depths far off the smooth trend along the column (contrast aorta read as cortex)', () => {
    const d = new Float32Array(80).fill(NaN);
    for (let z = 0; z < 80; z++) d[z] = 8 - z * 0.03 + (z % 3) * 0.2;
    for (let z = 40; z < 58; z++) d[z] = 14;
    rejectDepthOutliers(d, 0, 79);
    for (let z = 40; z < 58; z++) expect(d[z], `z ${z}`).toBeNaN();
    expect([...d].filter(Number.isFinite).length).toBe(80 - 18);
  });
});

/** Levels caudal first; `ribs[k]` says which sides bear a rib. */
function evidence(ribs: ('' | 'L' | 'R' | 'LR')[], o: { sacrumBelow?: boolean; inferredAt?: number; longAt?: number; topPartial?: boolean } = {}): LevelEvidence[] {
  const ev: LevelEvidence[] = ribs.map((r, k) => ({
    ribLeft: r.includes('L'),
    ribRight: r.includes('R'),
    bandLeft: true,
    bandRight: true,
    whole: true,
    caudalInferred: false,
    cranialInferred: o.inferredAt === k,
    sacral: false,
    stub: false,
    lengthOverTrend: o.longAt === k ? 1.4 : 1,
  }));
  if (o.sacrumBelow) ev.unshift({ ...ev[0], ribLeft: false, ribRight: false, sacral: true });
  // The cranial-most piece cut by the scan's top edge, under a whole level in view.
  if (o.topPartial) ev[ev.length - 1] = { ...ev[ev.length - 1], whole: false, partial: true };
  return ev;
}

describe('naming levels from the anchors in view', () => {
  it('counts from the last rib and the sacrum, and is sure when both agree', () => {
    // L5 L4 L3 L2 L1 T12 T11 above the sacrum.
    const r = labelLevels(evidence(['', '', '', '', '', 'LR', 'LR'], { sacrumBelow: true }));
    expect(r.names).toEqual([null, 'L5', 'L4', 'L3', 'L2', 'L1', 'T12', 'T11']);
    expect(Math.min(...r.confidence.slice(1))).toBeGreaterThanOrEqual(0.95);
  });

  it('counts down from the first rib on a chest CT (C7 rib-less above T1)', () => {
    // Caudal first: T6 ... T1, C7.
    const r = labelLevels(evidence(['LR', 'LR', 'R', 'LR', 'L', 'LR', '']));
    expect(r.names).toEqual(['T6', 'T5', 'T4', 'T3', 'T2', 'T1', 'C7']);
    expect(r.anchors.t1).toBe(5);
    expect(Math.min(...r.confidence)).toBeGreaterThanOrEqual(0.85);
  });

  it('weakens a rib count that leaves two or more of the levels it names T2-T10 without ribs in view (hard phantom 22007)', () => {
    // Caudal first: four rib-less whole levels under two rib pairs under a rib-less piece, as on an abdomen CT
    // whose track left the spine at the top. Counted from the top pair they would be T2-T5 without ribs: that
    // count is weak, and the last-rib count it disagrees with names them.
    const wrong = labelLevels(evidence(['', '', '', '', 'LR', 'LR', '']));
    expect(wrong.warnings.join(' ')).toMatch(/4 levels that the T1 count names T2-T10 show no rib/);
    expect(wrong.names).toEqual(['L4', 'L3', 'L2', 'L1', 'T12', 'T11', 'T10']);
    expect(Math.max(...wrong.confidence)).toBeLessThan(0.8);
    // One missed rib (the scapula over T3) leaves the first-rib count as it was.
    const oneMissed = labelLevels(evidence(['LR', 'LR', 'LR', '', 'LR', 'LR', '']));
    expect(oneMissed.names).toEqual(['T6', 'T5', 'T4', 'T3', 'T2', 'T1', 'C7']);
    expect(Math.min(...oneMissed.confidence)).toBeGreaterThanOrEqual(0.85);
    // Two missed (T4 and T2): the same names, no longer sure.
    const twoMissed = evidence(['LR', '', 'LR', '', 'LR', 'LR', '']);
    const weak = labelLevels(twoMissed);
    expect(weak.names).toEqual(['T6', 'T5', 'T4', 'T3', 'T2', 'T1', 'C7']);
    expect(Math.max(...weak.confidence)).toBeLessThan(0.8);
    // Unless their rib band is out of view on a side: then they do not count as rib-less.
    const hidden = twoMissed.map((e, k) => (k === 1 || k === 3 ? { ...e, bandLeft: false } : e));
    expect(Math.min(...labelLevels(hidden).confidence)).toBeGreaterThanOrEqual(0.85);
  });

  it('does not take a rib-less level with lung beside it for C7 (the ribs at the top of a mid-chest crop missed)', () => {
    // The same chest CT, but the top piece has lung beside it: a thoracic level whose ribs were not traced.
    const ev = evidence(['LR', 'LR', 'R', 'LR', 'L', 'LR', '']).map((e, k) => ({ ...e, lungBeside: k < 6 }));
    expect(labelLevels(ev).anchors.t1).toBe(5);
    const lung = ev.map((e) => ({ ...e, lungBeside: true }));
    const r = labelLevels(lung);
    expect(r.anchors.t1).toBeNull();
    expect(r.warnings.join(' ')).toMatch(/lung beside it, so it is not C7/);
    expect(Math.max(...r.confidence)).toBeLessThan(0.5);
  });

  it('keeps a count from the last rib alone under 0.8: 11 or 13 rib pairs move it', () => {
    const r = labelLevels(evidence(['', '', '', 'LR', 'LR', 'LR']));
    expect(r.names).toEqual(['L3', 'L2', 'L1', 'T12', 'T11', 'T10']);
    expect(Math.max(...r.confidence)).toBeLessThan(0.8);
    expect(Math.min(...r.confidence)).toBeGreaterThan(0.5);
  });

  it('says so when the anchors disagree (13 rib pairs or a transitional vertebra), and no level is then sure', () => {
    // A rib on L1 as well: the last-rib count and the sacrum differ by one.
    const r = labelLevels(evidence(['', '', '', '', 'LR', 'LR', 'LR'], { sacrumBelow: true }));
    expect(r.warnings.join(' ')).toMatch(/disagree/);
    expect(Math.max(...r.confidence)).toBeLessThan(0.5);
  });

  it('names nothing with confidence when no anchor is in view (mid-thoracic crop)', () => {
    const r = labelLevels(evidence(['LR', 'LR', 'LR', 'LR', 'LR']));
    expect(Math.max(...r.confidence)).toBeLessThan(0.5);
    expect(r.warnings.join(' ')).toMatch(/No anatomical anchor/);
  });

  it('still reports every body when no anchor is in view, as unknown levels (placeholder names at low confidence)', () => {
    // A rib-bearing level high up with six rib-less levels below it, none a sure anchor (their rib band is cut off).
    const ev = evidence(['', '', '', '', '', '', 'R', 'LR', 'LR']).map((e, k) => (k < 7 ? { ...e, bandLeft: false, bandRight: false } : e));
    const r = labelLevels(ev);
    expect(r.warnings.join(' ')).toMatch(/No anatomical anchor/);
    expect(r.names.every((n) => n !== null)).toBe(true);
    expect(r.names[0]).toBe('L5');
    expect(Math.max(...r.confidence)).toBeLessThan(0.5);
  });

  it('does not trust a first rib below a rib-less piece that the scan cuts short (it may be T1 with its rib out of view)', () => {
    // Caudal first: T6 ... T1, then a short piece at the top edge: C7, or T1 cut above its first rib.
    const cut = labelLevels(evidence(['LR', 'LR', 'LR', 'LR', 'LR', 'LR', ''], { topPartial: true }));
    expect(cut.names.slice(0, 6)).toEqual(['T6', 'T5', 'T4', 'T3', 'T2', 'T1']);
    expect(Math.max(...cut.confidence)).toBeLessThan(0.8);
    expect(cut.warnings.join(' ')).toMatch(/cut by the edge of the scan/);
    // A mere stub of it at the edge: the same weak count (it used to refuse the anchor, leaving every name at 0.2).
    const stubEv = evidence(['LR', 'LR', 'LR', 'LR', 'LR', 'LR', '']);
    stubEv[6] = { ...stubEv[6], whole: false, stub: true };
    const stub = labelLevels(stubEv);
    expect(stub.names.slice(0, 6)).toEqual(['T6', 'T5', 'T4', 'T3', 'T2', 'T1']);
    expect(stub.anchors.t1).toBe(5);
    // Alone, it is a guess (a scan that starts lower in the chest looks the same): under 0.5, so no value rests on it.
    expect(Math.max(...stub.confidence)).toBeLessThan(0.5);
    expect(Math.min(...stub.confidence.slice(0, 6))).toBeGreaterThan(0.4);
    // The same when the stub's rib band is out of view, or a rib was given to the stub (T1's first rib traced
    // high, or a clavicle): a stub bears no rib of its own (hard phantom 21010).
    const hidden = labelLevels(stubEv.map((e, k) => (k === 6 ? { ...e, bandLeft: false, bandRight: false, ribLeft: true, ribRight: true } : e)));
    expect(hidden.anchors.t1).toBe(5);
    expect(hidden.names.slice(0, 6)).toEqual(['T6', 'T5', 'T4', 'T3', 'T2', 'T1']);
    expect(Math.max(...hidden.confidence)).toBeLessThan(0.5);
    // A "rib" on the column's lowest level, rib-less levels above: bone beside the sacrum, not a first rib.
    const low = labelLevels(evidence(['R', '', '', '', '', '', '']));
    expect(low.anchors.t1).toBeNull();
    expect(Math.max(...low.confidence)).toBeLessThan(0.5);
    // A whole level above with its band out of view may be T1 itself: no count at all.
    const whole = evidence(['LR', 'LR', 'LR', 'LR', 'LR', 'LR', '']);
    whole[6] = { ...whole[6], bandLeft: false, bandRight: false };
    expect(labelLevels(whole).anchors.t1).toBeNull();
    // The last rib disagrees by a level (T11 ... L1 below): the firm last-rib count wins over the weak first-rib one.
    const both = labelLevels(evidence(['', '', 'LR', 'LR', 'LR', 'LR', 'LR', 'LR', 'LR', 'LR', 'LR', 'LR', 'LR', ''], { topPartial: true }));
    expect(both.names.slice(0, 3)).toEqual(['L2', 'L1', 'T12']);
    expect(both.names[12]).toBe('T2');
  });

  it('counts a short first rib, seen near the spine only, as the rib of the level above the lateral band\'s ribs', () => {
    // Caudal first: T6 ... T2 with ribs in the lateral band, T1 whose first rib curves forward before it, C7.
    const ev = evidence(['LR', 'LR', 'LR', 'LR', 'LR', '', '']);
    const before = labelLevels(ev);
    // Without the short rib, T2 is counted as T1.
    expect(before.anchors.t1).toBe(4);
    expect(before.names[4]).toBe('T1');
    ev[5] = { ...ev[5], shortRibLeft: true, shortRibRight: true };
    const r = labelLevels(ev);
    expect(r.names).toEqual(['T6', 'T5', 'T4', 'T3', 'T2', 'T1', 'C7']);
    expect(r.anchors.t1).toBe(5);
    // On one side only, with both lateral bands in view: not enough (a long transverse process, a cervical rib).
    const oneSide = evidence(['LR', 'LR', 'LR', 'LR', 'LR', '', '']);
    oneSide[5] = { ...oneSide[5], shortRibLeft: true };
    expect(labelLevels(oneSide).anchors.t1).toBe(4);
    // A short rib further up, past a rib-less level, is not a first rib.
    const far = evidence(['LR', 'LR', 'LR', 'LR', 'LR', '', '']);
    far[6] = { ...far[6], shortRibLeft: true, shortRibRight: true };
    expect(labelLevels(far).anchors.t1).toBe(4);
    // Short ribs on two levels in a row (one lateral band cut by the field, T2's rib missing the other): both
    // bear ribs, and the count starts at the upper one (the Philips chest CT in a field right of the spine).
    const two = evidence(['LR', 'LR', 'LR', 'LR', '', '', '']).map((e, k) => (k === 4 || k === 5 ? { ...e, shortRibLeft: true, shortRibRight: true } : e));
    expect(labelLevels(two).names).toEqual(['T6', 'T5', 'T4', 'T3', 'T2', 'T1', 'C7']);
  });

  it('counts a level whose rib necks alone were seen as rib-bearing between rib pairs (hard phantom 22036)', () => {
    // Caudal first: T8 ... T4 with ribs in the lateral band, T3 and T2 whose ribs the band missed (thick slices, the
    // scapulae), T1 with its pair, C7. Without the necks, T1's pair stands apart from the thorax below it and is no
    // anchor (a clavicle-like lone "rib"): nothing is named.
    const ev = evidence(['LR', 'LR', 'LR', 'LR', 'LR', '', '', 'LR', '']);
    expect(labelLevels(ev).anchors.t1).toBeNull();
    ev[6] = { ...ev[6], shortRibLeft: true, shortRibRight: true };
    ev[5] = { ...ev[5], shortRibRight: true };
    const r = labelLevels(ev);
    expect(r.anchors.t1).toBe(7);
    expect(r.names).toEqual(['T8', 'T7', 'T6', 'T5', 'T4', 'T3', 'T2', 'T1', 'C7']);
    // A neck on one side only, with both bands in view, does not count (a long transverse process).
    const oneSide = evidence(['LR', 'LR', 'LR', 'LR', 'LR', '', '', 'LR', '']);
    oneSide[6] = { ...oneSide[6], shortRibLeft: true };
    oneSide[5] = { ...oneSide[5], shortRibRight: true };
    expect(labelLevels(oneSide).anchors.t1).toBeNull();
    // Nor do necks under a one-sided "rib" below (a kidney under contrast beside a lumbar transverse process):
    // the thorax's run, and the last rib, stay where the pairs are.
    const kidney = evidence(['', 'L', '', 'LR', 'LR', 'LR', 'LR', 'LR']);
    kidney[2] = { ...kidney[2], shortRibLeft: true, shortRibRight: true };
    expect(labelLevels(kidney).anchors.t12).toBe(3);
  });

  it('counts short twelfth ribs, seen near the spine only, right under the lowest rib pair (hard phantom 22000)', () => {
    // Caudal first: L5 ... L1, T12 whose short ribs end before the lateral band, T11 ... T9 with their pairs.
    const ev = evidence(['', '', '', '', '', '', 'LR', 'LR', 'LR']);
    // Without the short ribs T11 is taken for T12, and every name is a level off.
    expect(labelLevels(ev).anchors.t12).toBe(6);
    ev[5] = { ...ev[5], shortRibLeft: true, shortRibRight: true };
    const r = labelLevels(ev);
    expect(r.anchors.t12).toBe(5);
    expect(r.names).toEqual(['L5', 'L4', 'L3', 'L2', 'L1', 'T12', 'T11', 'T10', 'T9']);
    expect(r.warnings.join(' ')).toMatch(/lowest ribs are short/);
    // A neck on one side only, with both bands in view, is not a rib (a long transverse process).
    const oneSide = evidence(['', '', '', '', '', '', 'LR', 'LR', 'LR']);
    oneSide[5] = { ...oneSide[5], shortRibLeft: true };
    expect(labelLevels(oneSide).anchors.t12).toBe(6);
    // Nor under a one-sided rib only (the lowest pair split over two levels is a rule of its own).
    const splitPair = evidence(['', '', '', '', '', '', 'L', 'LR', 'LR']);
    splitPair[5] = { ...splitPair[5], shortRibLeft: true, shortRibRight: true };
    expect(labelLevels(splitPair).anchors.t12).toBe(6);
  });

  it('lets a field that cuts the rib band\'s back still show C7 rib-less where it shows the band as deep as beside T1\'s ribs', () => {
    // Caudal first: T4 ... T1, C7 in a field centred on the heart that cuts the back of every level's band; T1's
    // ribs were traced all the same, 41 mm behind the body (hard phantom 20056).
    const cutBand = (depthMm: number[]): LevelEvidence[] =>
      evidence(['', '', '', 'LR', '']).map((e, k) => ({ ...e, bandLeft: false, bandRight: false, bandDepthLeftMm: depthMm[k], bandDepthRightMm: depthMm[k] }));
    const shallowAbove = labelLevels(cutBand([30, 33, 37, 41, 35]));
    expect(shallowAbove.anchors.t1).toBeNull();
    const r = labelLevels(cutBand([30, 33, 37, 41, 44]));
    expect(r.anchors.t1).toBe(3);
    expect(r.names).toEqual(['T4', 'T3', 'T2', 'T1', 'C7']);
    // Without a traced rib at the level below, the depth says nothing.
    const noRib = cutBand([30, 33, 37, 41, 44]).map((e) => ({ ...e, ribLeft: false, ribRight: false }));
    expect(labelLevels(noRib).anchors.t1).toBeNull();
  });

  it('keeps the first-rib count weak where only one side of the level above it is in the field of view', () => {
    // Caudal first: T6 ... T1 with ribs on the side in view, C7 above. The field cuts the left band all the way up,
    // so each first rib had one side to be seen on: a missed one names T2 "T1" (AMOS 0336 in a 200 mm field 80 mm
    // left of the spine, every name one level off at 0.86-0.90).
    const oneSided = (ribs: ('' | 'R')[]): LevelEvidence[] => evidence(ribs).map((e) => ({ ...e, bandLeft: false }));
    const r = labelLevels(oneSided(['R', 'R', 'R', 'R', 'R', 'R', '']));
    expect(r.names).toEqual(['T6', 'T5', 'T4', 'T3', 'T2', 'T1', 'C7']);
    expect(Math.max(...r.confidence)).toBeLessThan(0.8);
    expect(r.warnings.join(' ')).toMatch(/Only one side of the level above the first rib-bearing one/);
    // Both sides in view, as the same ribs with both bands: the count stands.
    expect(Math.min(...labelLevels(evidence(['R', 'R', 'R', 'R', 'R', 'R', ''])).confidence)).toBeGreaterThanOrEqual(0.85);
    // One band short at the "C7" alone (the scan's top edge, not the field's side): the count stands too.
    const topOnly = evidence(['LR', 'LR', 'LR', 'LR', 'LR', 'LR', '']);
    topOnly[6] = { ...topOnly[6], bandRight: false };
    expect(Math.min(...labelLevels(topOnly).confidence)).toBeGreaterThanOrEqual(0.85);
  });

  it('sets aside a count that would leave whole bodies below L5 unreported, and names every body', () => {
    // Caudal first: nine rib-less whole levels under three rib-bearing ones. Read as the last rib pair, the lowest
    // "T12" puts L5 on the fifth level and four whole bodies below it, which no spine has.
    const r = labelLevels(evidence(['', '', '', '', '', '', '', '', '', 'LR', 'LR', 'LR']));
    expect(r.warnings.join(' ')).toMatch(/T12 count would put 4 whole bodies outside C1-L5/);
    expect(r.names.every((n) => n !== null)).toBe(true);
    expect(Math.max(...r.confidence)).toBeLessThan(0.8);
    // Two whole pieces below L5 (a sixth lumbar and a split body) still fit: the count stands.
    const six = labelLevels(evidence(['', '', '', '', '', '', '', 'LR', 'LR']));
    expect(six.anchors.t12).toBe(7);
    expect(six.names[7]).toBe('T12');
  });

  it('keeps the last-rib count weak when the level below it ends where a twelfth rib would cross out of view', () => {
    // Caudal first: a rib-less level at the scan's bottom edge, then rib-bearing levels up to T1, and C7 cut
    // by the top edge (a weak first-rib count): the last-rib count (the bottom level as L1) disagrees with
    // the first-rib count (the bottom level as T12).
    const ev = evidence(['', 'LR', 'LR', 'LR', 'LR', 'LR', 'LR', 'LR', 'LR', 'LR', 'LR', 'LR', ''], { topPartial: true });
    const firm = labelLevels(ev);
    expect(firm.names[0]).toBe('L1'); // the firm last rib outweighs the weak first rib
    ev[0] = { ...ev[0], ribDescentInView: false };
    const r = labelLevels(ev);
    expect(r.warnings.join(' ')).toMatch(/twelfth rib would cross the rib band out of view/);
    expect(r.names[0]).toBe('T12');
    expect(r.names[11]).toBe('T1');
    expect(Math.max(...r.confidence)).toBeLessThan(0.8);
    // Four levels apart, the cut-top count is the one to doubt: the scan started lower in the chest, where the
    // last-rib count's own edge error is one level (default phantom 1018, T4-L1): it is set aside.
    const far = evidence(['', 'LR', 'LR', 'LR', 'LR', 'LR', 'LR', 'LR', 'LR', ''], { topPartial: true });
    far[0] = { ...far[0], ribDescentInView: false };
    const f = labelLevels(far);
    expect(f.names.slice(0, 9)).toEqual(['L1', 'T12', 'T11', 'T10', 'T9', 'T8', 'T7', 'T6', 'T5']);
    expect(f.warnings.join(' ')).toMatch(/4 levels off the T12 count/);
    expect(f.anchors.t12).toBe(1);
    expect(Math.max(...f.confidence)).toBeLessThan(0.8);
  });

  it('is sure when a weak first-rib count and a weak last-rib count agree (their edge errors run in opposite directions)', () => {
    // Caudal first: L1 at the bottom edge (a twelfth rib could cross below it, out of view), T12 ... T1, and a
    // C7 cut by the top edge: each count alone is weak, and they agree.
    const ev = evidence(['', 'LR', 'LR', 'LR', 'LR', 'LR', 'LR', 'LR', 'LR', 'LR', 'LR', 'LR', 'LR', ''], { topPartial: true });
    ev[0] = { ...ev[0], ribDescentInView: false };
    const r = labelLevels(ev);
    expect(r.names.slice(0, 13)).toEqual(['L1', 'T12', 'T11', 'T10', 'T9', 'T8', 'T7', 'T6', 'T5', 'T4', 'T3', 'T2', 'T1']);
    expect(r.anchors.t1).toBe(12);
    expect(r.anchors.t12).toBe(1);
    expect(Math.min(...r.confidence.slice(0, 13))).toBeGreaterThanOrEqual(0.85);
    // A last-rib count weak for another reason (the lowest pair split over two levels) can be off either way:
    // its agreement with the cut-top count is no confirmation (hard phantom 20019, one level off at 0.85).
    const split = evidence(['', 'L', 'R', 'LR', 'LR', 'LR', 'LR', 'LR', 'LR', 'LR', 'LR', 'LR', 'LR', ''], { topPartial: true });
    const s = labelLevels(split);
    expect(s.anchors.t12).toBe(1);
    expect(s.anchors.t1).toBe(12);
    expect(Math.max(...s.confidence)).toBeLessThan(0.8);
  });

  it('sets aside a one-sided "rib" below a rib-less level at the bottom of the thorax (a kidney under contrast)', () => {
    // Caudal first: L3, L2 with a left "rib", L1 rib-less, then T12 ... T9.
    const r = labelLevels(evidence(['', 'L', '', 'LR', 'LR', 'LR', 'LR']));
    expect(r.names).toEqual(['L3', 'L2', 'L1', 'T12', 'T11', 'T10', 'T9']);
    expect(r.anchors.t12).toBe(3);
    expect(r.warnings.join(' ')).toMatch(/not counted as a rib/);
    // On both sides it is a rib (a missed eleventh is the likelier story): kept.
    const pair = labelLevels(evidence(['', 'LR', '', 'LR', 'LR', 'LR', 'LR']));
    expect(pair.anchors.t12).toBe(1);
  });

  it('gives less to a name counted across an inferred boundary', () => {
    const r = labelLevels(evidence(['', '', '', '', '', 'LR', 'LR'], { sacrumBelow: true, inferredAt: 2 }));
    // Caudal first: sacrum, L5 ... L1, T12, T11; the boundary above L3 (index 3) is inferred. Counted from
    // the sacrum (index 1 = L5), L4 and L5 need not cross it; from T12 (index 6) they must.
    expect(r.names.slice(1, 4)).toEqual(['L5', 'L4', 'L3']);
    expect(r.confidence[4]).toBeGreaterThan(0.9);
    const oneAnchor = labelLevels(evidence(['', '', '', '', '', 'LR', 'LR'], { inferredAt: 2 }));
    expect(oneAnchor.confidence[1]).toBeLessThan(0.5);
    expect(oneAnchor.confidence[4]).toBeGreaterThan(oneAnchor.confidence[1]);
  });

  it('counts across an inferred boundary without a discount where each level bears its own rib on one side', () => {
    // Caudal first: L1, T12 ... T8; the boundary between T10 (index 3) and T9 (index 4) is inferred.
    const confirmed = labelLevels(evidence(['', 'LR', 'LR', 'L', 'LR', 'LR'], { inferredAt: 3 }));
    expect(confirmed.names).toEqual(['L1', 'T12', 'T11', 'T10', 'T9', 'T8']);
    expect(confirmed.confidence[4]).toBeCloseTo(confirmed.confidence[3] * 0.995, 2);
    // A left rib below and a right rib above the boundary could be one level's pair, split with its body.
    const crossed = labelLevels(evidence(['', 'LR', 'LR', 'L', 'R', 'LR'], { inferredAt: 3 }));
    expect(crossed.confidence[4]).toBeLessThan(0.6 * confirmed.confidence[3]);
    // A rib-less level next to the pair (in view) breaks the run: one of the ribs may belong to it.
    const gap = labelLevels(evidence(['', 'LR', 'LR', 'L', 'L', '', 'LR'], { inferredAt: 3 }));
    expect(gap.confidence[4]).toBeLessThan(0.6 * confirmed.confidence[3]);
    // A long level may hide a disc: its second rib pair would have gone to a neighbour or been left over.
    const long = labelLevels(evidence(['', 'LR', 'LR', 'L', 'LR', 'LR'], { inferredAt: 3, longAt: 3 }));
    expect(long.confidence[4]).toBeLessThan(0.6 * confirmed.confidence[3]);
    // And a traced rib left over within either of the two says the same.
    const over = evidence(['', 'LR', 'LR', 'L', 'LR', 'LR'], { inferredAt: 3 });
    over[4].unassignedRib = true;
    expect(labelLevels(over).confidence[4]).toBeLessThan(0.6 * confirmed.confidence[3]);
  });

  it('counts across an inferred boundary without a discount where the transverse processes part the two levels', () => {
    // Caudal first: sacrum, L5 ... L1, T12, T11; the boundary between L4 (index 2) and L3 (index 3) is inferred,
    // and the count comes from the last rib (T12, index 6), across it for L4 and L5.
    const parted = evidence(['', '', '', '', '', 'LR', 'LR'], { inferredAt: 2 });
    const discounted = labelLevels(parted);
    parted[2].cranialPartedByProcesses = true;
    const kept = labelLevels(parted);
    expect(kept.names).toEqual(discounted.names);
    expect(discounted.confidence[1]).toBeLessThan(0.6 * discounted.confidence[3]);
    expect(kept.confidence[1]).toBeGreaterThanOrEqual(kept.confidence[3] - 0.02);
    // A long level may hold a second body whose processes were not seen: no confirmation.
    const long = evidence(['', '', '', '', '', 'LR', 'LR'], { inferredAt: 2, longAt: 2 });
    long[2].cranialPartedByProcesses = true;
    expect(labelLevels(long).confidence[1]).toBeLessThan(0.6 * kept.confidence[3]);
  });
});

describe('rib assignment', () => {
  const segs = [0, 1, 2, 3, 4, 5].map((k) => ({ sFrom: 25 * k, sTo: 25 * (k + 1) }));
  const rib = (side: 'left' | 'right', crossingS: number, headS: number): RibTrace => ({ side, crossingS, headS, contrastHu: 500, runsOutOfScan: false });

  it('puts a left and a right rib crossing together on one level, even when one traced end sits on the disc below', () => {
    // Level 2 is [50, 75]; its window runs from 62.5 to 78.75. The left end reads low (55), the right fits.
    const a = assignRibsToSegments([rib('left', 40, 55), rib('right', 42, 66), rib('left', 65, 90), rib('right', 66, 91)], segs);
    expect(a.segmentOf).toEqual([2, 2, 3, 3]);
  });

  it('never gives one level two ribs of one side, even with an unpaired rib of the other side between them', () => {
    // Level 2's window is [62.5, 78.75]: all three ends fit it, but the two right ribs cannot both be its own.
    const a = assignRibsToSegments([rib('right', 50, 64), rib('left', 60, 70), rib('right', 70, 77)], segs);
    expect(a.segmentOf[0]).not.toBe(a.segmentOf[2]);
  });

  it('reports a wide margin when the sequence fits its levels well, a small one when one level up or down fits almost as well', () => {
    const good = assignRibsToSegments([rib('left', 50, 68), rib('right', 50, 69), rib('left', 75, 93), rib('right', 75, 94)], segs);
    expect(good.marginMm).toBeGreaterThan(10);
    // Ends between level 2's window (to 78.75) and level 3's (from 87.5): either fits about as badly.
    const poor = assignRibsToSegments([rib('left', 70, 83), rib('right', 70, 84)], segs);
    expect(poor.marginMm).toBeLessThan(10);
  });
});
