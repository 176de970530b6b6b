// Proves the UI's colour pairs (text on its background, from assets/mailgate.css) meet WCAG 2.2 AA contrast: 4.5:1 for text.
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';

const css = fs.readFileSync(new URL('../../assets/mailgate.css', import.meta.url), 'utf8');
const variables = Object.fromEntries([...css.matchAll(/--([a-z-]+):\s*(#[0-9a-f]{6})\s*;/gi)].map((m) => [m[1]!, m[2]!]));
const colour = (value: string) => (value.startsWith('#') ? value : variables[value]!);

/** Relative luminance and contrast ratio, https://www.w3.org/TR/WCAG22/#dfn-contrast-ratio */
function luminance(hex: string): number {
  const [r, g, b] = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16) / 255).map((c) => (c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4));
  return 0.2126 * r! + 0.7152 * g! + 0.0722 * b!;
}
function contrast(a: string, b: string): number {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
  return (hi! + 0.05) / (lo! + 0.05);
}

// [what, text, background]
const PAIRS: Array<[string, string, string]> = [
  ['body text', 'text', 'bg'],
  ['muted text and help', 'muted', 'bg'],
  ['muted text on panels', 'muted', 'panel'],
  ['links', 'brand', 'panel'],
  ['primary button', '#ffffff', 'brand'],
  ['danger button', '#ffffff', 'bad'],
  ['badge ok', 'ok', 'ok-bg'],
  ['badge warn', 'warn', 'warn-bg'],
  ['badge bad, banner', 'bad', 'bad-bg'],
  ['badge info', 'info', 'info-bg'],
  ['badge muted', 'muted', '#eceff4'],
  ['navigation', '#d8e1ff', '#0f1b3d'],
  ['table headings', 'muted', '#f0f3f8'],
];

describe('colour contrast', () => {
  it('reads every colour variable the pairs use from the stylesheet', () => {
    for (const [, text, background] of PAIRS) for (const c of [text, background]) expect(colour(c), c).toMatch(/^#[0-9a-f]{6}$/i);
  });

  it.each(PAIRS)('%s meets 4.5:1', (_what, text, background) => {
    expect(contrast(colour(text), colour(background))).toBeGreaterThanOrEqual(4.5);
  });
});
