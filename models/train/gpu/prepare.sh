#!/bin/sh
# Prepare a training run on a lent GPU machine (models/train/gpu/run.sh), which has PyTorch but no Node and no
# network: bundle the TypeScript patch exporter into one file (the same code as `vbmd export-patches`, so Python
# still never re-implements the preprocessing) and pack this machine's node binary. Writes .gpu/ (git-ignored),
# which the run carries.
set -eu
cd "$(dirname "$0")/../../.."
mkdir -p .gpu
entry=.gpu/entry.ts
cat > "$entry" <<'TS'
import { Command } from 'commander';
import { registerExportPatches } from '../src/cli/export-patches.js';
import { userMessage } from '../src/util/errors.js';
const program = new Command('vbmd').exitOverride();
registerExportPatches(program);
try {
  await program.parseAsync(process.argv);
} catch (e) {
  process.stderr.write(`vbmd: ${userMessage(e)}\n`);
  process.exitCode = 1;
}
TS
npx esbuild "$entry" --bundle --platform=node --format=esm --target=node20 --outfile=.gpu/export-patches.mjs \
  --banner:js="import { createRequire as __cr } from 'module'; const require = __cr(import.meta.url);" --log-level=warning
rm "$entry"
[ -f .gpu/node.xz ] || xz -T2 -6 -c "$(command -v node)" > .gpu/node.xz
ls -la .gpu
