// Added tokens (HF's AddedVocabulary): matched before the model, first the non-normalized ones on the raw text,
// then the normalized ones on each normalized piece. Matching is leftmost-longest over literal strings: the
// patterns are compiled into a trie-shaped regex, where greedy optional groups try the longest path first and
// backtrack to shorter complete tokens (siblings start with distinct chars, so at most one branch applies).
import type { JsonNode } from '../json/reader.js';
import { RUST_SPACE, RUST_WORD } from '../utils/unicode-classes.js';

export interface AddedToken {
  id: number;
  content: string;
  singleWord: boolean;
  lstrip: boolean;
  rstrip: boolean;
  normalized: boolean;
  special: boolean;
}

const ENDS_WITH_WORD = new RegExp(`[${RUST_WORD}]$`, 'u');
const STARTS_WITH_WORD = new RegExp(`^[${RUST_WORD}]`, 'u');
const TRAILING_SPACE = new RegExp(`${RUST_SPACE}*$`, 'u');
const LEADING_SPACE = new RegExp(`^${RUST_SPACE}*`, 'u');

/** Finds one group of added tokens (normalized or not) in a text. */
export class AddedTokenMatcher {
  private readonly re: RegExp | null;
  private readonly byPattern = new Map<string, AddedToken>();

  /** `patterns` maps the string to look for (the normalized content, for normalized tokens) to its token. */
  constructor(patterns: ReadonlyMap<string, AddedToken>) {
    for (const [p, t] of patterns) if (p.length > 0) this.byPattern.set(p, t);
    this.re = this.byPattern.size ? new RegExp(trieRegex([...this.byPattern.keys()]), 'g') : null;
  }

  get isEmpty(): boolean {
    return this.re === null;
  }

  /**
   * Splits `text` into flat [start, end, tokenId] triples covering it (tokenId -1 for plain text), applying
   * single_word / lstrip / rstrip like HF's find_matches.
   */
  split(text: string): number[] {
    if (this.re === null || text.length === 0) return [0, text.length, -1];
    const out: number[] = [];
    let startOffset = 0;
    const re = this.re;
    re.lastIndex = 0;
    for (let m = re.exec(text); m !== null; m = re.exec(text)) {
      let start = m.index;
      let stop = start + m[0].length;
      const token = this.byPattern.get(m[0]) as AddedToken;
      if (token.singleWord) {
        const startSpace = start === 0 || !ENDS_WITH_WORD.test(text.slice(0, start));
        const stopSpace = stop === text.length || !STARTS_WITH_WORD.test(text.slice(stop));
        if (!startSpace || !stopSpace) continue;
      }
      if (token.lstrip) {
        const before = text.slice(0, start);
        const newStart = before.length - (TRAILING_SPACE.exec(before) as RegExpExecArray)[0].length;
        start = Math.max(newStart, startOffset);
      }
      if (token.rstrip) stop += (LEADING_SPACE.exec(text.slice(stop)) as RegExpExecArray)[0].length;
      if (startOffset < start) out.push(startOffset, start, -1);
      out.push(start, stop, token.id);
      startOffset = stop;
    }
    if (startOffset !== text.length) out.push(startOffset, text.length, -1);
    return out;
  }
}

interface TrieNode {
  children: Map<string, TrieNode>;
  terminal: boolean;
}

/** Regex source matching the longest of `patterns` at each position (UTF-16 code units). */
export function trieRegex(patterns: readonly string[]): string {
  const root: TrieNode = { children: new Map(), terminal: false };
  for (const p of patterns) {
    let node = root;
    for (const ch of p) {
      let next = node.children.get(ch);
      if (!next) {
        next = { children: new Map(), terminal: false };
        node.children.set(ch, next);
      }
      node = next;
    }
    node.terminal = true;
  }
  const branches = (node: TrieNode): string =>
    [...node.children]
      .map(([ch, child]) => {
        if (child.children.size === 0) return escapeRegex(ch);
        return `${escapeRegex(ch)}(?:${branches(child)})${child.terminal ? '?' : ''}`;
      })
      .join('|');
  return branches(root);
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

export function addedTokensFromJson(node: JsonNode): AddedToken[] {
  if (node.isMissing()) return [];
  return node.array().map((t) => ({
    id: t.get('id').tokenId(),
    content: t.get('content').string(),
    singleWord: t.get('single_word').optionalBoolean(false),
    lstrip: t.get('lstrip').optionalBoolean(false),
    rstrip: t.get('rstrip').optionalBoolean(false),
    normalized: t.get('normalized').optionalBoolean(!t.get('special').optionalBoolean(false)),
    special: t.get('special').optionalBoolean(false),
  }));
}
