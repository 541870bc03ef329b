import { z } from 'zod';
import { VbmdError } from './util/errors.js';

/**
 * The one reader of environment variables. Every setting is validated here at start, with a message that
 * names the variable; the rest of the code receives typed values. Sections are grouped by the part of the
 * system that uses them; add new settings here, never `process.env` elsewhere.
 */
const envSchema = z.object({
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  HOST: z.string().default('127.0.0.1'),
  /** Where durable local state lives (embedded queue, watches). */
  VBMD_DATA_DIR: z.string().default('.vbmd-data'),
  /** JSON calibration file (site phantom / asynchronous calibration), see src/bmd/calibration. */
  VBMD_CALIBRATION_FILE: z.string().optional(),
});

export type EnvConfig = z.infer<typeof envSchema>;

let cached: EnvConfig | undefined;

export function loadEnvConfig(env: NodeJS.ProcessEnv = process.env): EnvConfig {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    throw new VbmdError('config', `Invalid configuration: ${lines.join('; ')}.`);
  }
  return parsed.data;
}

/** Process-wide configuration, read once. */
export function config(): EnvConfig {
  cached ??= loadEnvConfig();
  return cached;
}
