import { AggregatorRegistry, Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { MetricObjectWithValues, MetricValue } from 'prom-client';

/**
 * The service's Prometheus metrics (prom-client), one registry per process. Instrumented where the work
 * happens: the job handler (stage times from the report's timingsMs, model inference, FHIR write latency and
 * failures), the retrieval gate (bytes and seconds per WADO-RS retrieval), the HTTP app (hook latency per
 * CDS service, client JWT rejections by reason). Jobs by state and backfill progress are read from the
 * shared store when scraped (collectors registered by the service). A web process adds its supervised
 * worker's metrics to its own (aggregate below); a `--worker-only` process serves its own on METRICS_PORT.
 * Labels never carry PHI or free text: study, patient and token values stay out.
 */
export const registry = new Registry();
collectDefaultMetrics({ register: registry, prefix: 'vbmd_process_' });

// Buckets: a hook answers in tens of ms; a stage of the analysis takes 0.01-10 s; a retrieval 0.05-60 s.
const FAST_S = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
const WORK_S = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32];
const BYTES = [1e5, 1e6, 1e7, 5e7, 1e8, 2.5e8, 5e8, 1e9];

export const jobsByState = new Gauge({
  name: 'vbmd_jobs',
  help: 'Jobs in the queue by state',
  labelNames: ['queue', 'state'] as const,
  registers: [registry],
  // Every process reads the same shared queue: aggregated over processes, one reading is the count.
  aggregator: 'max',
});

export const analysisStageSeconds = new Histogram({
  name: 'vbmd_analysis_stage_seconds',
  help: "Analysis time per stage (the report's timingsMs: load, spine, labels, roi, calibration, qc, model, total)",
  labelNames: ['stage'] as const,
  buckets: WORK_S,
  registers: [registry],
});

export const modelInferenceSeconds = new Histogram({
  name: 'vbmd_model_inference_seconds',
  help: 'vBMD network inference time per study (all levels)',
  buckets: WORK_S,
  registers: [registry],
});

export const retrievalSeconds = new Histogram({
  name: 'vbmd_retrieval_seconds',
  help: 'Time per WADO-RS retrieval from the PACS, waiting for a retrieval slot excluded',
  labelNames: ['priority', 'outcome'] as const,
  buckets: WORK_S,
  registers: [registry],
});

export const retrievalBytes = new Histogram({
  name: 'vbmd_retrieval_bytes',
  help: 'Bytes per WADO-RS retrieval from the PACS',
  labelNames: ['priority'] as const,
  buckets: BYTES,
  registers: [registry],
});

export const fhirWriteSeconds = new Histogram({
  name: 'vbmd_fhir_write_seconds',
  help: 'Latency of writing one analysis to the FHIR server (retries included)',
  labelNames: ['outcome'] as const,
  buckets: WORK_S,
  registers: [registry],
});

export const fhirWriteFailures = new Counter({
  name: 'vbmd_fhir_write_failures_total',
  help: 'Analyses whose FHIR write failed (the job retries or fails)',
  registers: [registry],
});

export const hookSeconds = new Histogram({
  name: 'vbmd_cds_hook_seconds',
  help: 'CDS Hooks request latency per service and HTTP status',
  labelNames: ['service', 'status'] as const,
  buckets: FAST_S,
  registers: [registry],
});

export const jwtRejections = new Counter({
  name: 'vbmd_cds_jwt_rejections_total',
  help: 'CDS client JWTs rejected, by reason',
  labelNames: ['reason'] as const,
  registers: [registry],
});

export const backfillStudies = new Gauge({
  name: 'vbmd_backfill_studies',
  help: 'Studies of the latest archive backfill run by state',
  labelNames: ['state'] as const,
  registers: [registry],
  aggregator: 'max',
});

export const backfillUpdated = new Gauge({
  name: 'vbmd_backfill_last_update_timestamp_seconds',
  help: 'When the latest archive backfill run last reported progress',
  registers: [registry],
  aggregator: 'max',
});

export const auditFallbacks = new Counter({
  name: 'vbmd_audit_local_fallbacks_total',
  help: 'Audit events written to the local append-only log because the FHIR server refused or failed them',
  registers: [registry],
});

/** Scrape-time reads (queue counts, backfill progress); a failing one leaves its metric unset, never the scrape. */
export type Collector = () => Promise<void>;
const collectors: Collector[] = [];
export function onScrape(c: Collector): () => void {
  collectors.push(c);
  return () => {
    const i = collectors.indexOf(c);
    if (i >= 0) collectors.splice(i, 1);
  };
}

async function collect(): Promise<void> {
  await Promise.all(collectors.map((c) => c().catch(() => undefined)));
}

export type MetricsJson = MetricObjectWithValues<MetricValue<string>>[];

/** This process's metrics as JSON (sent over IPC by a supervised worker). */
export async function metricsJson(): Promise<MetricsJson> {
  await collect();
  return (await registry.getMetricsAsJSON()) as MetricsJson;
}

/** The Prometheus text of this process plus `others` (a supervised worker's), summed per series. */
export async function metricsText(others: MetricsJson[] = []): Promise<{ contentType: string; body: string }> {
  await collect();
  if (others.length === 0) return { contentType: registry.contentType, body: await registry.metrics() };
  const merged = AggregatorRegistry.aggregate([(await registry.getMetricsAsJSON()) as MetricsJson, ...others]);
  return { contentType: merged.contentType, body: await merged.metrics() };
}

/** Observes a report's timingsMs (ms) as stage seconds; `model` also as inference time. */
export function observeTimings(timingsMs: Record<string, number>): void {
  for (const [stage, ms] of Object.entries(timingsMs)) {
    if (!Number.isFinite(ms) || ms < 0 || !/^[a-z][a-z0-9_-]{0,31}$/i.test(stage)) continue;
    analysisStageSeconds.observe({ stage }, ms / 1000);
    if (stage === 'model') modelInferenceSeconds.observe(ms / 1000);
  }
}
