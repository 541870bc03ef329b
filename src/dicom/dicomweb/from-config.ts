import type { EnvConfig } from '../../config.js';
import { StaticTokenProvider } from '../../net/token-provider.js';
import { VbmdError } from '../../util/errors.js';
import type { DicomWebAuth } from './http.js';
import { DicomWebSource, type DicomWebSourceOptions } from './source.js';

/**
 * The DICOMweb source the service configuration describes (DICOMWEB_URL, DICOMWEB_BEARER_TOKEN or
 * DICOMWEB_USERNAME/PASSWORD, ALLOW_INSECURE_HTTP), or undefined when no PACS is configured (sandbox:
 * the folder source is used instead). `overrides` are for the CLI (`--dicomweb URL`) and tests.
 */
export function dicomWebOptionsFromConfig(cfg: EnvConfig, overrides: Partial<DicomWebSourceOptions> = {}): DicomWebSourceOptions | undefined {
  const baseUrl = overrides.baseUrl ?? cfg.DICOMWEB_URL;
  if (!baseUrl) return undefined;
  let auth: DicomWebAuth | undefined;
  if (cfg.DICOMWEB_BEARER_TOKEN) auth = { type: 'bearer', tokens: new StaticTokenProvider(cfg.DICOMWEB_BEARER_TOKEN) };
  else if (cfg.DICOMWEB_USERNAME !== undefined || cfg.DICOMWEB_PASSWORD !== undefined) {
    if (!cfg.DICOMWEB_USERNAME || !cfg.DICOMWEB_PASSWORD) {
      throw new VbmdError('config', 'DICOMWEB_USERNAME and DICOMWEB_PASSWORD must be set together.');
    }
    auth = { type: 'basic', username: cfg.DICOMWEB_USERNAME, password: cfg.DICOMWEB_PASSWORD };
  }
  return { auth, allowInsecureHttp: cfg.ALLOW_INSECURE_HTTP, ...overrides, baseUrl };
}

export function dicomWebSourceFromConfig(cfg: EnvConfig, overrides: Partial<DicomWebSourceOptions> = {}): DicomWebSource | undefined {
  const options = dicomWebOptionsFromConfig(cfg, overrides);
  return options ? new DicomWebSource(options) : undefined;
}
