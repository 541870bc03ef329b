import type { Resource } from 'fhir/r4.js';

/** CDS Hooks 2.0 response types (STANDARDS.md section 1, "Response"). */
export interface CdsCoding {
  system: string;
  code: string;
  display?: string;
}

export interface CdsAction {
  type: 'create' | 'update' | 'delete';
  description: string;
  resource?: Resource;
  resourceId?: string;
}

export interface CdsSuggestion {
  label: string;
  uuid?: string;
  isRecommended?: boolean;
  actions?: CdsAction[];
}

export interface CdsLink {
  label: string;
  url: string;
  type: 'absolute' | 'smart';
  /** Only for smart links: passed to the app in the SMART token response. */
  appContext?: string;
}

export interface CdsCard {
  uuid?: string;
  /** < 140 characters. */
  summary: string;
  detail?: string;
  indicator: 'info' | 'warning' | 'critical';
  source: { label: string; url?: string; icon?: string; topic?: CdsCoding };
  suggestions?: CdsSuggestion[];
  selectionBehavior?: 'at-most-one' | 'any';
  overrideReasons?: CdsCoding[];
  links?: CdsLink[];
}

export interface CdsResponse {
  cards: CdsCard[];
}

export const CARD_SUMMARY_MAX = 139;
