import type { EnvConfig } from '../config.js';
import type { VbmdReport } from '../bmd/report.js';
import { DicomWebClient } from '../dicom/dicomweb/client.js';
import { dicomWebOptionsFromConfig } from '../dicom/dicomweb/from-config.js';
import type { RetryPolicy } from '../util/retry-policy.js';
import type { DicomSource } from '../dicom/source.js';
import type { LoadedVolume } from '../imaging/volume.js';
import { isVbmdError, userMessage } from '../util/errors.js';
import { log } from '../util/log.js';
import { buildFromSource } from './from-source.js';
import { sendToPacs } from './pacs-send.js';

/**
 * The analysis worker's PACS step (after the FHIR write): read the analysed series again, build the SR, SEG
 * and key image, and deliver them idempotently (src/dicom-output/pacs-send.ts). Transient failures (network,
 * 408/429/5xx) are retried inside the step with backoff by the DICOMweb client; the analysis is never run
 * again for them. A failure that outlasts the retries is logged and returned in the job result
 * (`pacs.status: "failed"`) rather than failing the job, because a failed job is re-run from the start and
 * re-running the analysis cannot fix a PACS outage; analysing the study again (the analyze API) re-sends.
 */
export interface PacsJobResult {
  /** skipped: the analysis has no ROI (no measurable vertebra), so there is nothing to show on the PACS. */
  status: 'stored' | 'already-stored' | 'skipped' | 'failed';
  server: string;
  /** SOP Instance UID of this analysis' SR (also the key to its SEG and key image in the SR's evidence). */
  sr?: string;
  sent: number;
  alreadyStored: number;
  /** SR SOP Instance UIDs of the earlier result sets this analysis replaced (IOCM rejection). */
  replaced: string[];
  rejectionNote?: string;
  error?: string;
}

/** `analysed`: the volume the analysis measured, when the job still holds it (else the series is read again). */
export type PacsStep = (report: VbmdReport, dicom: DicomSource, signal: AbortSignal, analysed?: LoadedVolume) => Promise<PacsJobResult>;

/** Retries of one DICOMweb request in the PACS step: 1 + 5 attempts, 1 s doubling to 30 s (about a minute). */
export const STOW_RETRY: Partial<RetryPolicy> = { retries: 5, baseDelayMs: 1000, maxDelayMs: 30_000 };

/**
 * The STOW-RS client the configuration describes: STOW_URL, else DICOMWEB_URL; none when neither is set or
 * STOW_URL is "none". The DICOMweb credentials go only to the DICOMweb server's own origin.
 */
export function stowClientFromConfig(cfg: EnvConfig, retry: Partial<RetryPolicy> = STOW_RETRY): DicomWebClient | undefined {
  if (cfg.STOW_URL === 'none') return undefined;
  const baseUrl = cfg.STOW_URL ?? cfg.DICOMWEB_URL;
  if (!baseUrl) return undefined;
  const options = dicomWebOptionsFromConfig(cfg, { baseUrl })!;
  const sameServer = cfg.DICOMWEB_URL !== undefined && new URL(cfg.DICOMWEB_URL).origin === new URL(baseUrl).origin;
  return new DicomWebClient({ ...options, auth: sameServer ? options.auth : undefined, retry: { ...STOW_RETRY, ...retry } });
}

export function createPacsStep(client: DicomWebClient, now: () => Date = () => new Date()): PacsStep {
  return async (report, dicom, signal, analysed) => {
    try {
      const createdAt = now();
      const { series, outputs } = await buildFromSource(report, dicom, createdAt, signal, analysed);
      for (const note of outputs.notes) log.warn({ sr: outputs.sr.sopInstanceUid }, note);
      const sent = await sendToPacs(client, report, series.source, outputs, createdAt, signal);
      return {
        status: sent.sent.length === 0 ? 'already-stored' : 'stored',
        server: sent.server,
        sr: outputs.sr.sopInstanceUid,
        sent: sent.sent.length,
        alreadyStored: sent.alreadyStored.length,
        replaced: sent.replaced.map((r) => r.srSopInstanceUid),
        ...(sent.rejectionNote ? { rejectionNote: sent.rejectionNote } : {}),
      };
    } catch (e) {
      if (signal.aborted) throw e;
      const error = userMessage(e);
      if (isVbmdError(e) && e.code === 'no-spine') {
        log.info({ server: client.server }, error);
        return { status: 'skipped', server: client.server, sent: 0, alreadyStored: 0, replaced: [], error };
      }
      log.error({ server: client.server, code: isVbmdError(e) ? e.code : 'internal' }, `DICOM results were not delivered to the PACS: ${error}`);
      return { status: 'failed', server: client.server, sent: 0, alreadyStored: 0, replaced: [], error };
    }
  };
}
