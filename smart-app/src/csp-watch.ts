/**
 * The browser reports a request the page's Content-Security-Policy blocked only as an event (the fetch itself
 * fails with a bare "Failed to fetch"). This keeps the last one so an error view can say what was blocked and
 * which setting of the vbmd service allows it.
 */
export interface CspBlock {
  directive: string;
  /** Origin of the blocked URL (or the browser's keyword, e.g. "inline"). */
  origin: string;
}

let last: CspBlock | null = null;

export function watchCspBlocks(): void {
  document.addEventListener('securitypolicyviolation', (e) => {
    let origin = e.blockedURI;
    try {
      origin = new URL(e.blockedURI).origin;
    } catch {
      // "inline", "eval": not a URL; kept as the browser gave it.
    }
    last = { directive: e.effectiveDirective, origin };
  });
}

export function lastCspBlock(): CspBlock | null {
  return last;
}

/** The vbmd setting that lets the app reach or be framed by that origin. */
export function settingFor(block: CspBlock): string {
  return block.directive === 'frame-ancestors' ? 'SMART_FRAME_ANCESTORS' : 'SMART_CONNECT_ORIGINS';
}

/** Detail line for the error view. */
export function describeBlock(block: CspBlock): string {
  return `The app's Content-Security-Policy (${block.directive}) blocked a request to ${block.origin}. Set ${settingFor(block)}=${block.origin} on the vbmd service (with any origins already there) and launch again.`;
}

/** The block behind a failed request, if any: the violation event may arrive just after the rejection. */
export async function blockBehind(): Promise<CspBlock | null> {
  if (last) return last;
  await new Promise((r) => setTimeout(r, 150));
  return last;
}
