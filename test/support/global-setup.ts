import { existsSync } from 'node:fs';

/**
 * Runs once before the test files. The integration tests start real Debian programs themselves (Orthanc,
 * Redis, Chromium, dcm2niix, gdcmconv) on loopback ports and check the DICOM we write with dciodvfy and dsrdump;
 * if one is missing we stop here with one line that says what to install, instead of a hundred confusing failures.
 */
const REQUIRED: { path: string; pkg: string }[] = [
  { path: '/usr/sbin/Orthanc', pkg: 'orthanc' },
  { path: '/usr/share/orthanc/plugins/libOrthancDicomWeb.so', pkg: 'orthanc-dicomweb' },
  { path: '/usr/bin/redis-server', pkg: 'redis-server' },
  { path: '/usr/bin/chromium', pkg: 'chromium' },
  { path: '/usr/bin/dcm2niix', pkg: 'dcm2niix' },
  { path: '/usr/bin/gdcmconv', pkg: 'libgdcm-tools' },
  { path: '/usr/bin/dciodvfy', pkg: 'dicom3tools' },
  { path: '/usr/bin/dsrdump', pkg: 'dcmtk' },
];

export default function setup(): void {
  const missing = REQUIRED.filter((r) => !existsSync(r.path)).map((r) => r.pkg);
  if (missing.length > 0) {
    throw new Error(
      `Tests need Debian packages that are not installed: run  sudo apt-get install -y ${[...new Set(missing)].join(' ')}`,
    );
  }
}
