import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * One way out to the network: every HTTP call of the service goes through src/net (outbound.ts, its
 * raw-http.ts transport and the guarded CDS GET), so timeouts, retries, TLS and address policy hold for all
 * of them. This scans the sources and fails on a direct client call anywhere else. Outside the rule: test
 * code, and the SMART app's browser bundle (smart-app/src, which talks to the EHR through fhirclient).
 */
const ROOT = resolve(__dirname, '../..');
const SCANNED = ['src', 'cds-hooks', 'smart-app', 'models'];
const EXEMPT = [/^src\/net\//, /^smart-app\/src\//, /(^|\/)node_modules\//, /(^|\/)dist\//];

/** Each rule: what it forbids, and a pattern over the source with comments removed. */
const RULES: { what: string; re: RegExp }[] = [
  { what: 'global fetch()', re: /(^|[^.\w$])fetch\s*\(/m },
  { what: 'globalThis.fetch', re: /\bglobalThis\.fetch\b/ },
  { what: 'http.request/get or https.request/get', re: /(^|[^.\w$])https?\.(request|get)\s*\(/m },
  { what: 'request/get imported from node:http(s)', re: /import\s*\{[^}]*\b(request|get)\b[^}]*\}\s*from\s*['"](node:)?https?['"]/ },
  { what: 'undici imported (values, not types)', re: /import\s+(?!type\b)[^;]*from\s*['"]undici['"]/ },
  { what: 'a raw socket client (net/tls connect)', re: /\b(net|tls)\.(connect|createConnection)\s*\(|import\s*\{[^}]*\b(connect|createConnection)\b[^}]*\}\s*from\s*['"](node:)?(net|tls)['"]/ },
];

/** Source without comments (a rule should not fire on a sentence that names fetch()). */
function code(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`\\])\/\/.*$/gm, '$1');
}

export function violations(text: string): string[] {
  const c = code(text);
  return RULES.filter((r) => r.re.test(c)).map((r) => r.what);
}

function sources(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const rel = relative(ROOT, path);
    if (EXEMPT.some((re) => re.test(`${rel}/`) || re.test(rel))) continue;
    if (statSync(path).isDirectory()) sources(path, out);
    else if (/\.(ts|mts|js|mjs)$/.test(name) && !name.endsWith('.d.ts')) out.push(rel);
  }
  return out;
}

describe('one way out to the network', () => {
  it('the scanner catches each kind of direct call (and not method calls or comments)', () => {
    expect(violations("const r = await fetch('https://x');")).toEqual(['global fetch()']);
    expect(violations('const f = globalThis.fetch;')).toEqual(['globalThis.fetch']);
    expect(violations("http.request(url, cb);\n")).toEqual(['http.request/get or https.request/get']);
    expect(violations("https.get('https://x', cb);")).toEqual(['http.request/get or https.request/get']);
    expect(violations("import { request } from 'node:https';")).toEqual(['request/get imported from node:http(s)']);
    expect(violations("import { Agent, request } from 'undici';")).toEqual(['undici imported (values, not types)']);
    expect(violations("const s = net.connect({ port: 80 });")).toEqual(['a raw socket client (net/tls connect)']);
    expect(violations("import { connect } from 'node:tls';")).toEqual(['a raw socket client (net/tls connect)']);
    // Allowed: the layer's own methods, type-only imports, servers, words in comments.
    expect(violations("await this.net.fetch({ url }, 1024);\nconst x = prefetch(1);\nawait client.http.request(spec, f);")).toEqual([]);
    expect(violations("import type { Dispatcher } from 'undici';\nimport { createServer } from 'node:http';")).toEqual([]);
    expect(violations('// a fetch(url) here would be wrong\n/* http.request(x) */')).toEqual([]);
  });

  it('no module outside src/net calls fetch, http(s).request, undici or a socket directly', () => {
    const files = SCANNED.flatMap((d) => sources(join(ROOT, d)));
    expect(files.length).toBeGreaterThan(100);
    const found = files.flatMap((f) => violations(readFileSync(join(ROOT, f), 'utf8')).map((v) => `${f}: ${v}`));
    expect(found).toEqual([]);
  });
});
