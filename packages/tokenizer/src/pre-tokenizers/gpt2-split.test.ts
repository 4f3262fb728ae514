import { seededRandom } from '@mptjs/test-fixtures';
import { describe, expect, it } from 'vitest';
import { GPT2_PATTERN } from './byte-level.js';
import { gpt2Split } from './gpt2-split.js';

const REGEX = new RegExp(GPT2_PATTERN, 'gu');

function byRegex(text: string): string[] {
  return [...text.matchAll(REGEX)].map((m) => m[0]);
}

function byScanner(text: string): string[] {
  const out: string[] = [];
  gpt2Split(text, (s, e) => out.push(text.slice(s, e)));
  return out;
}

describe('gpt2Split', () => {
  it('splits the classic cases like the regex', () => {
    const cases = [
      "Hello world, it's 2024!  Isn't it?",
      'a  b\n\n  c\t\td   ',
      "'s'S 'll'LL x'ddy '",
      '   leading and trailing   ',
      '\u0085\ufeff\u3000x\u00a0y',
      '𝔸𝔹 😀😀 ①② ٣٤',
      '',
    ];
    for (const c of cases) expect(byScanner(c)).toEqual(byRegex(c));
  });

  it('agrees with the regex on random strings over a tricky alphabet', () => {
    const alphabet = [
      ' ',
      ' ',
      '\t',
      '\n',
      '\r',
      'a',
      'Z',
      's',
      't',
      'l',
      'e',
      'r',
      'v',
      'm',
      'd',
      "'",
      "'",
      '1',
      '٣',
      '①',
      '.',
      '-',
      '_',
      '\u00a0',
      '\u3000',
      '\u0085',
      '\ufeff',
      'é',
      '日',
      '😀',
      '𝔸',
      '\u0301',
      '\u200b',
    ];
    const r = seededRandom(42);
    for (let k = 0; k < 20000; k++) {
      let s = '';
      const len = Math.floor(r() * 24);
      for (let i = 0; i < len; i++) s += alphabet[Math.floor(r() * alphabet.length)];
      const a = byScanner(s);
      const b = byRegex(s);
      if (JSON.stringify(a) !== JSON.stringify(b)) expect({ s, a }).toEqual({ s, a: b });
    }
  });

  it('agrees with the regex on every BMP code unit in context', () => {
    for (let c = 0; c < 0x10000; c++) {
      const ch = String.fromCharCode(c);
      const s = `x${ch} ${ch}${ch}  ${ch}'s`;
      const a = byScanner(s);
      const b = byRegex(s);
      if (JSON.stringify(a) !== JSON.stringify(b)) expect({ c, a }).toEqual({ c, a: b });
    }
  });
});
