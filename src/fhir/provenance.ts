import type { Provenance, Reference } from 'fhir/r4.js';
import type { VbmdReport } from '../bmd/report.js';
import { AI_ASSERTED_SECURITY, PROVENANCE_AGENT_TYPE_SYSTEM } from './codes.js';
import type { AnalysisContext } from './context.js';
import { analysisIdentifier } from './identifiers.js';
import { imagingStudyReference } from './references.js';

export interface ProvenanceRefs {
  targets: string[];
  device: string;
}

/**
 * Provenance of the algorithm's output (HL7 AI Transparency on FHIR): `meta.security` AIAST says the target
 * content was asserted by an algorithm, the agent is the algorithm Device, the source entity is the CT study.
 * R4 Provenance has no `identifier`, so its idempotency key rides in `meta.tag` (searched with `_tag`).
 */
export function buildProvenance(report: VbmdReport, ctx: AnalysisContext, refs: ProvenanceRefs): Provenance {
  const key = analysisIdentifier(report, 'provenance');
  const study = imagingStudyReference(report, ctx);
  const recorded = ctx.issued ?? new Date().toISOString();
  const targets: Reference[] = refs.targets.map((t) => ({ reference: t }));
  return {
    resourceType: 'Provenance',
    meta: {
      security: [{ ...AI_ASSERTED_SECURITY }],
      tag: [{ system: key.system, code: key.value, display: 'vbmd analysis provenance key' }, ...(ctx.tags ?? [])],
    },
    target: targets,
    recorded,
    activity: {
      coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-DataOperation', code: 'CREATE', display: 'create' }],
      text: 'Automated vBMD measurement from CT',
    },
    agent: [
      {
        type: { coding: [{ system: PROVENANCE_AGENT_TYPE_SYSTEM, code: 'author', display: 'Author' }] },
        who: { reference: refs.device, type: 'Device' },
      },
    ],
    ...(study ? { entity: [{ role: 'source', what: study }] } : {}),
    reason: [{ text: report.model ? 'AI-assisted opportunistic bone density screening' : 'Opportunistic bone density screening' }],
  };
}
