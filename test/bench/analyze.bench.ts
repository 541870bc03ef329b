import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generatePhantom, writePhantom } from '../../src/phantom/index.js';
import { runAnalysis } from '../../src/analysis/run-analysis.js';

/**
 * Issue 2 target: a 512x512x300 1 mm synthetic study from disk, full runAnalysis <= 5 s wall and peak RSS
 * <= 1.5 GB on 2 cores, with the per-stage breakdown. The phantom is generated and written first (not timed),
 * then freed, so RSS measures the analysis.
 */
const dir = mkdtempSync(join(tmpdir(), 'vbmd-bench-analyze-'));
try {
  {
    const p = generatePhantom({ seed: 4242, levels: 'T7-L4', size: 512, sliceThicknessMm: 1 });
    // T7-L4 at 1 mm is ~ 300 slices; the study size is printed below.
    await writePhantom(dir, p);
  }
  (globalThis as { gc?: () => void }).gc?.();
  let peak = process.memoryUsage().rss;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
  const t0 = performance.now();
  const report = await runAnalysis({ path: dir });
  const wall = performance.now() - t0;
  clearInterval(timer);
  peak = Math.max(peak, process.memoryUsage().rss);
  console.log(`study ${report.input.dims.join('x')} @ ${report.input.spacingMm.join('x')} mm; levels ${report.levels.map((l) => l.level).join(',')}`);
  console.log(`runAnalysis wall ${(wall / 1000).toFixed(2)} s (target <= 5 s), peak RSS ${(peak / 2 ** 30).toFixed(2)} GB (target <= 1.5 GB)`);
  console.log(`stages (ms): ${Object.entries(report.timingsMs).map(([k, v]) => `${k} ${Math.round(v)}`).join(', ')}`);
  if (wall > 5000 || peak > 1.5 * 2 ** 30) process.exitCode = 1;
} finally {
  rmSync(dir, { recursive: true, force: true });
}
