import { describe, expect, it } from 'vitest';
import { parseFractureFlag, parseHardFlags, parseLesionFlag, parsePresetFlag, parseVbmdFlag } from '../../src/cli/phantom.js';

describe('vbmd phantom flags', () => {
  it('parses --vbmd, --lesion and --fracture lists', () => {
    expect(parseVbmdFlag('L1=95, l2=90.5')).toEqual({ L1: 95, L2: 90.5 });
    expect(parseVbmdFlag(undefined)).toEqual({});
    expect(parseLesionFlag('T11,L2:lytic')).toEqual([{ level: 'T11' }, { level: 'L2', kind: 'lytic' }]);
    expect(parseFractureFlag('L1,T12:0.3')).toEqual([{ level: 'L1' }, { level: 'T12', heightLossFraction: 0.3 }]);
  });

  it('rejects malformed items with a sentence naming the flag', () => {
    expect(() => parseVbmdFlag('L1:95')).toThrow(/--vbmd item "L1:95"/);
    expect(() => parseLesionFlag('T11:big')).toThrow(/--lesion kind "big"/);
    expect(() => parseFractureFlag('L1:lots')).toThrow(/--fracture height loss "lots"/);
  });

  it('parses --preset, --features, --always and --arms, and names a bad value', () => {
    expect(parsePresetFlag(undefined)).toBe('default');
    expect(parsePresetFlag('hard')).toBe('hard');
    expect(parseHardFlags('girdle, fractures', 'screws', 'down')).toEqual({ only: ['girdle', 'fractures'], always: ['screws'], arms: 'down' });
    expect(parseHardFlags(undefined, undefined)).toEqual({});
    expect(() => parsePresetFlag('harder')).toThrow(/--preset "harder"/);
    expect(() => parseHardFlags('wings', undefined)).toThrow(/--features item "wings"/);
    expect(() => parseHardFlags(undefined, 'wings')).toThrow(/--always item "wings"/);
    expect(() => parseHardFlags(undefined, undefined, 'sideways')).toThrow(/--arms "sideways"/);
  });
});
