import { pino } from 'pino';
import { config } from '../config.js';

/**
 * Structured JSON logs on stderr. Never put tokens, patient names or MRNs in a log line at info level:
 * use ids the service made (job id, study UID hash) instead. `redact` is the safety net, not the policy.
 */
export const log = pino(
  {
    level: config().LOG_LEVEL,
    redact: {
      paths: ['authorization', 'headers.authorization', 'req.headers.authorization', '*.access_token', 'access_token', 'token', '*.token', 'patientName', '*.patientName'],
      censor: '[redacted]',
    },
  },
  pino.destination(2),
);
