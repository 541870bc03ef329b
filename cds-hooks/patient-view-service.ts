import type { CdsResponse } from './card-types.js';
import type { CdsHooksDeps } from './deps.js';
import type { HookBody, HookCall } from './hook-call.js';
import { patientViewHook } from './patient-view-hook.js';
import { searchResources } from './prefetch.js';

/**
 * The patient-view service (vbmd-patient-view): the bone density alert from the patient's prefetched or
 * fetched record (the card logic is patient-view-hook.ts). 'precondition-failed' when the vBMD
 * Observations could be had neither way.
 */
export async function patientViewService(deps: CdsHooksDeps, body: HookBody, call: HookCall): Promise<CdsResponse | 'precondition-failed'> {
  return patientViewHook((key) => searchResources(body, key, call.def.prefetch[key]!, call.fetchOpts), {
    serviceId: call.serviceId,
    patientId: body.context.patientId,
    smartLaunchUrl: call.smartLaunchUrl(),
    declinePctPerYear: deps.declinePctPerYear,
    feedback: deps.feedback,
    ...(deps.therapyMatcher ? { therapyMatcher: deps.therapyMatcher } : {}),
  });
}
