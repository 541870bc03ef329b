import { copyFile, mkdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';

/**
 * Builds the SMART app to static files: launch.html + launch.js (the SMART launch_uri), index.html + app.js
 * (redirect_uri and the app), app.css. One esbuild pass, bundling fhirclient for the browser; no runtime
 * requests to anything but the page's own origin and the FHIR server.
 */

const HERE = dirname(fileURLToPath(import.meta.url));
export const SMART_APP_DIST = join(HERE, 'dist');

export interface BuildResult {
  outDir: string;
  files: string[];
  bytes: Record<string, number>;
  ms: number;
}

export async function buildSmartApp(opts: { outDir?: string; minify?: boolean } = {}): Promise<BuildResult> {
  const t0 = performance.now();
  const outDir = resolve(opts.outDir ?? SMART_APP_DIST);
  await mkdir(outDir, { recursive: true });
  const result = await build({
    entryPoints: { launch: join(HERE, 'src/launch.ts'), app: join(HERE, 'src/app.ts') },
    outdir: outDir,
    bundle: true,
    format: 'iife',
    platform: 'browser',
    target: ['chrome110', 'firefox110', 'safari16', 'edge110'],
    minify: opts.minify ?? true,
    sourcemap: 'linked',
    metafile: true,
    legalComments: 'linked',
    // FHIRCLIENT_PURE: the supported browsers have fetch and AbortController, so fhirclient's polyfills stay out.
    define: { 'process.env.NODE_ENV': '"production"', FHIRCLIENT_PURE: 'true' },
    logLevel: 'warning',
  });
  for (const f of ['launch.html', 'index.html', 'app.css']) await copyFile(join(HERE, 'static', f), join(outDir, f));
  const bytes: Record<string, number> = {};
  for (const [file, out] of Object.entries(result.metafile.outputs)) bytes[file.split('/').pop() as string] = out.bytes;
  return { outDir, files: ['launch.html', 'index.html', 'app.css', 'launch.js', 'app.js'], bytes, ms: performance.now() - t0 };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  buildSmartApp()
    .then((r) => {
      process.stdout.write(`SMART app built in ${r.ms.toFixed(0)} ms -> ${r.outDir} (app.js ${r.bytes['app.js']} B, launch.js ${r.bytes['launch.js']} B)\n`);
    })
    .catch((e: unknown) => {
      process.stderr.write(`SMART app build failed: ${e instanceof Error ? e.message : String(e)}\n`);
      process.exit(1);
    });
}
