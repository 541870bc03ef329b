import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cohortFixture } from './fixtures.js';

export function toNdjson(resources: readonly unknown[]): string {
  return resources.map((r) => JSON.stringify(r)).join('\n') + '\n';
}

/** The fixture as a Bulk-Data-shaped folder (one file per type, plus a Patient file the source skips). */
export async function writeFixtureNdjson(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'vbmd-cohort-'));
  const f = cohortFixture();
  await writeFile(join(dir, 'Observation.ndjson'), toNdjson([...f.observations, ...f.other]));
  await writeFile(join(dir, 'MedicationRequest.ndjson'), toNdjson(f.requests));
  await writeFile(join(dir, 'MedicationStatement.ndjson'), toNdjson(f.statements));
  // Not read: named after another type. If it were read its broken line would fail the run.
  await writeFile(join(dir, 'Patient.ndjson'), '{"resourceType":"Patient","id":"x"}\nnot json\n');
  return dir;
}
