import { randomBytes } from 'node:crypto';

/** What an EHR knows when it launches the app (SMART App Launch 2.x, "Launch context arrives with the
 * access_token"): the patient in the chart, resources in context, whether it already shows a banner. */
export interface LaunchContext {
  patient: string;
  /** e.g. [{ reference: 'ImagingStudy/123' }] (the study a CDS card was about). */
  fhirContext?: { reference: string }[];
  /** True when the EHR frame shows no patient banner of its own, so the app must. */
  needPatientBanner: boolean;
  /** A CDS card link's `appContext`, handed to the app unchanged in the token response (CDS Hooks 2.0,
   * Link.appContext). vbmd's cards send `{"observation":"Observation/<id>"}`. */
  appContext?: string;
}

/**
 * Opaque `launch` values minted by the sandbox EHR, each mapping to one LaunchContext. Random and
 * short-lived (like a real EHR's), so a launch URL found in a log cannot be replayed hours later.
 */
export class LaunchStore {
  private readonly entries = new Map<string, { context: LaunchContext; expiresAtMs: number }>();

  constructor(private readonly ttlMs = 10 * 60_000) {}

  create(context: LaunchContext): string {
    this.prune();
    const id = randomBytes(16).toString('base64url');
    this.entries.set(id, { context, expiresAtMs: Date.now() + this.ttlMs });
    return id;
  }

  get(id: string): LaunchContext | undefined {
    const e = this.entries.get(id);
    if (!e || e.expiresAtMs < Date.now()) return undefined;
    return e.context;
  }

  private prune(): void {
    const now = Date.now();
    for (const [k, v] of this.entries) if (v.expiresAtMs < now) this.entries.delete(k);
  }
}
