/**
 * Lenient `Content-Type` parsing for DICOMweb responses (RFC 2045/7231 media types, PS3.18 §8.7).
 *
 * Servers differ in quoting: Orthanc 1.10 answers frame requests with
 * `multipart/related; type="application/octet-stream; transfer-syntax=1.2.840.10008.1.2.1"; boundary=...`,
 * i.e. the transfer syntax inside the quoted `type`. We therefore parse quoted values with escapes, lower-case
 * parameter names, and also lift parameters found inside the `type` value (`typeParams`).
 */
export interface MediaType {
  /** Lower-case `type/subtype`, e.g. `multipart/related`. */
  mediaType: string;
  /** Lower-case parameter names; values unquoted and unescaped, case kept (boundaries are case-sensitive). */
  params: Record<string, string>;
  /** The `type` parameter's own media type (lower-case), e.g. `application/dicom`. */
  type?: string;
  /** Parameters inside the quoted `type` value, e.g. `{ "transfer-syntax": "1.2.840..." }`. */
  typeParams: Record<string, string>;
  /** `params['transfer-syntax']`, or the one inside `type`. */
  transferSyntax?: string;
}

/** Splits `a; b="x;y"; c` on semicolons outside quotes. */
function splitParams(s: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < s.length; i++) {
    const ch = s[i];
    if (quoted) {
      if (ch === '\\' && i + 1 < s.length) {
        cur += ch + s[++i];
        continue;
      }
      if (ch === '"') quoted = false;
      cur += ch;
    } else if (ch === '"') {
      quoted = true;
      cur += ch;
    } else if (ch === ';') {
      out.push(cur);
      cur = '';
    } else {
      cur += ch;
    }
  }
  out.push(cur);
  return out.map((p) => p.trim()).filter((p) => p.length > 0);
}

function unquote(v: string): string {
  const t = v.trim();
  if (t.length >= 2 && t.startsWith('"') && t.endsWith('"')) return t.slice(1, -1).replace(/\\(.)/g, '$1');
  // Unbalanced quote (seen in the wild): drop a lone leading/trailing quote.
  return t.replace(/^"|"$/g, '');
}

function parseSimple(header: string): { mediaType: string; params: Record<string, string> } {
  const parts = splitParams(header);
  const mediaType = (parts.shift() ?? '').toLowerCase();
  const params: Record<string, string> = {};
  for (const p of parts) {
    const eq = p.indexOf('=');
    if (eq <= 0) continue;
    const name = p.slice(0, eq).trim().toLowerCase();
    if (!(name in params)) params[name] = unquote(p.slice(eq + 1));
  }
  return { mediaType, params };
}

export function parseContentType(header: string | undefined | null): MediaType {
  const { mediaType, params } = parseSimple(header ?? '');
  let type: string | undefined;
  let typeParams: Record<string, string> = {};
  if (params.type !== undefined) {
    const inner = parseSimple(params.type);
    type = inner.mediaType || undefined;
    typeParams = inner.params;
  }
  const transferSyntax = params['transfer-syntax'] ?? typeParams['transfer-syntax'];
  return { mediaType, params, type, typeParams, transferSyntax: transferSyntax || undefined };
}
