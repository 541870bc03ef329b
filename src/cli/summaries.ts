/**
 * One line per `vbmd` command: the command's own description and the list `vbmd --help` prints. Kept apart
 * from the commands so that help loads none of them (src/cli.ts).
 */
export const COMMAND_SUMMARIES = {
  analyze: 'Measure vertebral trabecular vBMD (mg/cm3) in a CT: DICOM folder/file, NIfTI, or a DICOMweb study.',
  phantom: 'Write a physically modelled synthetic chest/abdomen CT (DICOM) with known vBMD truth.',
  'eval-phantoms':
    'Generate N synthetic CTs, analyze them and compare with their truth (labels, confident errors, skipped bodies, vBMD MAE, Spearman, category).',
  start: 'Run the service: CDS Hooks, SMART app, study API and analysis worker (sandbox when nothing is configured)',
  hook: 'Send a signed CDS Hooks call to a running vbmd service (as an EHR would) and print the cards',
  cohort: 'Population query: latest vBMD per patient with ACR category, untreated, declining; counts by category and month.',
  evaluate: "Evaluate the vBMD model against the geometric ROI on held-out phantoms or a site manifest (the paper's table, plots).",
  'export-patches': 'Write model training patches (density, trabecular truth mask, index) from phantoms or a site manifest, for models/train.',
  'eval-real':
    'Analyze the real CT scans of ../shared/data/real and derived variants; compare found and named levels with the reference levels.',
  backfill: "Queue the PACS archive's studies in a date range for analysis (after order-driven ones), follow them, and report done/held/failed.",
  doctor: 'Check a deployment: settings, FHIR, PACS and Redis reachable, model file, embedded store, clock skew; say what is wrong.',
} as const;

export type CommandName = keyof typeof COMMAND_SUMMARIES;
