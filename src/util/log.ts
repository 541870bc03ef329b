import type { LogFn, Logger } from 'pino';
import { lazyModule } from './lazy-module.js';
import { logLevelSetting } from '../config.js';
import { logContext } from './log-context.js';

/**
 * Structured JSON logs on stderr. Never put tokens, patient names or MRNs in a log line at info level:
 * use ids the service made (job id, study UID hash) instead. `redact` is the safety net, not the policy.
 *
 * pino is loaded at the first line logged, not at import: a one-shot `vbmd analyze` that logs nothing
 * does not pay its load (about 30 ms of a start measured by `npm run bench -- analyze`).
 */
const pinoModule = lazyModule<typeof import('pino')>(import.meta.url, 'pino');
let logger: Logger | undefined;

function pinoLogger(): Logger {
  if (logger) return logger;
  const { pino } = pinoModule();
  logger = pino(
    {
      level: logLevelSetting(),
      // The study's correlation id (and job id) on every line written while it is handled (log-context.ts).
      mixin: () => ({ ...logContext() }),
      redact: {
        paths: ['authorization', 'headers.authorization', 'req.headers.authorization', '*.access_token', 'access_token', 'token', '*.token', 'patientName', '*.patientName'],
        censor: '[redacted]',
      },
    },
    pino.destination(2),
  );
  return logger;
}

const level =
  (name: 'debug' | 'info' | 'warn' | 'error'): LogFn =>
  (...args: Parameters<LogFn>) => {
    const l = pinoLogger();
    (l[name] as (...a: Parameters<LogFn>) => void).apply(l, args);
  };

export const log: Pick<Logger, 'debug' | 'info' | 'warn' | 'error'> & { readonly level: string } = {
  /** The level in force (LOG_LEVEL), without loading pino for the asking. */
  get level(): string {
    return logger?.level ?? logLevelSetting();
  },
  debug: level('debug'),
  info: level('info'),
  warn: level('warn'),
  error: level('error'),
};
