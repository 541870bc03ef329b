import { Agent, request } from 'undici';
import { VbmdError } from '../util/errors.js';
import { AddressRefusedError, checkLiteralHost, checkedLookup, isLoopbackHostname } from './address-policy.js';

/**
 * One outbound GET of a JSON document under an explicit policy: which addresses may be dialled (checked on
 * the resolved address at connect time), plain http only to loopback unless allowed, no redirects followed
 * (a 3xx is an error, so a listed server cannot bounce the caller's token elsewhere), and a cap on the bytes
 * read, so the parse that follows is bounded too. Built on undici; see address-policy.ts for the rules.
 */
export type OutboundFailure = 'refused-address' | 'insecure-http' | 'redirect' | 'too-large' | 'status' | 'timeout' | 'network' | 'not-json';

export class OutboundError extends VbmdError {
  constructor(
    readonly reason: OutboundFailure,
    message: string,
    readonly status?: number,
    options?: { cause?: unknown },
  ) {
    super('remote', message, { reason, ...(status !== undefined ? { status } : {}) }, options);
  }
}

export interface GuardedGetOptions {
  headers?: Record<string, string>;
  /** Loopback, private, link-local and other non-public addresses may be dialled (an operator listed this URL). */
  allowNonPublic: boolean;
  /** Plain http to a non-loopback host (otherwise refused: tokens would cross the network in clear). */
  allowInsecureHttp: boolean;
  /** Largest body read; a bigger one is abandoned unread. */
  maxBytes: number;
  timeoutMs: number;
  signal?: AbortSignal;
}

const agents = new Map<boolean, Agent>();
function agentFor(allowNonPublic: boolean): Agent {
  let a = agents.get(allowNonPublic);
  if (!a) {
    a = new Agent({ connect: allowNonPublic ? {} : { lookup: checkedLookup(false) }, keepAliveTimeout: 10_000 });
    agents.set(allowNonPublic, a);
  }
  return a;
}

/** The cause chain of an undici error, looking for our refusal (undici wraps connect errors). */
function refusal(e: unknown): AddressRefusedError | undefined {
  for (let c: unknown = e, i = 0; c && i < 5; c = (c as { cause?: unknown }).cause, i++) {
    if (c instanceof AddressRefusedError) return c;
  }
  return undefined;
}

/** GETs `url` and returns its parsed JSON body; every failure is an OutboundError naming the origin. */
export async function getJsonGuarded(url: string, o: GuardedGetOptions): Promise<unknown> {
  const u = new URL(url);
  const origin = u.origin;
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new OutboundError('insecure-http', `${origin} is not an http(s) URL.`);
  if (u.protocol === 'http:' && !o.allowInsecureHttp && !isLoopbackHostname(u.hostname)) {
    throw new OutboundError('insecure-http', `Refusing plain http to ${origin}: use https.`);
  }
  try {
    checkLiteralHost(u.hostname, o.allowNonPublic);
  } catch (e) {
    throw new OutboundError('refused-address', `Refusing to call ${origin}: ${(e as Error).message}.`, undefined, { cause: e });
  }
  const signal = o.signal ? AbortSignal.any([o.signal, AbortSignal.timeout(o.timeoutMs)]) : AbortSignal.timeout(o.timeoutMs);
  let res: Awaited<ReturnType<typeof request>>;
  try {
    res = await request(u, { method: 'GET', headers: o.headers ?? {}, dispatcher: agentFor(o.allowNonPublic), signal, maxRedirections: 0 });
  } catch (e) {
    const refused = refusal(e);
    if (refused) throw new OutboundError('refused-address', `Refusing to call ${origin}: ${refused.message}.`, undefined, { cause: e });
    if (signal.aborted) throw new OutboundError('timeout', `No answer from ${origin} within ${o.timeoutMs} ms.`, undefined, { cause: e });
    throw new OutboundError('network', `Could not reach ${origin}: ${(e as Error).message}.`, undefined, { cause: e });
  }
  const { statusCode, headers, body } = res;
  if (statusCode >= 300) {
    await body.dump().catch(() => undefined);
    if (statusCode < 400) throw new OutboundError('redirect', `${origin} answered a redirect (${statusCode}); redirects are not followed.`, statusCode);
    throw new OutboundError('status', `${origin} answered ${statusCode}.`, statusCode);
  }
  const declared = Number(headers['content-length']);
  if (Number.isFinite(declared) && declared > o.maxBytes) {
    body.destroy();
    throw new OutboundError('too-large', `${origin} sent ${declared} bytes, more than the ${o.maxBytes} allowed.`);
  }
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of body) {
      total += (chunk as Buffer).length;
      if (total > o.maxBytes) {
        body.destroy();
        throw new OutboundError('too-large', `${origin} sent more than the ${o.maxBytes} bytes allowed.`);
      }
      chunks.push(chunk as Buffer);
    }
  } catch (e) {
    if (e instanceof OutboundError) throw e;
    if (signal.aborted) throw new OutboundError('timeout', `${origin} did not finish its answer within ${o.timeoutMs} ms.`, undefined, { cause: e });
    throw new OutboundError('network', `The answer from ${origin} broke off: ${(e as Error).message}.`, undefined, { cause: e });
  }
  try {
    return JSON.parse(Buffer.concat(chunks, total).toString('utf8')) as unknown;
  } catch (e) {
    throw new OutboundError('not-json', `${origin} did not answer JSON.`, statusCode, { cause: e });
  }
}
