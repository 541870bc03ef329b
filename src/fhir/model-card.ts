import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { DocumentReference } from 'fhir/r4.js';
import { VbmdError } from '../util/errors.js';
import { AI_MODEL_CARD_MARKDOWN, AI_MODEL_CARD_PROFILE, AI_MODEL_CARD_TYPE } from './codes.js';
import type { AnalysisContext } from './context.js';
import { modelCardIdentifier } from './identifiers.js';

/**
 * The model card (models/MODEL_CARD.md) as an AI Transparency on FHIR "AI-ModelCard" DocumentReference
 * (type AIinputsCS#AIModelCard, category Markdown Format, the Markdown attached), referenced from the
 * algorithm Device (modelCardDescription extension) and from every Provenance (entity, role derivation).
 * One DocumentReference per card content: its identifier is the card's SHA-256.
 */
export interface ModelCard {
  markdown: Buffer;
  sha256Hex: string;
  /** R4 Attachment.hash: SHA-1 of the data, base64. */
  sha1Base64: string;
  title: string;
}

export const DEFAULT_MODEL_CARD_PATH = fileURLToPath(new URL('../../models/MODEL_CARD.md', import.meta.url));

const cache = new Map<string, ModelCard>();

/** Reads and hashes the card once per path. A missing card is a packaging error: the results of a model
 * must not reach the record without it, so this throws with the path. */
export function loadModelCard(path: string = DEFAULT_MODEL_CARD_PATH): ModelCard {
  const hit = cache.get(path);
  if (hit) return hit;
  let markdown: Buffer;
  try {
    markdown = readFileSync(path);
  } catch (e) {
    throw new VbmdError('config', `The model card ${path} cannot be read (${(e as Error).message}); it is written to FHIR with every model result, so nothing was written.`);
  }
  const title = /^#\s+(.+)$/m.exec(markdown.toString('utf8'))?.[1]?.trim() ?? 'Model card';
  const card: ModelCard = {
    markdown,
    sha256Hex: createHash('sha256').update(markdown).digest('hex'),
    sha1Base64: createHash('sha1').update(markdown).digest('base64'),
    title,
  };
  cache.set(path, card);
  return card;
}

export function buildModelCardDocument(card: ModelCard, ctx: Pick<AnalysisContext, 'tags'>): DocumentReference {
  return {
    resourceType: 'DocumentReference',
    meta: { profile: [AI_MODEL_CARD_PROFILE], ...(ctx.tags?.length ? { tag: [...ctx.tags] } : {}) },
    identifier: [modelCardIdentifier(card.sha256Hex)],
    status: 'current',
    type: { coding: [{ ...AI_MODEL_CARD_TYPE }], text: 'AI model card' },
    category: [{ coding: [{ ...AI_MODEL_CARD_MARKDOWN }] }],
    description: `${card.title} (sha256 ${card.sha256Hex}): what the vBMD model was trained and tested on, its intended use and limits.`,
    content: [
      {
        attachment: {
          contentType: 'text/markdown',
          language: 'en',
          data: card.markdown.toString('base64'),
          size: card.markdown.length,
          hash: card.sha1Base64,
          title: card.title,
        },
      },
    ],
  };
}
