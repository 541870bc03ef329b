/**
 * Where an outbound call gets its bearer token: one interface for every server vbmd calls (FHIR writes,
 * cohort sources, DICOMweb). A static token, or SMART Backend Services (src/fhir/auth.ts), which caches and
 * refreshes. The outbound layer (outbound.ts) sends `Authorization: Bearer <token>` and, on a 401, calls
 * `invalidate` and tries once more with a fresh token. Tokens are never logged.
 */
export interface TokenProvider {
  /** A valid access token (cached by the provider). Never log it. */
  token(signal?: AbortSignal): Promise<string>;
  /** Drop the cached token (the server answered 401). */
  invalidate(): void;
}

export class StaticTokenProvider implements TokenProvider {
  constructor(private readonly value: string) {}
  async token(): Promise<string> {
    return this.value;
  }
  invalidate(): void {}
}

/** A provider for a static token, none when the token is empty or absent. */
export function staticToken(token: string | undefined): TokenProvider | undefined {
  return token ? new StaticTokenProvider(token) : undefined;
}
