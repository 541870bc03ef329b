import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { VbmdError } from '../../util/errors.js';
import type { CohortResourceType } from '../resources.js';
import { ndjsonBatches } from './ndjson-lines.js';
import type { ResourceSource, SourceReadOptions } from './types.js';

const NDJSON_FILE = /\.(ndjson|jsonl)(\.gz)?$/i;
/** Bulk Data names files after their type (Observation.ndjson, Observation.000.ndjson, 1.Observation.ndjson);
 * a file whose name says another resource type (Patient.ndjson) is not opened. Unnamed files are read. */
const KNOWN_TYPE_IN_NAME = /(?:^|[._-])([A-Z][A-Za-z]+)(?=[._-])/;

/** `ndjson:DIR`: every *.ndjson / *.jsonl (optionally .gz) file in DIR (or one file), streamed line by line. */
export class NdjsonDirectorySource implements ResourceSource {
  readonly label: string;
  constructor(private readonly path: string) {
    this.label = `ndjson:${path}`;
  }

  async *batches(types: readonly CohortResourceType[], options: SourceReadOptions = {}): AsyncGenerator<unknown[]> {
    const files = await ndjsonFiles(this.path, types);
    for (const [i, file] of files.entries()) {
      options.signal?.throwIfAborted();
      options.onProgress?.(`file ${i + 1}/${files.length} ${basename(file)}`);
      let stream: Readable = createReadStream(file);
      if (/\.gz$/i.test(file)) stream = stream.pipe(createGunzip());
      yield* ndjsonBatches(stream, file);
    }
  }
}

/** The files `ndjson:PATH` reads for these types (both engines): PATH itself when it is a file, else every
 * NDJSON file in the folder except those named after another resource type. */
export async function ndjsonFiles(path: string, types: readonly CohortResourceType[]): Promise<string[]> {
  let info;
  try {
    info = await stat(path);
  } catch {
    throw new VbmdError('not-found', `The NDJSON folder ${path} does not exist; give --source ndjson:DIR with a folder of .ndjson files.`);
  }
  if (info.isFile()) return [path];
  const names = (await readdir(path)).filter((n) => NDJSON_FILE.test(n)).sort();
  if (names.length === 0) throw new VbmdError('not-found', `The folder ${path} has no .ndjson files.`);
  return names
    .filter((n) => {
      const typed = KNOWN_TYPE_IN_NAME.exec(basename(n));
      return !typed || !isFhirTypeName(typed[1]) || (types as readonly string[]).includes(typed[1]);
    })
    .map((n) => join(path, n));
}

/** Resource type names that appear as Bulk Data file names; only these make a file skippable by name. */
const FHIR_TYPES_IN_EXPORTS = new Set([
  'Patient', 'Observation', 'MedicationRequest', 'MedicationStatement', 'MedicationAdministration', 'MedicationDispense',
  'Medication', 'Condition', 'Encounter', 'Procedure', 'DiagnosticReport', 'ImagingStudy', 'ServiceRequest', 'RiskAssessment',
  'Device', 'Provenance', 'Practitioner', 'Organization', 'Location', 'AllergyIntolerance', 'Immunization', 'CarePlan',
  'CareTeam', 'Claim', 'ExplanationOfBenefit', 'Coverage', 'DocumentReference', 'Goal', 'Group', 'PractitionerRole',
]);
function isFhirTypeName(name: string): boolean {
  return FHIR_TYPES_IN_EXPORTS.has(name);
}
