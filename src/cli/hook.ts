import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { readClientKeyFile, signClientJwt } from '../../cds-hooks/client-jwt.js';
import { fillTemplate } from '../../cds-hooks/prefetch.js';
import { config } from '../config.js';
import { ACCESSION_IDENTIFIER_TYPE } from '../fhir/codes.js';
import { OutboundClient } from '../net/outbound.js';
import { VbmdError } from '../util/errors.js';
import { loadOrCreateSandboxTokens, sandboxPaths } from '../sandbox/local-files.js';
import { COMMAND_SUMMARIES } from './summaries.js';

/**
 * `vbmd hook <order-sign|order-select|patient-view> --patient ID`: plays the EHR. Reads the service's
 * discovery document, fills its prefetch templates from the FHIR server (the sandbox's by default), signs
 * a fresh client JWT for the exact URL, sends the hook and prints the answer. For demos and scripts.
 */
const HOOKS = {
  'order-sign': 'vbmd-order-sign',
  'order-select': 'vbmd-order-select',
  'patient-view': 'vbmd-patient-view',
} as const;
type HookName = keyof typeof HOOKS;

const CPT = 'http://www.ama-assn.org/go/cpt';
/** Discovery, card and prefetch answers are small JSON. */
const MAX_REPLY_BYTES = 16 * 1024 * 1024;

interface HookOptions {
  patient: string;
  url?: string;
  user: string;
  code: string;
  system: string;
  accession?: string;
  serviceRequest?: string;
  prefetch: boolean;
  fhir?: string;
  fhirToken?: string;
  key?: string;
  json?: boolean;
}

export function registerHook(program: Command): void {
  program
    .command('hook')
    .description(COMMAND_SUMMARIES.hook)
    .argument('<hook>', 'order-sign | order-select | patient-view')
    .requiredOption('--patient <id>', 'FHIR Patient id (context.patientId)')
    .option('--url <url>', 'service base URL (default http://127.0.0.1:$PORT)')
    .option('--user <ref>', 'context.userId', 'Practitioner/sandbox-clinician')
    .option('--code <code>', 'order code (order hooks)', '71250')
    .option('--system <uri>', 'order code system (order hooks)', CPT)
    .option('--accession <number>', 'accession number on the draft ServiceRequest (order hooks)')
    .option('--service-request <id>', 'id of the draft ServiceRequest (order hooks; default random)')
    .option('--no-prefetch', 'send no prefetch (the service must then fetch or answer 412)')
    .option('--fhir <url>', 'FHIR server to fill prefetch from (default <url>/fhir, the sandbox)')
    .option('--fhir-token <token>', 'bearer token for that FHIR server (default: the sandbox service token)')
    .option('--key <file>', 'CDS client key file {iss, privateJwk, publicJwk} (default: the sandbox EHR key)')
    .option('--json', 'print the raw response JSON only')
    .action(async (hook: string, opts: HookOptions) => {
      if (!(hook in HOOKS)) throw new VbmdError('bad-input', `Unknown hook "${hook}": use order-sign, order-select or patient-view.`);
      const out = await sendHook(hook as HookName, opts);
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(out.body, null, 2)}\n`);
      } else {
        process.stdout.write(`HTTP ${out.status} from ${out.url}\n`);
        const cards = (out.body as { cards?: { indicator: string; summary: string; detail?: string; links?: { url: string }[] }[] })?.cards;
        if (Array.isArray(cards)) {
          if (cards.length === 0) process.stdout.write('(no cards)\n');
          for (const c of cards) {
            process.stdout.write(`\n[${c.indicator}] ${c.summary}\n${c.detail ? `${c.detail}\n` : ''}${(c.links ?? []).map((l) => `link: ${l.url}\n`).join('')}`);
          }
        } else {
          process.stdout.write(`${JSON.stringify(out.body, null, 2)}\n`);
        }
      }
      if (out.status >= 400) process.exitCode = 1;
    });
}

type ServiceCall = (method: 'GET' | 'POST', url: string, body?: unknown) => Promise<{ status: number; body: unknown }>;
type ServiceEntry = { id: string; prefetch?: Record<string, string> };

export async function sendHook(hook: HookName, opts: HookOptions): Promise<{ status: number; url: string; body: unknown }> {
  const cfg = config();
  const base = (opts.url ?? `http://127.0.0.1:${cfg.PORT}`).replace(/\/+$/, '');
  const dataDir = resolve(cfg.VBMD_DATA_DIR);
  const keyFile = opts.key ?? sandboxPaths(dataDir).cdsClientKey;
  if (!existsSync(keyFile)) {
    throw new VbmdError('config', `No CDS client key at ${keyFile}: start the sandbox once (npm start) or pass --key FILE.`);
  }
  const key = await readClientKeyFile(keyFile);
  const fhirBase = (opts.fhir ?? `${base}/fhir`).replace(/\/+$/, '');
  const fhirToken = opts.fhirToken ?? (opts.fhir === undefined && existsSync(sandboxPaths(dataDir).tokens) ? loadOrCreateSandboxTokens(dataDir).serviceToken : undefined);

  // A stand-in EHR calling the service: no retries (a hook is sent once), the outbound layer's TLS policy.
  const net = new OutboundClient({ label: 'vbmd service', retry: { retries: 0 }, timeoutMs: 15_000, allowInsecureHttp: cfg.ALLOW_INSECURE_HTTP });
  const call = serviceCaller(net, key, base);

  const discovery = await call('GET', `${base}/cds-services`);
  if (discovery.status !== 200) throw new VbmdError('remote', `Discovery at ${base}/cds-services answered HTTP ${discovery.status}; check the client key (${keyFile}).`);
  const service = (discovery.body as { services: ServiceEntry[] }).services.find((s) => s.id === HOOKS[hook]);
  if (!service) throw new VbmdError('remote', `The service at ${base} has no ${HOOKS[hook]} service.`);

  const context = hookContext(hook, opts);
  const prefetch = opts.prefetch ? await fillPrefetch(net, service, context, fhirBase, fhirToken) : {};
  const url = `${base}/cds-services/${HOOKS[hook]}`;
  const body = {
    hook,
    hookInstance: randomUUID(),
    context,
    ...(opts.prefetch ? { prefetch } : {}),
  };
  const res = await call('POST', url, body);
  return { status: res.status, url, body: res.body };
}

/** A call to the service with a fresh client JWT for its exact URL; the answer parsed as JSON where it is. */
function serviceCaller(net: OutboundClient, key: Awaited<ReturnType<typeof readClientKeyFile>>, base: string): ServiceCall {
  return async (method, url, body) => {
    let res: Awaited<ReturnType<OutboundClient['fetch']>>;
    try {
      res = await net.fetch({
        method,
        url,
        headers: { authorization: `Bearer ${await signClientJwt(key, url)}`, accept: 'application/json', ...(body ? { 'content-type': 'application/json' } : {}) },
        ...(body ? { body: JSON.stringify(body) } : {}),
      }, MAX_REPLY_BYTES);
    } catch (e) {
      throw new VbmdError('remote', `Cannot reach the vbmd service at ${base} (${(e as Error).message}); is it running (npm start)?`);
    }
    const text = res.bytes.toString('utf8');
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      /* not JSON: print as text */
    }
    return { status: res.status, body: parsed };
  };
}

