/**
 * A strict reader of the Prometheus text exposition format 0.0.4 for tests: every line must be a comment
 * (`# HELP`, `# TYPE`), blank, or `name{label="value",...} value`; anything else throws, so a malformed
 * /metrics fails the test instead of being skipped.
 */
export interface ParsedMetrics {
  types: Map<string, string>;
  samples: { name: string; labels: Record<string, string>; value: number }[];
  /** The one sample with exactly these labels (undefined when there is none). */
  value(name: string, labels: Record<string, string>): number | undefined;
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\d+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?\s*/y;

export function parsePrometheusText(text: string): ParsedMetrics {
  const types = new Map<string, string>();
  const samples: ParsedMetrics['samples'] = [];
  for (const [i, line] of text.split('\n').entries()) {
    if (line.trim() === '') continue;
    if (line.startsWith('#')) {
      const t = /^# TYPE (\S+) (counter|gauge|histogram|summary|untyped)$/.exec(line);
      if (t) types.set(t[1]!, t[2]!);
      else if (!/^# HELP \S+ /.test(line)) throw new Error(`line ${i + 1}: not a HELP or TYPE comment: ${line}`);
      continue;
    }
    const m = SAMPLE.exec(line);
    if (!m) throw new Error(`line ${i + 1}: not a sample: ${line}`);
    const labels: Record<string, string> = {};
    const body = m[3] ?? '';
    LABEL.lastIndex = 0;
    while (LABEL.lastIndex < body.length) {
      const start = LABEL.lastIndex;
      const l = LABEL.exec(body);
      if (!l || LABEL.lastIndex === start) throw new Error(`line ${i + 1}: bad labels: ${body}`);
      labels[l[1]!] = l[2]!.replace(/\\(.)/g, (_s, c: string) => (c === 'n' ? '\n' : c));
    }
    const value = m[4] === '+Inf' ? Infinity : m[4] === '-Inf' ? -Infinity : Number(m[4]);
    if (Number.isNaN(value) && m[4] !== 'NaN') throw new Error(`line ${i + 1}: bad value: ${m[4]}`);
    samples.push({ name: m[1]!, labels, value });
  }
  return {
    types,
    samples,
    value: (name, want) => {
      const keys = Object.keys(want);
      const hit = samples.filter((s) => s.name === name && Object.keys(s.labels).length === keys.length && keys.every((k) => s.labels[k] === want[k]));
      if (hit.length > 1) throw new Error(`${name} ${JSON.stringify(want)} matches ${hit.length} samples`);
      return hit[0]?.value;
    },
  };
}
