import type { Device } from 'fhir/r4.js';
import type { VbmdReport } from '../bmd/report.js';
import {
  AI_DEVICE_PROFILE,
  AI_DEVICE_TYPE,
  AI_KIND_DEEP_LEARNING,
  AI_KIND_EXTENSION,
  AI_KIND_RULE_BASED,
  AI_MODEL_CARD_EXTENSION,
  ALGORITHM_DEVICE_TYPE,
  ALGORITHM_VERSION_CODE,
  MODEL_SHA256_CODE,
  MODEL_VERSION_CODE,
} from './codes.js';
import type { AnalysisContext } from './context.js';
import { deviceIdentifier } from './identifiers.js';

/** Who made the software; Device.manufacturer is free text in R4. */
export const VBMD_MANUFACTURER = 'vbmd project (open source; not a cleared medical device)';

/**
 * The algorithm as a Device (DICOM TID 4019 "Algorithm Identification": name + version), one per engine or
 * model version: every Observation points at the exact weights (sha256) or engine build that made it.
 * Typed as HL7 AI Transparency on FHIR's AI-Device: type AIdeviceTypeCS#Artificial-Intelligence (plus the
 * project's own type), AIKind Deep-Learning-Models when the network ran (Rule-Based-Systems for the
 * geometric engine alone), and the model card by the modelCardDescription extension.
 * Not patient-specific, so it carries no subject and is shared by all analyses of that version.
 */
export function buildDevice(report: VbmdReport, ctx: Pick<AnalysisContext, 'tags'>, modelCard?: string): Device {
  const engine = report.software ?? { name: 'vbmd', version: 'unknown' };
  const model = report.model ?? undefined;
  const versions: NonNullable<Device['version']> = [
    { type: { coding: [{ ...ALGORITHM_VERSION_CODE }], text: `${engine.name} engine version` }, value: engine.version },
  ];
  if (model) {
    versions.push({ type: { coding: [{ ...MODEL_VERSION_CODE }], text: `${model.name} model version` }, value: model.version });
    versions.push({ type: { coding: [{ ...MODEL_SHA256_CODE }], text: 'model file SHA-256' }, value: model.sha256 });
  }
  return {
    resourceType: 'Device',
    meta: { profile: [AI_DEVICE_PROFILE], ...(ctx.tags?.length ? { tag: ctx.tags } : {}) },
    extension: [
      { url: AI_KIND_EXTENSION, valueCodeableConcept: { coding: [{ ...(model ? AI_KIND_DEEP_LEARNING : AI_KIND_RULE_BASED) }] } },
      ...(modelCard ? [{ url: AI_MODEL_CARD_EXTENSION, valueReference: { reference: modelCard, type: 'DocumentReference' } }] : []),
    ],
    identifier: [deviceIdentifier(report)],
    status: 'active',
    manufacturer: VBMD_MANUFACTURER,
    deviceName: [
      { name: model ? `${engine.name} with ${model.name}` : engine.name, type: 'manufacturer-name' },
      ...(model ? [{ name: model.name, type: 'model-name' as const }] : []),
    ],
    type: { coding: [{ ...AI_DEVICE_TYPE }, { ...ALGORITHM_DEVICE_TYPE }], text: ALGORITHM_DEVICE_TYPE.display },
    version: versions,
    note: [
      {
        text: model
          ? `Trabecular vBMD from CT by ${engine.name} ${engine.version} with model ${model.name} ${model.version} (sha256 ${model.sha256}).`
          : `Trabecular vBMD from CT by ${engine.name} ${engine.version} (geometric ROI and calibration; no model).`,
      },
    ],
  };
}
