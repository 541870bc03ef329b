import { createHash } from 'node:crypto';
import type { VbmdReport } from '../bmd/report.js';

/**
 * Deterministic DICOM UIDs under the UUID-derived root 2.25 (PS3.5 B.2, ITU-T X.667): a name-based UUID
 * (RFC 9562 version 8, SHA-256 of the name) written as one decimal integer. The same analysis always gets the
 * same UIDs, so re-sending it stores nothing twice; different content never gets a UID used before.
 */
export function uidFromName(...parts: string[]): string {
  const h = createHash('sha256').update(`vbmd-dicom-uid\n${parts.join('\n')}`).digest();
  const b = Buffer.from(h.subarray(0, 16));
  b[6] = (b[6] & 0x0f) | 0x80; // version 8
  b[8] = (b[8] & 0x3f) | 0x80; // RFC 9562 variant
  return `2.25.${BigInt(`0x${b.toString('hex')}`).toString()}`;
}

/** The report without what varies between identical runs (timings): canonical JSON, keys sorted. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    const o = value as Record<string, unknown>;
    return `{${Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

/**
 * Identity of one analysis: the source series, what computed it (software and model with its sha256) and
 * every measured value, calibration and remark. A re-run that measures the same gets the same identity (and
 * UIDs); a new model version, a corrected calibration or any changed number gets a new one.
 */
export function analysisIdentity(report: VbmdReport): string {
  const { timingsMs: _timings, ...content } = report;
  return createHash('sha256').update(canonical(content)).digest('hex');
}

/** UIDs of everything one analysis writes. Series UIDs depend on the producing software too (one series = one equipment). */
export interface OutputUids {
  srSeries: string;
  sr: string;
  segSeries: string;
  seg: string;
  keyImageSeries: string;
  keyImage: string;
  /** Tracking UIDs of the measurement groups are derived per group from this. */
  analysis: string;
}

export function outputUids(report: VbmdReport, sourceSeriesUid: string): OutputUids {
  const id = analysisIdentity(report);
  const producer = `${report.software?.name ?? 'vbmd'}@${report.software?.version ?? '?'}|${report.model ? `${report.model.name}@${report.model.version}` : 'no-model'}`;
  return {
    srSeries: uidFromName('sr-series', sourceSeriesUid, producer, id),
    sr: uidFromName('sr', id),
    segSeries: uidFromName('seg-series', sourceSeriesUid, producer, id),
    seg: uidFromName('seg', id),
    keyImageSeries: uidFromName('key-image-series', sourceSeriesUid, producer, id),
    keyImage: uidFromName('key-image', id),
    analysis: id,
  };
}
