import { createRequire } from 'node:module';

/**
 * A CommonJS package loaded at its first use, not at import: `vbmd analyze` then does not pay for packages its
 * path never calls (pino when nothing is logged, ipaddr.js when nothing is dialled, a codec the series does
 * not use). `from` is the importing module's import.meta.url, so the package resolves as a plain import would.
 */
export function lazyModule<T>(from: string, name: string): () => T {
  let loaded: T | undefined;
  return () => (loaded ??= createRequire(from)(name) as T);
}
