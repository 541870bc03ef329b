import { describe, expect, it } from 'vitest';
import { loadEnvConfig } from '../../src/config.js';
import { dicomWebOptionsFromConfig, dicomWebSourceFromConfig } from '../../src/dicom/dicomweb/from-config.js';

describe('DICOMweb settings from the service configuration', () => {
  it('no DICOMWEB_URL means no DICOMweb source (sandbox uses folders)', () => {
    expect(dicomWebSourceFromConfig(loadEnvConfig({}))).toBeUndefined();
  });

  it('bearer token, or basic user/password, and the insecure-http switch are passed through', async () => {
    const bearer = dicomWebOptionsFromConfig(loadEnvConfig({ DICOMWEB_URL: 'https://pacs.example.org/dicom-web', DICOMWEB_BEARER_TOKEN: 'abc' }));
    expect(bearer).toMatchObject({ baseUrl: 'https://pacs.example.org/dicom-web', allowInsecureHttp: false });
    expect(bearer?.auth?.type === 'bearer' && (await bearer.auth.tokens.token())).toBe('abc');
    const basic = dicomWebOptionsFromConfig(loadEnvConfig({ DICOMWEB_URL: 'https://pacs.example.org/dicom-web', DICOMWEB_USERNAME: 'u', DICOMWEB_PASSWORD: 'p' }));
    expect(basic?.auth).toEqual({ type: 'basic', username: 'u', password: 'p' });
    const src = dicomWebSourceFromConfig(loadEnvConfig({ DICOMWEB_URL: 'https://pacs.example.org/dicom-web' }), { baseUrl: 'http://10.0.0.5/dicom-web', allowInsecureHttp: true });
    expect(src?.description).toBe('DICOMweb http://10.0.0.5/dicom-web');
  });

  it('plain http to a remote PACS is refused by default', () => {
    expect(() => dicomWebSourceFromConfig(loadEnvConfig({}), { baseUrl: 'http://pacs.example.org/dicom-web' })).toThrow(/Refusing plain http/);
  });
});
