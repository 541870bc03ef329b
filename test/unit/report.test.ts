import { describe, expect, it } from 'vitest';
import { categoryForVbmd } from '../../src/bmd/report.js';

describe('ACR category (ACR-SPR-SSR QCT practice parameter)', () => {
  it('uses > 120 normal, 80-120 osteopenia, < 80 osteoporosis', () => {
    expect(categoryForVbmd(120.1)).toBe('normal');
    expect(categoryForVbmd(120)).toBe('osteopenia');
    expect(categoryForVbmd(80)).toBe('osteopenia');
    expect(categoryForVbmd(79.9)).toBe('osteoporosis');
    expect(categoryForVbmd(null)).toBe('indeterminate');
    expect(categoryForVbmd(Number.NaN)).toBe('indeterminate');
  });
});
