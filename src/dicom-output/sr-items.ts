import { ds } from '../dicom/write-series.js';
import { codeItem, type Code } from './codes.js';
import type { Dataset } from './part10.js';

/**
 * SR content items (PS3.3 C.17.3) as naturalized dcmjs datasets. Relationship types and value types follow
 * the Comprehensive SR content constraints (PS3.3 A.35.3): CONTAINS only from a CONTAINER, HAS CONCEPT MOD
 * to CODE/TEXT, HAS OBS CONTEXT to TEXT/CODE/UIDREF/NUM.
 */
export type Relationship = 'CONTAINS' | 'HAS CONCEPT MOD' | 'HAS OBS CONTEXT' | 'HAS PROPERTIES' | 'INFERRED FROM';

function withChildren(item: Dataset, children?: Dataset[]): Dataset {
  return children && children.length > 0 ? { ...item, ContentSequence: children } : item;
}

export function containerItem(rel: Relationship | null, concept: Code, children: Dataset[], templateId?: string): Dataset {
  return withChildren(
    {
      ...(rel ? { RelationshipType: rel } : {}),
      ValueType: 'CONTAINER',
      ConceptNameCodeSequence: [codeItem(concept)],
      ContinuityOfContent: 'SEPARATE',
      ...(templateId ? { ContentTemplateSequence: [{ MappingResource: 'DCMR', TemplateIdentifier: templateId }] } : {}),
    },
    children,
  );
}

export function codeContent(rel: Relationship, concept: Code, value: Code, children?: Dataset[]): Dataset {
  return withChildren({ RelationshipType: rel, ValueType: 'CODE', ConceptNameCodeSequence: [codeItem(concept)], ConceptCodeSequence: [codeItem(value)] }, children);
}

export function textContent(rel: Relationship, concept: Code, value: string): Dataset {
  return { RelationshipType: rel, ValueType: 'TEXT', ConceptNameCodeSequence: [codeItem(concept)], TextValue: value };
}

export function uidContent(rel: Relationship, concept: Code, uid: string): Dataset {
  return { RelationshipType: rel, ValueType: 'UIDREF', ConceptNameCodeSequence: [codeItem(concept)], UID: uid };
}

export function numContent(rel: Relationship, concept: Code, value: number, unit: Code, children?: Dataset[]): Dataset {
  return withChildren(
    {
      RelationshipType: rel,
      ValueType: 'NUM',
      ConceptNameCodeSequence: [codeItem(concept)],
      MeasuredValueSequence: [{ MeasurementUnitsCodeSequence: [codeItem(unit)], NumericValue: ds(value) }],
    },
    children,
  );
}

export function imageContent(rel: Relationship, ref: { sopClassUid: string; sopInstanceUid: string; segmentNumber?: number }, concept?: Code): Dataset {
  return {
    RelationshipType: rel,
    ValueType: 'IMAGE',
    ...(concept ? { ConceptNameCodeSequence: [codeItem(concept)] } : {}),
    ReferencedSOPSequence: [
      {
        ReferencedSOPClassUID: ref.sopClassUid,
        ReferencedSOPInstanceUID: ref.sopInstanceUid,
        ...(ref.segmentNumber !== undefined ? { ReferencedSegmentNumber: ref.segmentNumber } : {}),
      },
    ],
  };
}

export function compositeContent(rel: Relationship, ref: { sopClassUid: string; sopInstanceUid: string }): Dataset {
  return { RelationshipType: rel, ValueType: 'COMPOSITE', ReferencedSOPSequence: [{ ReferencedSOPClassUID: ref.sopClassUid, ReferencedSOPInstanceUID: ref.sopInstanceUid }] };
}

/** Evidence sequence items (Hierarchical SOP Instance Reference Macro, PS3.3 C.17.2.1): one study, per series. */
export function evidence(studyUid: string, bySeries: Map<string, { sopClassUid: string; sopInstanceUid: string }[]>): Dataset[] {
  return [
    {
      StudyInstanceUID: studyUid,
      ReferencedSeriesSequence: [...bySeries].map(([seriesUid, refs]) => ({
        SeriesInstanceUID: seriesUid,
        ReferencedSOPSequence: refs.map((r) => ({ ReferencedSOPClassUID: r.sopClassUid, ReferencedSOPInstanceUID: r.sopInstanceUid })),
      })),
    },
  ];
}
