import { FhirClient } from '../../src/fhir/client.js';
import { VBMD_SUMMARY_CODE_TOKEN } from '../../src/fhir/codes.js';
import { demoReport } from '../../src/sandbox/demo/patients.js';
import { startFhirServer } from '../../src/sandbox/fhir-server/start.js';
import { writeAnalysis } from '../../src/fhir/write-analysis.js';

/**
 * The in-process FHIR server (tests, sandbox) under the loads other parts put on it: analysis transactions
 * over HTTP (each 4 conditional creates), the CDS/SMART query `Observation?patient&code&_sort=-date&_count=5`,
 * an idempotent re-write, and paging through every Observation with `_count=100` (population queries).
 * BENCH_FHIR_ANALYSES (default 1000) analyses over BENCH_FHIR_PATIENTS (default 200) patients.
 */
const ANALYSES = Number(process.env.BENCH_FHIR_ANALYSES ?? 1000);
const PATIENTS = Number(process.env.BENCH_FHIR_PATIENTS ?? 200);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

const server = await startFhirServer();
const client = new FhirClient({ baseUrl: server.baseUrl });
try {
  const reports = Array.from({ length: ANALYSES }, (_, i) =>
    demoReport(i % PATIENTS, Math.floor(i / PATIENTS), { monthsAgo: Math.floor(i / PATIENTS) * 6, vbmd: 60 + ((i * 37) % 110) }, new Date(Date.UTC(2020, 0, 1) + i * 86400_000)),
  );
  let t = performance.now();
  for (const [i, r] of reports.entries()) await writeAnalysis(client, r, { patient: `Patient/bench-${i % PATIENTS}` });
  const writeMs = performance.now() - t;
  console.log(`write: ${ANALYSES} analyses (one result set each: report, Observations, risk, Provenance) in ${(writeMs / 1000).toFixed(1)} s = ${(ANALYSES / (writeMs / 1000)).toFixed(0)} analyses/s, ${(writeMs / ANALYSES).toFixed(1)} ms each`);

  const q: number[] = [];
  for (let i = 0; i < 50; i++) {
    t = performance.now();
    const page = await client.request('GET', `Observation?patient=Patient/bench-${(i * 7) % PATIENTS}&code=${encodeURIComponent(VBMD_SUMMARY_CODE_TOKEN)}&_sort=-date&_count=5`);
    q.push(performance.now() - t);
    if (!page.body) throw new Error('no body');
  }
  console.log(`CDS/SMART query patient+code+_sort=-date+_count=5: median ${median(q).toFixed(1)} ms, max ${Math.max(...q).toFixed(1)} ms`);

  const rw: number[] = [];
  for (let i = 0; i < 20; i++) {
    t = performance.now();
    const w = await writeAnalysis(client, reports[i], { patient: `Patient/bench-${i % PATIENTS}` });
    rw.push(performance.now() - t);
    if (w.observation.created) throw new Error('re-write created a duplicate');
  }
  console.log(`idempotent re-write (found, nothing created): median ${median(rw).toFixed(1)} ms`);

  t = performance.now();
  let n = 0;
  let pages = 0;
  for await (const b of client.searchPages('Observation', { code: VBMD_SUMMARY_CODE_TOKEN, _count: 100 })) {
    n += b.entry?.length ?? 0;
    pages++;
  }
  console.log(`page through all Observations (_count=100): ${n} in ${pages} pages, ${((performance.now() - t) / 1000).toFixed(2)} s`);
  t = performance.now();
  await client.request('GET', `Observation?code=${encodeURIComponent(VBMD_SUMMARY_CODE_TOKEN)}&_sort=-date&_count=10`);
  console.log(`unindexed query code+_sort=-date over ${n}: ${(performance.now() - t).toFixed(0)} ms (scan; avoid in product code)`);
  console.log(`rss ${(process.memoryUsage().rss / 1e6).toFixed(0)} MB`);
} finally {
  await server.close();
}
