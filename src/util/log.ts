import { pino } from 'pino';
import { logLevelSetting } from '../config.js';
import { logContext } from './log-context.js';

/**
 * Structured JSON logs on stderr. Never put tokens, patient names or MRNs in a log line at info level:
 * use ids the service made (job id, study UID hash) instead. `redact` is the safety net, not the policy.
 */
export const log = pino(
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
