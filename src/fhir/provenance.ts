import type { Provenance, ProvenanceEntity, Reference } from 'fhir/r4.js';
import type { VbmdReport } from '../bmd/report.js';
import { AI_ASSERTED_SECURITY, AI_DEVICE_TYPE, AI_PROVENANCE_PROFILE, PROVENANCE_AGENT_TYPE_SYSTEM } from './codes.js';
import type { AnalysisContext } from './context.js';
import { provenanceKey } from './identifiers.js';
import { imagingStudyReference } from './references.js';

export interface ProvenanceRefs {
  targets: string[];
  device: string;
  /** The model card DocumentReference the Device is described by. */
  modelCard?: string;
  /** Version-specific references (`Observation/1/_history/2`) of what this analysis replaced. */
  revises?: string[];
}

/**
 * Provenance of one analysis, profiled as HL7 AI Transparency on FHIR's AI-Provenance: `meta.security` and
 * `reason` AIAST say the targets were asserted by an algorithm; the agent is the AI-Device with type author
 * and role AIdeviceTypeCS#Artificial-Intelligence; the entities are the CT study (source), the model card
 * (derivation) and, for a re-analysis, the earlier versions it revises (FHIR provenance-entity-role
 * `revision`: "a derivation for which the resulting entity is a revised version of some original").
 * R4 Provenance has no `identifier`, so its idempotency key (one per analysis) rides in `meta.tag`.
 */
export function buildProvenance(report: VbmdReport, ctx: AnalysisContext, refs: ProvenanceRefs): Provenance {
  const key = provenanceKey(report);
  const study = imagingStudyReference(report, ctx);
  const recorded = ctx.issued ?? new Date().toISOString();
  const targets: Reference[] = refs.targets.map((t) => ({ reference: t }));
  const revises = refs.revises ?? [];
  const entity: ProvenanceEntity[] = [
    ...(study ? [{ role: 'source' as const, what: study }] : []),
    ...(refs.modelCard ? [{ role: 'derivation' as const, what: { reference: refs.modelCard, type: 'DocumentReference', display: 'Model card' } }] : []),
    ...revises.map((r) => ({ role: 'revision' as const, what: { reference: r, display: 'Earlier analysis (superseded)' } })),
  ];
  return {
    resourceType: 'Provenance',
    meta: {
      profile: [AI_PROVENANCE_PROFILE],
      security: [{ ...AI_ASSERTED_SECURITY }],
      tag: [{ system: key.system, code: key.value, display: 'vbmd analysis provenance key' }, ...(ctx.tags ?? [])],
    },
    target: targets,
    recorded,
    activity: revises.length
      ? { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-DataOperation', code: 'UPDATE', display: 'revise' }], text: 'Re-analysis superseding an earlier vBMD result' }
      : { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-DataOperation', code: 'CREATE', display: 'create' }], text: 'Automated vBMD measurement from CT' },
    reason: [
      { coding: [{ ...AI_ASSERTED_SECURITY }], text: report.model ? 'AI-assisted opportunistic bone density screening' : 'Opportunistic bone density screening by an algorithm' },
    ],
    agent: [
      {
        type: { coding: [{ system: PROVENANCE_AGENT_TYPE_SYSTEM, code: 'author', display: 'Author' }] },
        role: [{ coding: [{ ...AI_DEVICE_TYPE }] }],
        who: { reference: refs.device, type: 'Device' },
      },
    ],
    ...(entity.length ? { entity } : {}),
  };
}
