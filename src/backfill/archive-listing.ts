import type { DicomWebClient, StudySummary } from '../dicom/dicomweb/client.js';
import { VbmdError } from '../util/errors.js';

/**
 * The archive's studies in a date range, a page at a time, so a backfill over years never holds the whole
 * list: the range is cut into calendar months (a PACS that caps QIDO results per query, often at 1000, then
 * caps per month, not per range) and each month is paged with QIDO-RS `limit`/`offset` (PS3.18 8.3.4.4).
 * A page that repeats what was seen (a server that ignores `offset`) ends the month instead of looping.
 */
export interface ArchiveQuery {
  /** Inclusive, YYYY-MM-DD. */
  from: string;
  to: string;
  /** ModalitiesInStudy, e.g. CT (default CT). */
  modality?: string;
  pageSize?: number;
}

const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;

export function parseDay(text: string, what: string): Date {
  const m = DATE.exec(text);
  const d = m ? new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]))) : undefined;
  if (!d || d.toISOString().slice(0, 10) !== text) throw new VbmdError('bad-input', `${what} "${text}" is not a date; write YYYY-MM-DD.`);
  return d;
}

const ymd = (d: Date): string => d.toISOString().slice(0, 10).replace(/-/g, '');

/** [first day, last day] of each calendar month touching [from, to], clipped to the range. */
export function monthWindows(from: Date, to: Date): [string, string][] {
  if (from > to) throw new VbmdError('bad-input', `The backfill range ends (${to.toISOString().slice(0, 10)}) before it starts (${from.toISOString().slice(0, 10)}).`);
  const out: [string, string][] = [];
  let start = from;
  while (start <= to) {
    const monthEnd = new Date(Date.UTC(start.getUTCFullYear(), start.getUTCMonth() + 1, 0));
    const end = monthEnd < to ? monthEnd : to;
    out.push([ymd(start), ymd(end)]);
    start = new Date(Date.UTC(end.getUTCFullYear(), end.getUTCMonth(), end.getUTCDate() + 1));
  }
  return out;
}

export async function* listArchive(client: DicomWebClient, q: ArchiveQuery, signal?: AbortSignal): AsyncGenerator<StudySummary[]> {
  const pageSize = q.pageSize ?? 200;
  for (const [from, to] of monthWindows(parseDay(q.from, '--from'), parseDay(q.to, '--to'))) {
    const seen = new Set<string>();
    for (let offset = 0; ; offset += pageSize) {
      const page = await client.findStudies({ studyDateFrom: from, studyDateTo: to, modalitiesInStudy: q.modality ?? 'CT', limit: pageSize, offset }, signal ? { signal } : {});
      const fresh = page.filter((s) => !seen.has(s.studyInstanceUid));
      for (const s of fresh) seen.add(s.studyInstanceUid);
      if (fresh.length > 0) yield fresh;
      if (page.length < pageSize || fresh.length === 0) break;
    }
  }
}
