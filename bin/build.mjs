// Builds the `vbmd` command to plain JavaScript (dist/cli.js and its lazily loaded chunks) with esbuild, so a
// start does not compile ~260 TypeScript files (1.7-3.2 s for `vbmd --help` through tsx on a 2-core machine).
// Plain JavaScript on purpose: bin/vbmd.js imports it without a TypeScript loader (esbuild itself is loaded
// only when a build runs).
import { readFileSync, statSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const DIST = join(ROOT, 'dist');
export const BUILD_INFO = 'build-info.json';
/**
 * Chunks the current build does not use are deleted once this old: a process started before a rebuild (a
 * service left running in a checkout) may still load its lazily imported chunks, so they stay a day.
 */
const STALE_CHUNK_MS = 24 * 3600_000;

/**
 * Sources find their files (models/, worker scripts, value sets) relative to `import.meta.url`. In a bundle
 * every module shares the chunk's URL, so each source's `import.meta.url` becomes its own original location,
 * written relative to the output folder: the build can move with the checkout.
 */
function keepSourceUrls(outDir) {
  return {
    name: 'keep-source-urls',
    setup(b) {
      b.onLoad({ filter: /\.(ts|mts)$/ }, async (args) => {
        if (args.path.includes(`${sep}node_modules${sep}`)) return undefined;
        const text = await readFile(args.path, 'utf8');
        if (!text.includes('import.meta.url')) return { contents: text, loader: 'ts' };
        const rel = relative(outDir, args.path).split(sep).join('/');
        const here = `new URL(${JSON.stringify(rel)}, import.meta.url).href`;
        return { contents: text.replaceAll('import.meta.url', here), loader: 'ts' };
      });
    },
  };
}

/**
 * Packages bundled into the build instead of loaded from node_modules at run time: zod is ~100 ESM files that
 * took 65-90 ms to resolve and load at every start; bundled it costs a third of that. Only pure-ESM packages
 * that no other dependency imports belong here (a second copy of a package some external module also loads
 * would be a different zod). Everything else, native addons included, stays external.
 */
const BUNDLED_PACKAGES = new Set(['zod']);

function externalPackages() {
  return {
    name: 'external-packages',
    setup(b) {
      b.onResolve({ filter: /^[^./]/ }, (args) => {
        const name = args.path.startsWith('@') ? args.path.split('/').slice(0, 2).join('/') : args.path.split('/')[0];
        return BUNDLED_PACKAGES.has(name) ? undefined : { path: args.path, external: true };
      });
    },
  };
}

async function writeAtomic(path, contents) {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, contents);
  await rename(tmp, path);
}

/**
 * Bundles src/cli.ts (packages and native addons stay external, resolved in node_modules at run time, except
 * BUNDLED_PACKAGES) into
 * `outDir` (`quiet`: no esbuild log). Files are replaced one by one with a rename, so a `vbmd` started
 * meanwhile sees whole files; chunk names carry their content hash, so concurrent builds of the same sources
 * write the same files.
 */
export async function buildCli({ outDir = DIST, quiet = false } = {}) {
  const { build } = await import('esbuild');
  const out = resolve(outDir);
  const startedAt = Date.now();
  const result = await build({
    // Worker threads get entries of their own (src/util/built.ts picks them when running built).
    entryPoints: {
      cli: join(ROOT, 'src', 'cli.ts'),
      'onnx-worker': join(ROOT, 'src', 'model', 'onnx-worker.ts'),
      'decode-worker': join(ROOT, 'src', 'dicom', 'codecs', 'decode-worker.ts'),
      'helper-worker': join(ROOT, 'src', 'bmd', 'parallel', 'helper-worker.ts'),
    },
    absWorkingDir: ROOT,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    outdir: out,
    chunkNames: 'chunk-[hash]',
    sourcemap: 'linked',
    metafile: true,
    write: false,
    // Quiet for bin/vbmd.js: a failed build's errors are in the thrown message it prints.
    logLevel: quiet ? 'silent' : 'warning',
    define: { __VBMD_DIST__: JSON.stringify(`${relative(ROOT, out).split(sep).join('/')}/`) },
    plugins: [externalPackages(), keepSourceUrls(out)],
  });
  await mkdir(out, { recursive: true });
  const written = new Set([BUILD_INFO]);
  for (const f of result.outputFiles) {
    await writeAtomic(f.path, f.contents);
    written.add(relative(out, f.path));
  }
  const inputs = [...Object.keys(result.metafile.inputs), relative(ROOT, fileURLToPath(import.meta.url))]
    .filter((p) => !p.includes('node_modules'))
    .sort();
  await writeAtomic(join(out, BUILD_INFO), JSON.stringify({ builtAt: startedAt, inputs }, null, 1) + '\n');
  for (const name of await readdir(out)) {
    if (written.has(name) || !name.startsWith('chunk-')) continue;
    const s = await stat(join(out, name)).catch(() => undefined);
    if (s && Date.now() - s.mtimeMs > STALE_CHUNK_MS) await rm(join(out, name), { force: true });
  }
  return { outDir: out, files: written.size - 1, inputs: inputs.length, ms: Date.now() - startedAt };
}

/** True when `outDir` holds a build newer than every file it was built from (its build-info.json says which). */
export function isBuildFresh(outDir = DIST) {
  try {
    const info = JSON.parse(readFileSync(join(outDir, BUILD_INFO), 'utf8'));
    return info.inputs.every((path) => statSync(join(ROOT, path)).mtimeMs <= info.builtAt);
  } catch {
    return false;
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const r = await buildCli({ outDir: process.argv[2] ?? DIST });
  console.log(`built ${relative(process.cwd(), join(r.outDir, 'cli.js')) || r.outDir} (${r.files} files from ${r.inputs} sources) in ${r.ms} ms`);
}
