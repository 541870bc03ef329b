import { describe, expect, it } from 'vitest';
import { PagePrefaulter } from '../../src/imaging/page-prefault.js';

describe('PagePrefaulter', () => {
  it('never overwrites what the writer claimed, whatever the interleaving', async () => {
    for (let trial = 0; trial < 5; trial++) {
      const bytes = new Uint8Array(64 * 1024 + 123);
      const pf = new PagePrefaulter(bytes, { chunkBytes: 4096, concurrency: 3 });
      const slice = 1000 + trial * 300;
      for (let start = 0; start < bytes.length; start += slice) {
        const end = Math.min(bytes.length, start + slice);
        const wait = pf.claim(start, end);
        if (wait) await wait;
        bytes.fill(7, start, end);
        if (start % (3 * slice) === 0) await new Promise((r) => setImmediate(r));
      }
      await pf.stop();
      // Give any stray read a chance to land (there must be none).
      await new Promise((r) => setTimeout(r, 20));
      expect(bytes.every((b) => b === 7)).toBe(true);
    }
  });

  it('stop() with nothing claimed leaves the buffer zeroed and releases /dev/zero', async () => {
    const bytes = new Uint8Array(32 * 1024).fill(0);
    const pf = new PagePrefaulter(bytes, { chunkBytes: 4096 });
    await pf.stop();
    expect(pf.claim(0, 10)).toBeUndefined();
    expect(bytes.every((b) => b === 0)).toBe(true);
  });
});
