import { VbmdError } from '../../util/errors.js';
import { log } from '../../util/log.js';
import { parseContentType } from './content-type.js';
import { dicomJsonArraySchema, str, type DicomJsonDataset } from './dicom-json.js';
import { DicomWebError } from './errors.js';
import { readBody, type DicomWebHttp, type RequestSpec } from './http.js';

/**
 * The QIDO-RS plumbing of DicomWebClient: one search fetched page by page, DICOM JSON bodies checked with
 * zod, and the validation of UIDs and exact-match values before they go into a URL.
 */

export const ACCEPT_DICOM_JSON = 'application/dicom+json, application/json;q=0.9';
/** QIDO bodies are metadata only; anything bigger is a broken server. */
export const MAX_JSON_BYTES = 64 * 1024 * 1024;
const UID_RE = /^[0-9]+(\.[0-9]+)*$/;
const QIDO_PAGE = 500;
const MAX_QIDO_RESULTS = 100_000;

/**
 * A QIDO-RS search at `path`: one page when `page.limit` is given, else every page (rows deduplicated by
 * `keyTag`, so a server that ignores `offset` stops the paging instead of looping).
 */
export async function qidoSearch(
  web: DicomWebHttp,
  path: string,
  params: Record<string, string>,
  include: string[],
  page: { limit?: number; offset?: number },
  what: Pick<RequestSpec, 'operation' | 'studyInstanceUid' | 'seriesInstanceUid' | 'signal'>,
  keyTag: string,
): Promise<DicomJsonDataset[]> {
  const fetchPage = async (limit: number | undefined, offset: number | undefined): Promise<DicomJsonDataset[]> => {
    const spec: RequestSpec = {
      path,
      query: { ...params, includefield: include, limit, offset: offset || undefined },
      accept: ACCEPT_DICOM_JSON,
      ...what,
    };
    return web.request(spec, async (res) => {
      if (res.status === 204) {
        res.body.resume();
        return [];
      }
      return parseDicomJson(web.server, spec, res.headers['content-type'], await readBody(res.body, MAX_JSON_BYTES));
    });
  };
  if (page.limit !== undefined) return fetchPage(page.limit, page.offset);
  // Every page: stop on a short page; guard against servers that ignore `offset` (same rows again).
  const all: DicomJsonDataset[] = [];
  const seen = new Set<string>();
  let offset = page.offset ?? 0;
  for (;;) {
    const rows = await fetchPage(QIDO_PAGE, offset);
    let fresh = 0;
    for (const r of rows) {
      const key = str(r, keyTag) ?? JSON.stringify(r);
      if (seen.has(key)) continue;
      seen.add(key);
      all.push(r);
      fresh++;
    }
    if (rows.length < QIDO_PAGE) break;
    if (fresh === 0) {
      log.warn({ server: web.server, operation: what.operation }, 'DICOMweb server ignored the QIDO offset; stopping paging');
      break;
    }
    if (all.length >= MAX_QIDO_RESULTS) {
      throw new DicomWebError('remote', `The ${what.operation} on DICOMweb server ${web.server} matched more than ${MAX_QIDO_RESULTS} results; narrow the search.`, { server: web.server });
    }
    offset += rows.length;
  }
  return all;
}

/** A JSON body as DICOM JSON (PS3.18 Annex F); an empty body is no rows. */
export function parseDicomJson(server: string, spec: RequestSpec, contentType: string | undefined, body: Buffer): DicomJsonDataset[] {
  if (body.length === 0) return [];
  const ct = parseContentType(contentType);
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch {
    throw new DicomWebError('remote', `DICOMweb server ${server} answered the ${spec.operation} with ${ct.mediaType || 'an unknown content type'} that is not JSON; check that the base URL is the DICOMweb root.`, {
      server, studyInstanceUid: spec.studyInstanceUid, seriesInstanceUid: spec.seriesInstanceUid,
    });
  }
  const parsed = dicomJsonArraySchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new DicomWebError('remote', `DICOMweb server ${server} answered the ${spec.operation} with JSON that is not DICOM JSON (PS3.18 Annex F) at ${issue.path.join('.') || 'top level'}: ${issue.message}.`, {
      server, studyInstanceUid: spec.studyInstanceUid, seriesInstanceUid: spec.seriesInstanceUid,
    });
  }
  return parsed.data;
}

/** A DICOM UID fit for a URL path segment, trimmed. */
export function checkedUid(kind: string, uid: string): string {
  const u = uid.trim();
  if (!UID_RE.test(u) || u.length > 64) {
    throw new VbmdError('bad-input', `"${uid}" is not a valid DICOM ${kind} UID (digits and dots, at most 64 characters).`);
  }
  return u;
}

/** An exact-match QIDO value: wildcards and multi-value separators would widen the match silently. */
export function exactValue(what: string, value: string): string {
  const v = value.trim();
  if (v === '' || /[*?\\]/.test(v) || v.length > 64) {
    throw new VbmdError('bad-input', `The ${what} "${value}" cannot be searched exactly (empty, too long, or contains * ? or \\).`);
  }
  return v;
}
