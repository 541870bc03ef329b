import { lookup as dnsLookup } from 'node:dns';
import type { LookupAddress, LookupOptions } from 'node:dns';
import { isIP } from 'node:net';
import type ipaddrModule from 'ipaddr.js';
import { lazyModule } from '../util/lazy-module.js';

const ipaddrLib = lazyModule<typeof ipaddrModule>(import.meta.url, 'ipaddr.js');

/**
 * Which network addresses an outbound call may reach, decided on parsed addresses, never on the text of a
 * host name (`127.0.0.1.attacker.example` is a DNS name like any other). One module for every outbound
 * caller: the plain-http-to-loopback rule (config, DICOMweb, CDS prefetch) and the "public addresses only"
 * rule for URLs a remote party chose (a CDS client's fhirServer), checked at connect time on the address
 * actually dialled so a name that resolves differently later (DNS rebinding) is caught too.
 */
export type AddressClass = 'loopback' | 'private' | 'link-local' | 'public' | 'special';

/**
 * Class of an IP address. ipaddr.js names the IANA special-purpose ranges (RFC 6890); `unicast` is what is
 * left, i.e. globally routable. An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is judged as its IPv4 address.
 */
export function classifyAddress(ip: string): AddressClass {
  const ipaddr = ipaddrLib();
  const bare = ip.replace(/^\[|\]$/g, '');
  if (!ipaddr.isValid(bare)) throw new TypeError(`not an IP address: ${ip}`);
  let addr = ipaddr.parse(bare);
  if (addr.kind() === 'ipv6' && (addr as ipaddrModule.IPv6).isIPv4MappedAddress()) addr = (addr as ipaddrModule.IPv6).toIPv4Address();
  const range = addr.range();
  if (range === 'loopback') return 'loopback';
  if (range === 'private' || range === 'uniqueLocal' || range === 'carrierGradeNat') return 'private';
  if (range === 'linkLocal') return 'link-local';
  if (range === 'unicast') return 'public';
  return 'special';
}

/**
 * Loopback by address: an IP literal in 127/8 or ::1 (also IPv4-mapped), or the name `localhost`, which
 * RFC 6761 section 6.3 reserves for loopback. Any other name is not loopback, whatever it looks like.
 */
export function isLoopbackHostname(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost') return true;
  return isIP(h) !== 0 && classifyAddress(h) === 'loopback';
}

export function isLoopbackUrl(url: string): boolean {
  return isLoopbackHostname(new URL(url).hostname);
}

export class AddressRefusedError extends Error {
  override readonly name = 'AddressRefusedError';
  readonly code = 'VBMD_ADDRESS_REFUSED';
  constructor(
    readonly hostname: string,
    readonly addressClass: AddressClass,
  ) {
    super(`${hostname} is a ${addressClass} address, which this call may not reach`);
  }
}

/** Whether an address class may be dialled: public always, the rest only when allowed. */
export function addressAllowed(cls: AddressClass, allowNonPublic: boolean): boolean {
  return cls === 'public' || allowNonPublic;
}

/** Throws AddressRefusedError when `hostname` is an IP literal of a class that may not be dialled. */
export function checkLiteralHost(hostname: string, allowNonPublic: boolean): void {
  const h = hostname.replace(/^\[|\]$/g, '');
  if (isIP(h) === 0) return;
  const cls = classifyAddress(h);
  if (!addressAllowed(cls, allowNonPublic)) throw new AddressRefusedError(hostname, cls);
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/**
 * A `lookup` for net/tls connect (and undici's `connect` option) that resolves as usual and refuses the
 * connection when any resolved address is not allowed. Node does not call `lookup` for IP literals:
 * check those with checkLiteralHost before connecting.
 */
export function checkedLookup(allowNonPublic: boolean) {
  return (hostname: string, options: LookupOptions, callback: LookupCallback): void => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, []);
      const list = addresses as LookupAddress[];
      for (const a of list) {
        const cls = classifyAddress(a.address);
        if (!addressAllowed(cls, allowNonPublic)) return callback(new AddressRefusedError(hostname, cls) as unknown as NodeJS.ErrnoException, []);
      }
      if (options.all) return callback(null, list);
      const first = list[0];
      if (!first) return callback(Object.assign(new Error(`${hostname} has no address`), { code: 'ENOTFOUND' }), []);
      callback(null, first.address, first.family);
    });
  };
}
