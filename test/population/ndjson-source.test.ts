import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { flattenRow } from '../../src/population/output/flat-row.js';
import { runCohort } from '../../src/population/query.js';
import { NdjsonDirectorySource } from '../../src/population/sources/ndjson-dir.js';
import { parseSourceSpec } from '../../src/population/sources/parse-source.js';
import { isVbmdError } from '../../src/util/errors.js';
import { AS_OF } from './fixtures.js';
import { checkKnownAnswers } from './known-answers.js';
import { writeFixtureNdjson } from './write-ndjson.js';

let dir: string;
beforeAll(async () => {
  dir = await writeFixtureNdjson();
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('cohort over NDJSON files', () => {
  it('gives the known answers for every query', async () => {
    await checkKnownAnswers(parseSourceSpec(`ndjson:${dir}`));
  });

  it('does not depend on the order of resources (medications first, scans reversed)', async () => {
    const forward = await runCohort(new NdjsonDirectorySource(dir), { asOf: AS_OF });
    const { readFile } = await import('node:fs/promises');
    const obs = (await readFile(join(dir, 'Observation.ndjson'), 'utf8')).trim().split('\n').reverse();
    const meds = (await readFile(join(dir, 'MedicationRequest.ndjson'), 'utf8')) + (await readFile(join(dir, 'MedicationStatement.ndjson'), 'utf8'));
    const single = join(dir, 'reversed.jsonl');
    await writeFile(single, `${meds}${obs.join('\n')}\n`);
    try {
      const reversed = await runCohort(new NdjsonDirectorySource(single), { asOf: AS_OF });
      // Equal to the printed precision (the online fit's last bits depend on arrival order).
      expect(reversed.rows.map(flattenRow)).toEqual(forward.rows.map(flattenRow));
    } finally {
      await rm(single);
    }
  });

  it('reads gzipped NDJSON (.ndjson.gz) the same', async () => {
    const { readFile, mkdtemp, readdir } = await import('node:fs/promises');
    const { gzipSync } = await import('node:zlib');
    const { tmpdir } = await import('node:os');
    const gzDir = await mkdtemp(join(tmpdir(), 'vbmd-cohort-gz-'));
    try {
      for (const name of (await readdir(dir)).filter((n) => n !== 'Patient.ndjson')) {
        await writeFile(join(gzDir, `${name}.gz`), gzipSync(await readFile(join(dir, name))));
      }
      const plain = await runCohort(new NdjsonDirectorySource(dir), { asOf: AS_OF });
      const gz = await runCohort(new NdjsonDirectorySource(gzDir), { asOf: AS_OF });
      expect(gz.rows.map(flattenRow)).toEqual(plain.rows.map(flattenRow));
      expect(gz.summary.patients).toBe(14);
    } finally {
      await rm(gzDir, { recursive: true, force: true });
    }
  });

  it('reports progress (stage, resources, patients) for the terminal line', async () => {
    const seen: Array<{ resources: number; patients: number; stage: string }> = [];
    await runCohort(new NdjsonDirectorySource(dir), { asOf: AS_OF }, { onProgress: (p) => seen.push(p), progressEveryMs: 0 });
    expect(seen.some((p) => /^file 1\/3 MedicationRequest\.ndjson$/.test(p.stage))).toBe(true);
    expect(seen.at(-1)).toEqual({ stage: 'done', resources: 32, patients: 15 });
  });

  it('stops with the file and line of a line that is not JSON', async () => {
    const bad = join(dir, 'broken.ndjson');
    await writeFile(bad, '{"resourceType":"Observation"}\n{oops\n');
    try {
      const err = await runCohort(new NdjsonDirectorySource(dir), { asOf: AS_OF }).catch((e: unknown) => e);
      expect(isVbmdError(err)).toBe(true);
      expect((err as Error).message).toContain('Line 2 of');
      expect((err as Error).message).toContain('broken.ndjson');
    } finally {
      await rm(bad);
    }
  });

  it('names a missing folder and refuses bad source specs and queries', async () => {
    await expect(runCohort(new NdjsonDirectorySource(join(dir, 'nope')), {})).rejects.toThrow(/does not exist/);
    expect(() => parseSourceSpec('s3://bucket')).toThrow(/fhir:URL, bulk:URL or ndjson:DIR/);
    expect(() => parseSourceSpec('fhir:not-a-url')).toThrow(/http\(s\) URL/);
    await expect(runCohort(new NdjsonDirectorySource(dir), { since: '2024-13-01' })).rejects.toThrow(/since/);
    await expect(runCohort(new NdjsonDirectorySource(dir), { since: '2024-02-01', until: '2024-01-01' })).rejects.toThrow(/window is empty/);
  });
});
