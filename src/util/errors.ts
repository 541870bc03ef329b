/**
 * Errors a user can act on. Every failure that reaches a person (CLI stderr, HTTP body, job state) is a
 * VbmdError whose message is one plain sentence: what is wrong and with which file, study or server.
 * Programming errors stay ordinary Errors and are reported as internal faults.
 */
export type VbmdErrorCode =
  | 'bad-input'
  | 'unsupported'
  | 'no-series'
  | 'no-spine'
  | 'config'
  | 'remote'
  | 'not-found'
  | 'unauthorized'
  | 'cancelled'
  | 'model'
  /** Not an error of the input or a server: a person must decide (e.g. the study's patient is not the order's). */
  | 'needs-review';

export class VbmdError extends Error {
  override readonly name = 'VbmdError';
  constructor(
    readonly code: VbmdErrorCode,
    message: string,
    readonly details: Record<string, unknown> = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export function isVbmdError(e: unknown): e is VbmdError {
  return e instanceof VbmdError;
}

/** One line for a person: the VbmdError's sentence, or a generic internal-fault line (never a stack). */
export function userMessage(e: unknown): string {
  if (isVbmdError(e)) return e.message;
  const m = e instanceof Error ? e.message : String(e);
  return `Internal error (please report): ${m}`;
}
