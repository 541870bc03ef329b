import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { RowSink } from '../../src/population/output/row-sink.js';

const dir = mkdtempSync(join(tmpdir(), 'vbmd-rowsink-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('RowSink abort', () => {
  it('leaves no .part file behind, even when aborted before the file finished opening', async () => {
    // The file stream opens asynchronously; removing FILE.part before that open completed used to let the
    // open create it again, empty (about two in three of these runs before the fix).
    const left: string[] = [];
    for (let i = 0; i < 100; i++) {
      const path = join(dir, `cohort-${i}.csv`);
      const sink = new RowSink('csv', { path });
      await sink.write([]); // the header: opens the file
      await sink.abort();
      await new Promise((r) => setTimeout(r, 2));
      if (existsSync(`${path}.part`) || existsSync(path)) left.push(path);
    }
    expect(left).toEqual([]);
  });
});
