import { generatePhantom } from '../../src/research/phantom/index.js';

/**
 * Phantom generation speed (the engine's bench and model training need many): a 512x512x~300 1 mm chest-
 * abdomen study, and the 128x128 3 mm size the tests use. Prints wall time, voxels/s and peak RSS.
 */
function run(label: string, f: () => { dims: number[] }): void {
  const t0 = performance.now();
  const { dims } = f();
  const ms = performance.now() - t0;
  const vox = dims[0] * dims[1] * dims[2];
  console.log(`${label}: ${dims.join('x')} in ${(ms / 1000).toFixed(2)} s (${(vox / ms / 1000).toFixed(1)} Mvoxel/s), RSS ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MB`);
}

run('warm-up 128x128 3 mm', () => generatePhantom({ seed: 1, size: 128, pixelSpacingMm: 2.5, sliceThicknessMm: 3 }).loaded.volume);
run('test size 128x128 3 mm T8-L3', () => generatePhantom({ seed: 2, size: 128, pixelSpacingMm: 2.5, sliceThicknessMm: 3 }).loaded.volume);
run('512x512 1 mm T6-L4', () => generatePhantom({ seed: 3, size: 512, sliceThicknessMm: 1, levels: 'T6-L4' }).loaded.volume);
console.log(`load average while running: ${(await import('node:os')).loadavg().map((x) => x.toFixed(1)).join(' ')} on ${(await import('node:os')).cpus().length} cores`);