/** The hook's context: user and patient, and for the order hooks a draft ServiceRequest (and its selection). */
function hookContext(hook: HookName, opts: HookOptions): Record<string, unknown> {
  const context: Record<string, unknown> = { userId: opts.user, patientId: opts.patient };
  if (hook !== 'patient-view') {
    const srId = opts.serviceRequest ?? `sr-${randomUUID().slice(0, 8)}`;
    context.draftOrders = {
      resourceType: 'Bundle',
      type: 'collection',
      entry: [
        {
          resource: {
            resourceType: 'ServiceRequest',
            id: srId,
            status: 'draft',
            intent: 'order',
            subject: { reference: `Patient/${opts.patient}` },
            code: { coding: [{ system: opts.system, code: opts.code }] },
            ...(opts.accession ? { identifier: [{ type: { coding: [{ ...ACCESSION_IDENTIFIER_TYPE }] }, value: opts.accession }] } : {}),
          },
        },
      ],
    };
    if (hook === 'order-select') context.selections = [`ServiceRequest/${srId}`];
  }
  return context;
}

/** The service's prefetch templates filled from the context and read from the FHIR server. */
async function fillPrefetch(net: OutboundClient, service: ServiceEntry, context: Record<string, unknown>, fhirBase: string, fhirToken: string | undefined): Promise<Record<string, unknown>> {
  const prefetch: Record<string, unknown> = {};
  for (const [k, template] of Object.entries(service.prefetch ?? {})) {
    const q = fillTemplate(template, context);
    if (!q) continue;
    const res = await net.fetch({
      url: `${fhirBase}/${q}`,
      headers: { accept: 'application/fhir+json', ...(fhirToken ? { authorization: `Bearer ${fhirToken}` } : {}) },
    }, MAX_REPLY_BYTES).catch((e: Error) => {
      throw new VbmdError('remote', `Cannot read prefetch "${k}" from ${fhirBase} (${e.message}).`);
    });
    if (res.status !== 200) throw new VbmdError('remote', `The FHIR server ${fhirBase} answered HTTP ${res.status} to prefetch "${k}"; pass --fhir-token or --no-prefetch.`);
    try {
      prefetch[k] = JSON.parse(res.bytes.toString('utf8')) as unknown;
    } catch {
      throw new VbmdError('remote', `The FHIR server ${fhirBase} answered prefetch "${k}" with a body that is not JSON.`);
    }
  }
  return prefetch;
}
