import { randomUUID } from 'node:crypto';
import type { ServiceRequest } from 'fhir/r4.js';
import { ACCESSION_IDENTIFIER_TYPE } from '../src/fhir/codes.js';
import type { CdsCard } from './card-types.js';
import { CARD_SOURCE, clampSummary, formatMgCm3, isoDate, mdText } from './card-text.js';
import type { CtValueSet } from './ct-value-set.js';
import { bundleResources } from './vbmd-results.js';
import type { VbmdResult } from './vbmd-results.js';

/**
 * order-select / order-sign: when a draft imaging order is a CT in the value set, say that bone density will
 * be measured from it (and show the last result), and hand back the orders to watch. Other orders: no card.
 * The images do not exist yet, so this never waits for anything (DESIGN.md "Flow").
 */
export interface MatchedCtOrder {
  serviceRequestId?: string;
  code: { system: string; code: string; display?: string };
  /** From ServiceRequest.identifier of type v2-0203 ACSN; what the QIDO poller looks for. */
  accessionNumber?: string;
  /** That identifier's system: the accession's issuer, checked against the study's when both are given. */
  accessionSystem?: string;
}

export function accessionIdentifierOf(sr: ServiceRequest): { value: string; system?: string } | undefined {
  for (const id of sr.identifier ?? []) {
    const isAcsn = (id.type?.coding ?? []).some((c) => c.system === ACCESSION_IDENTIFIER_TYPE.system && c.code === ACCESSION_IDENTIFIER_TYPE.code);
    if (isAcsn && id.value) return { value: id.value, ...(id.system ? { system: id.system } : {}) };
  }
  return undefined;
}

/**
 * CT orders among the draft orders (for order-select only the selected ones). Order-sign 1.1 may also carry
 * re-signed active orders; both draft and active count.
 */
export function matchCtOrders(draftOrders: unknown, valueSet: CtValueSet, selections?: readonly string[]): MatchedCtOrder[] {
  const out: MatchedCtOrder[] = [];
  for (const r of bundleResources(draftOrders)) {
    const sr = r as ServiceRequest;
    if (sr.resourceType !== 'ServiceRequest') continue;
    if (sr.status !== 'draft' && sr.status !== 'active') continue;
    if (selections && !(sr.id && selections.includes(`ServiceRequest/${sr.id}`))) continue;
    const code = valueSet.match(sr.code?.coding);
    if (!code) continue;
    const acc = accessionIdentifierOf(sr);
    out.push({
      ...(sr.id ? { serviceRequestId: sr.id } : {}),
      code,
      ...(acc ? { accessionNumber: acc.value } : {}),
      ...(acc?.system ? { accessionSystem: acc.system } : {}),
    });
  }
  return out;
}

export interface OrderCardOptions {
  smartLaunchUrl: string;
  newUuid?: () => string;
}

/**
 * `latest`: the newest usable result, null when the record has none, undefined when the service could not
 * look (no prefetch and no FHIR access): the card then says so instead of implying there is no prior.
 */
export function orderCards(orders: readonly MatchedCtOrder[], latest: VbmdResult | null | undefined, options: OrderCardOptions): CdsCard[] {
  if (orders.length === 0) return [];
  const prior = latest ? `; last ${formatMgCm3(latest.vbmdMgCm3)} on ${isoDate(latest.effectiveMs)}` : '';
  const summary = clampSummary(`Bone density (vBMD) will be measured from this CT${prior}`);
  const lines: string[] = [];
  const names = orders.map((o) => mdText(o.code.display ?? o.code.code));
  lines.push(
    `vbmd will measure vertebral trabecular bone mineral density (mg/cm3) from ${orders.length === 1 ? 'this scan' : 'these scans'} (${names.join(', ')}) ` +
      'once the images reach the PACS, at no extra dose or cost. The result is written to the chart and shown here when the patient chart is opened.',
  );
  lines.push('');
  if (latest) {
    lines.push(
      `**Last result:** ${formatMgCm3(latest.vbmdMgCm3)} (${latest.category === 'osteopenia' ? 'low bone density' : latest.category} range) on the CT of ${isoDate(latest.effectiveMs)}.`,
    );
  } else if (latest === null) {
    lines.push('No earlier vBMD result on record.');
  } else {
    lines.push('Earlier results could not be checked (no prefetch data and no FHIR access in this request).');
  }
  if (orders.some((o) => !o.accessionNumber)) {
    lines.push('', 'The order has no accession number yet: the study is matched when the PACS or router reports it.');
  }
  const card: CdsCard = {
    uuid: (options.newUuid ?? randomUUID)(),
    summary,
    indicator: 'info',
    detail: lines.join('\n'),
    source: { ...CARD_SOURCE, topic: { ...CARD_SOURCE.topic } },
  };
  if (latest) card.links = [{ label: 'Open the bone density trend (vBMD app)', url: options.smartLaunchUrl, type: 'smart' }];
  return [card];
}
