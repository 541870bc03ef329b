import type { Command } from 'commander';
import { calibrate } from '../bmd/calibration/index.js';
import { readSiteCalibrationFile } from '../bmd/calibration/site-file.js';
import { loadInputPath } from '../analysis/load-input.js';
import { HELDOUT_SEED_BASE, TRAIN_SEED_BASE } from '../research/training-data/cases.js';
import { openPatchWriter, phantomStudySamples, readManifest, siteStudySamples, type ManifestRow } from '../research/training-data/export-patches.js';
import { VbmdError, userMessage } from '../util/errors.js';
import { COMMAND_SUMMARIES } from './summaries.js';

interface Flags {
  out: string;
  phantoms?: string;
  seed?: string;
  heldOut?: boolean;
  manifest?: string;
  calibration?: string;
  jitter?: string;
}

/**
 * `vbmd export-patches --out DIR --phantoms N [--seed S | --held-out]` writes model training patches from
 * generated phantoms (src/research/training-data/export-patches.ts); `--manifest FILE.csv` (input,level,qct_vbmd) does the same for
 * a site's own QCT-labelled scans. Resumes an interrupted export in the same DIR.
 */
export function registerExportPatches(program: Command): void {
  program
    .command('export-patches')
    .description(COMMAND_SUMMARIES['export-patches'])
    .requiredOption('--out <dir>', 'output folder (density.f32, mask.u8, index.jsonl, meta.json)')
    .option('--phantoms <n>', 'number of phantom studies')
    .option('--seed <n>', `first seed (training ${TRAIN_SEED_BASE}+, held-out ${HELDOUT_SEED_BASE}+)`)
    .option('--held-out', `held-out set: seeds from ${HELDOUT_SEED_BASE}, always the true (site) calibration`)
    .option('--manifest <csv>', 'site manifest: input (DICOM folder or NIfTI), level, qct_vbmd')
    .option('--jitter <k>', 'training only: k extra patches per level at centres moved up to +-3 mm (default 0)', '0')
    .option('--calibration <json>', 'site calibration file for manifest scans (default: the calibration chain)')
    .action(async (flags: Flags) => {
      if ((flags.phantoms === undefined) === (flags.manifest === undefined)) {
        throw new VbmdError('bad-input', 'Give either --phantoms N or --manifest FILE.csv.');
      }
      const writer = openPatchWriter(flags.out);
      try {
        if (flags.phantoms !== undefined) {
          const n = Number(flags.phantoms);
          const seed0 = flags.seed !== undefined ? Number(flags.seed) : flags.heldOut ? HELDOUT_SEED_BASE : TRAIN_SEED_BASE;
          if (!Number.isInteger(n) || n < 1 || !Number.isInteger(seed0)) throw new VbmdError('bad-input', '--phantoms and --seed must be integers (phantoms >= 1).');
          const isHeld = (s: number): boolean => s >= HELDOUT_SEED_BASE;
          const jitter = Number(flags.jitter ?? '0');
          if (!Number.isInteger(jitter) || jitter < 0 || jitter > 8) throw new VbmdError('bad-input', '--jitter must be an integer 0-8.');
          if (flags.heldOut && jitter > 0) throw new VbmdError('bad-input', 'The held-out set uses the engine centres only: no --jitter.');
          if (flags.heldOut && !isHeld(seed0)) throw new VbmdError('bad-input', `Held-out seeds start at ${HELDOUT_SEED_BASE}.`);
          if (!flags.heldOut && isHeld(seed0 + n - 1)) throw new VbmdError('bad-input', `Training seeds must stay below ${HELDOUT_SEED_BASE} (the held-out set).`);
          for (let s = seed0; s < seed0 + n; s++) {
            if (writer.seedsDone.has(s)) continue;
            const t0 = performance.now();
            const r = phantomStudySamples(s, calibrate, flags.heldOut ? true : undefined, jitter);
            writer.append(r.samples);
            process.stderr.write(
              `seed ${s}: ${r.samples.length} samples (${r.located} located, ${r.unmatched} unmatched, ${r.skippedPartial} partial/S1) ${((performance.now() - t0) / 1000).toFixed(1)} s, total ${writer.count}\n`,
            );
          }
        } else {
          const rows = readManifest(flags.manifest as string);
          const site = flags.calibration ? await readSiteCalibrationFile(flags.calibration) : undefined;
          const byInput = new Map<string, ManifestRow[]>();
          for (const r of rows) byInput.set(r.input, [...(byInput.get(r.input) ?? []), r]);
          for (const [input, rs] of byInput) {
            if (writer.inputsDone.has(input)) continue;
            try {
              const loaded = await loadInputPath(input);
              const r = siteStudySamples(input, loaded, rs, site, calibrate);
              if (r.samples.length) writer.append(r.samples);
              process.stderr.write(`${input}: ${r.samples.length} samples${r.missing.length ? `; level(s) ${r.missing.join(', ')} not found by the engine (skipped)` : ''}\n`);
            } catch (e) {
              // One unreadable scan must not lose the others: say which and go on.
              process.stderr.write(`${input}: skipped (${userMessage(e)})\n`);
            }
          }
        }
      } finally {
        writer.close();
      }
      process.stdout.write(`${writer.count} samples in ${flags.out}\n`);
    });
}
