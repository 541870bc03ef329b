import type { EnvConfig } from '../config.js';
import { DEFAULT_MODEL_FILE } from './model-file.js';
import { ModelRunner } from './model-runner.js';

/**
 * The process-wide model runner from configuration (VBMD_MODEL, VBMD_MODEL_FILE, VBMD_MODEL_THREADS): started
 * once, shared by every analysis of the process (CLI, job worker, sandbox). Null when the model is switched
 * off. A failed start (missing or corrupt file) rejects with the VbmdError and is tried again on the next
 * call, so a restored file is picked up without a restart.
 */
let shared: Promise<ModelRunner | null> | undefined;

export function sharedModelRunner(cfg: Pick<EnvConfig, 'VBMD_MODEL' | 'VBMD_MODEL_FILE' | 'VBMD_MODEL_THREADS'>): Promise<ModelRunner | null> {
  if (!cfg.VBMD_MODEL) return Promise.resolve(null);
  shared ??= ModelRunner.start({ file: cfg.VBMD_MODEL_FILE ?? DEFAULT_MODEL_FILE, threads: cfg.VBMD_MODEL_THREADS }).catch((e: unknown) => {
    shared = undefined;
    throw e;
  });
  return shared;
}

/** Stops the shared runner (tests, graceful shutdown). */
export async function closeSharedModelRunner(): Promise<void> {
  const s = shared;
  shared = undefined;
  const r = await s?.catch(() => null);
  await r?.close();
}
