import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { DicomWebClient } from '../dicom/dicomweb/client.js';
import { readBody } from '../dicom/dicomweb/http.js';
import { VbmdError } from '../util/errors.js';
import type { DicomObject } from './part10.js';

/**
 * STOW-RS (PS3.18 10.5): `POST {base}/studies/{StudyInstanceUID}` with one `application/dicom` part per
 * instance. The response (DICOM JSON) lists what was stored (Referenced SOP Sequence) and what failed with
 * its Failure Reason (Failed SOP Sequence). Network errors and 408/429/5xx are retried by the DICOMweb client
 * with backoff (the request is idempotent: same UIDs, same content); a failed instance is an error naming it.
 */
const sq = z.object({ vr: z.literal('SQ'), Value: z.array(z.record(z.string(), z.unknown())).optional() }).optional();
const stowResponse = z.looseObject({ '00081199': sq, '00081198': sq, '00081196': z.unknown().optional() });

const uidOf = (item: Record<string, unknown>): string | undefined => {
  const a = item['00081155'] as { Value?: unknown[] } | undefined;
  return typeof a?.Value?.[0] === 'string' ? (a.Value[0] as string) : undefined;
};
const reasonOf = (item: Record<string, unknown>): number | undefined => {
  const a = item['00081197'] as { Value?: unknown[] } | undefined;
  return typeof a?.Value?.[0] === 'number' ? (a.Value[0] as number) : undefined;
};

export interface StowOutcome {
  stored: string[];
}

export function multipartBody(objects: readonly DicomObject[]): { body: Buffer; contentType: string } {
  const boundary = `vbmd-${randomUUID()}`;
  const chunks: Buffer[] = [];
  for (const o of objects) {
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Type: application/dicom\r\nContent-Length: ${o.bytes.byteLength}\r\n\r\n`));
    chunks.push(Buffer.from(o.bytes.buffer, o.bytes.byteOffset, o.bytes.byteLength));
    chunks.push(Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), contentType: `multipart/related; type="application/dicom"; boundary=${boundary}` };
}

export async function stowInstances(client: DicomWebClient, studyUid: string, objects: readonly DicomObject[], signal?: AbortSignal): Promise<StowOutcome> {
  if (objects.length === 0) return { stored: [] };
  const { body, contentType } = multipartBody(objects);
  const json = await client.http.request(
    {
      method: 'POST',
      path: `/studies/${encodeURIComponent(studyUid)}`,
      accept: 'application/dicom+json, application/json;q=0.9',
      body,
      contentType,
      operation: 'STOW-RS store',
      studyInstanceUid: studyUid,
      signal,
    },
    async (res) => {
      const text = (await readBody(res.body, 16 * 1024 * 1024)).toString('utf8');
      return text.trim() === '' ? {} : (JSON.parse(text) as unknown);
    },
  );
  const parsed = stowResponse.safeParse(Array.isArray(json) ? json[0] : json);
  if (!parsed.success) throw new VbmdError('remote', `The STOW-RS answer of ${client.server} for study ${studyUid} is not a DICOM JSON store response.`);
  const stored = (parsed.data['00081199']?.Value ?? []).map(uidOf).filter((u): u is string => u !== undefined);
  const failed = (parsed.data['00081198']?.Value ?? []).map((i) => ({ uid: uidOf(i), reason: reasonOf(i) }));
  if (failed.length > 0) {
    const list = failed.map((f) => `${f.uid ?? '?'} (failure reason ${f.reason === undefined ? '?' : `0x${f.reason.toString(16).toUpperCase()}`})`).join(', ');
    throw new VbmdError('remote', `${client.server} refused ${failed.length} of ${objects.length} instance(s) sent by STOW-RS for study ${studyUid}: ${list}.`, { server: client.server, studyInstanceUid: studyUid });
  }
  const missing = objects.filter((o) => !stored.includes(o.sopInstanceUid));
  if (missing.length > 0) {
    throw new VbmdError('remote', `${client.server} did not confirm ${missing.length} instance(s) sent by STOW-RS for study ${studyUid} (${missing.map((m) => m.sopInstanceUid).join(', ')}).`, { server: client.server, studyInstanceUid: studyUid });
  }
  return { stored };
}
