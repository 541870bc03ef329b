#!/usr/bin/env node
// The `vbmd` command. It runs the built JavaScript (dist/, bin/build.mjs): compiling the TypeScript at every
// start cost 1.7-3.2 s on a 2-core machine. A build older than any file it was built from is rebuilt first
// (about a second), so an edited checkout never runs stale code; where no build can be written (a read-only
// install), the sources run through tsx as before.
import { buildCli, isBuildFresh } from './build.mjs';

let built = isBuildFresh();
if (!built) {
  try {
    await buildCli({ quiet: true });
    built = true;
  } catch (e) {
    process.stderr.write(`vbmd: could not build dist/ (${e instanceof Error ? e.message : String(e)}); running the TypeScript sources through tsx (slower start).\n`);
  }
}
if (built) {
  await import('../dist/cli.js');
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/cli.ts');
}
