import { writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { runAnalysis } from '../analysis/run-analysis.js';
import type { VbmdReport } from '../bmd/report.js';
import { config } from '../config.js';
import { VbmdError } from '../util/errors.js';
import type { DicomSource } from '../dicom/source.js';
import { COMMAND_SUMMARIES } from './summaries.js';
import { oneShotModelThreads } from '../model/model-runner.js';

interface AnalyzeFlags {
  json?: boolean;
  out?: string;
  calibration?: string;
  dicomweb?: string;
  study?: string;
  accession?: string;
  patient?: string;
  fhirBundle?: string;
  fhir?: string;
  fhirPatient?: string;
  serviceRequest?: string;
  dicomOut?: string;
}

/** `vbmd analyze <input>`: DICOM folder/file or NIfTI, or a study on a DICOMweb server; prints the report. */
export function registerAnalyze(program: Command): void {
  program
    .command('analyze')
    .description(COMMAND_SUMMARIES.analyze)
    .argument('[input]', 'DICOM folder (any nesting), DICOM file, or .nii/.nii.gz file')
    .option('--json', 'print the vbmd.report/1 JSON on stdout')
    .option('--out <file>', 'write the vbmd.report/1 JSON to this file')
    .option('--calibration <file>', 'site calibration JSON (phantom/asynchronous slope and intercept per scanner)')
    .option('--dicomweb <url>', 'DICOMweb base URL (QIDO-RS/WADO-RS) to fetch the study from')
    .option('--study <uid>', 'StudyInstanceUID on the DICOMweb server')
    .option('--accession <acc>', 'AccessionNumber on the DICOMweb server')
    .option('--patient <id>', 'PatientID to narrow a DICOMweb accession search; without --dicomweb, the FHIR patient (Patient/<id>)')
    .option('--fhir-bundle <file>', 'also write the FHIR transaction Bundle (Observation, RiskAssessment, Device, Provenance) here')
    .option('--fhir <url>', 'also post the FHIR Bundle to this FHIR R4 base (credentials from FHIR_* settings)')
    .option('--fhir-patient <ref>', 'FHIR patient for --fhir/--fhir-bundle (Patient/<id>) when --patient is the DICOM PatientID')
    .option('--service-request <ref>', 'FHIR ServiceRequest the result is based on')
    .option('--dicom-out <dir>', 'also write the DICOM results (SR TID 1500, SEG of the ROIs, key image) to this folder')
    .action(async (input: string | undefined, flags: AnalyzeFlags) => {
      if (flags.dicomOut && input && /\.nii(\.gz)?$/i.test(input)) {
        throw new VbmdError('unsupported', '--dicom-out needs DICOM input: the SR and SEG must reference the source CT instances, which a NIfTI file does not have.');
      }
      let report: VbmdReport;
      let dicomSource: DicomSource | undefined;
      if (flags.dicomweb) {
        if (input) throw new VbmdError('bad-input', 'Give either an input path or --dicomweb URL, not both.');
        if (!flags.study && !flags.accession) throw new VbmdError('bad-input', '--dicomweb needs --study UID or --accession ACC.');
        // DICOMweb, DICOM output and FHIR load only when asked for: `vbmd analyze <folder>` starts without them.
        const { dicomWebSourceFromConfig } = await import('../dicom/dicomweb/index.js');
        const source = dicomWebSourceFromConfig(config(), { baseUrl: flags.dicomweb });
        if (!source) throw new VbmdError('config', `No DICOMweb source could be configured for ${flags.dicomweb}.`);
        dicomSource = source;
        report = await runAnalysis(
          { source, ref: { studyInstanceUid: flags.study, accessionNumber: flags.accession, patientId: flags.patient } },
          { calibrationFile: flags.calibration, modelThreads: oneShotModelThreads() },
        );
      } else {
        if (!input) throw new VbmdError('bad-input', 'vbmd analyze needs an input: a DICOM folder, a DICOM file or a .nii/.nii.gz file (or --dicomweb URL --study UID).');
        report = await runAnalysis({ path: input }, { calibrationFile: flags.calibration, modelThreads: oneShotModelThreads() });
        if (flags.dicomOut) dicomSource = new (await import('../dicom/folder-source.js')).FolderDicomSource(input);
      }
      if (flags.dicomOut && dicomSource) {
        const { buildFromSource, writeDicomOutputs } = await import('../dicom-output/from-source.js');
        const { outputs } = await buildFromSource(report, dicomSource, new Date());
        for (const path of await writeDicomOutputs(outputs, flags.dicomOut)) process.stderr.write(`Wrote ${path}\n`);
        for (const note of outputs.notes) process.stderr.write(`! ${note}\n`);
      }
      const json = JSON.stringify(report, null, 2);
      if (flags.out) {
        try {
          await writeFile(flags.out, json + '\n');
        } catch (e) {
          throw new VbmdError('bad-input', `Cannot write the report to ${flags.out}: ${(e as Error).message}.`);
        }
      }
      if (flags.fhirBundle || flags.fhir) {
        const cfg = config();
        const { writeFhirOutputs } = await import('../fhir/report-output.js');
        await writeFhirOutputs(report, {
          bundlePath: flags.fhirBundle,
          fhirUrl: flags.fhir,
          patient: flags.fhirPatient ?? (flags.dicomweb ? undefined : flags.patient),
          serviceRequest: flags.serviceRequest,
          token: cfg.FHIR_BEARER_TOKEN,
          clientId: cfg.FHIR_CLIENT_ID,
          privateKeyFile: cfg.FHIR_PRIVATE_KEY_FILE,
          keyAlg: cfg.FHIR_KEY_ALG,
          keyId: cfg.FHIR_KEY_ID,
          tokenUrl: cfg.FHIR_TOKEN_URL,
          scope: cfg.FHIR_SCOPES,
        });
      }
      process.stdout.write(flags.json ? json + '\n' : formatReport(report));
    });
}

/** A number as text, or "-" where there is none (never "NaN" or "Infinity" in front of a reader). */
function fixed(v: number | null | undefined, digits: number): string {
  return v === null || v === undefined || !Number.isFinite(v) ? '-' : v.toFixed(digits);
}

/** A number for the table, right-aligned. */
function num(v: number | null | undefined, width: number): string {
  return fixed(v, 1).padStart(width);
}

/** Human-readable summary: the result first, then per level, calibration, warnings and timings. */
export function formatReport(r: VbmdReport): string {
  const lines: string[] = [];
  const s = r.summary;
  lines.push(
    s.vbmd === null || !Number.isFinite(s.vbmd)
      ? `vBMD: indeterminate (${r.levels.length === 0 ? 'no vertebrae found' : 'no measurable level'})`
      : `vBMD ${s.vbmd.toFixed(1)} mg/cm3 (${s.levels.join('-')}, ${s.basis}): ${s.category}`,
  );
  lines.push(`Calibration: ${r.calibration.method}${r.calibration.uncalibrated ? ' (uncalibrated)' : ''}, HU = ${fixed(r.calibration.intercept, 1)} + ${fixed(r.calibration.slope, 3)} x vBMD`);
  if (r.model) lines.push(`Model: ${r.model.name} ${r.model.version} (sha256 ${r.model.sha256.slice(0, 12)}...)`);
  if (r.levels.length > 0) {
    const m = r.model ? '  model vBMD  ROI source' : '';
    lines.push(`level  conf  ROI median HU  voxels  vBMD mg/cm3${m}  status`);
    for (const l of r.levels) {
      const mv = r.model ? `  ${num(l.modelVbmd, 10)}  ${(l.roiSource ?? 'geometric').padEnd(10)}` : '';
      // A name under the confidence the report uses gets a "?": it is a position in the count, not a finding.
      const name = l.exclusionReason === 'label-uncertain' ? `${l.level}?` : l.level;
      lines.push(
        `${name.padEnd(5)}  ${fixed(l.labelConfidence, 2).padStart(4)}  ${num(l.roiHuMedian, 13)}  ${String(l.roiVoxels).padStart(6)}  ${num(l.vbmd, 11)}${mv}  ${l.included ? 'used' : `excluded: ${l.exclusionReason ?? (Number.isFinite(l.vbmd) ? 'not used' : 'not measured')}`}`,
      );
    }
  }
  for (const w of r.qc.warnings) lines.push(`! ${w}`);
  lines.push(`Timings (ms): ${Object.entries(r.timingsMs).map(([k, v]) => `${k} ${fixed(v, 0)}`).join(', ')}`);
  return lines.join('\n') + '\n';
}
