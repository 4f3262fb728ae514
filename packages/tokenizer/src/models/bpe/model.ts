// The BPE model: vocab, merges, and the encode loop for one pre-token (a "word").
import { TokenizerJsonError } from '../../errors.js';
import { type JsonNode, MAX_TOKEN_ID } from '../../json/reader.js';
import { BYTE_TO_CHAR } from '../../utils/byte-level.js';
import { encodeUtf8Into as encodeUtf8, utf8Length } from '../../utils/utf8.js';
import { MAX_CACHED_LENGTH, RangeWordCache, WordCache } from './cache.js';
import { PairMap } from './pair-map.js';
import { WordMerger } from './word.js';

export interface BpeOptions {
  unkToken?: string | null;
  continuingSubwordPrefix?: string | null;
  endOfWordSuffix?: string | null;
  fuseUnk?: boolean;
  byteFallback?: boolean;
  ignoreMerges?: boolean;
}

export class BPE {
  readonly vocab: Map<string, number>;
  private readonly vocabR: Map<number, string>;
  readonly merges: ReadonlyArray<readonly [string, string]>;
  readonly options: Required<BpeOptions>;
  private readonly pairs: PairMap;
  private readonly merger: WordMerger;
  private readonly cache = new WordCache();
  private readonly rangeCache = new RangeWordCache();
  /** Offsets path: word -> flat [id, byte length] per token. */
  private readonly spanCache = new Map<string, Int32Array>();
  /** Vocab id of each byte's byte-level character, or -1: the byte-level fast path starts from these. */
  private readonly byteIds = new Int32Array(256);
  /** Vocab id of single-code-unit chars (no prefix/suffix), -1 when absent, -2 when not yet looked up. */
  private readonly charIds = new Int32Array(65536).fill(-2);
  private syms = new Int32Array(1024);
  private lens = new Int32Array(1024);
  private bytes = new Uint8Array(3072);

  constructor(
    vocab: Map<string, number>,
    merges: ReadonlyArray<readonly [string, string]>,
    options: BpeOptions = {},
    path = 'model',
  ) {
    this.vocab = vocab;
    this.vocabR = new Map();
    for (const [token, id] of vocab) this.vocabR.set(id, token);
    this.merges = merges;
    this.options = {
      unkToken: options.unkToken ?? null,
      continuingSubwordPrefix: options.continuingSubwordPrefix ?? null,
      endOfWordSuffix: options.endOfWordSuffix ?? null,
      fuseUnk: options.fuseUnk ?? false,
      byteFallback: options.byteFallback ?? false,
      ignoreMerges: options.ignoreMerges ?? false,
    };
    const prefixLen = this.options.continuingSubwordPrefix?.length ?? 0;
    this.pairs = new PairMap(merges.length);
    merges.forEach(([a, b], rank) => {
      const where = `${path}.merges[${rank}]`;
      const aId = vocab.get(a);
      const bId = vocab.get(b);
      if (aId === undefined)
        throw new TokenizerJsonError(where, `merge token ${JSON.stringify(a)} is not in the vocab`);
      if (bId === undefined)
        throw new TokenizerJsonError(where, `merge token ${JSON.stringify(b)} is not in the vocab`);
      const mergedId = vocab.get(a + b.slice(prefixLen));
      if (mergedId === undefined)
        throw new TokenizerJsonError(
          where,
          `merged token ${JSON.stringify(a + b.slice(prefixLen))} is not in the vocab`,
        );
      this.pairs.set(aId, bId, rank, mergedId);
    });
    this.merger = new WordMerger(this.pairs);
    for (let b = 0; b < 256; b++) this.byteIds[b] = vocab.get(BYTE_TO_CHAR[b]) ?? -1;
  }

  static fromJson(node: JsonNode): BPE {
    const type = node.get('type');
    if (!type.isMissing() && type.string() !== 'BPE')
      type.unsupported(`unsupported model ${JSON.stringify(type.string())} (supported: BPE)`);
    const dropout = node.get('dropout');
    if (!dropout.isMissing() && dropout.number() !== 0)
      dropout.unsupported('BPE dropout is random sampling; only null is supported');
    const vocabNode = node.get('vocab');
    const vocab = new Map<string, number>();
    for (const [token, id] of Object.entries(vocabNode.object())) {
      if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id > MAX_TOKEN_ID)
        vocabNode.get(token).fail(`a token id in 0..${MAX_TOKEN_ID}`);
      vocab.set(token, id as number);
    }
    const mergesNode = node.get('merges');
    const raw = mergesNode.value;
    if (!Array.isArray(raw)) mergesNode.fail('an array');
    const merges: Array<[string, string]> = [];
    const list = raw as unknown[];
    for (let i = 0; i < list.length; i++) {
      const value = list[i];
      if (typeof value === 'string') {
        if (value.startsWith('#version')) continue;
        const space = value.indexOf(' ');
        if (space < 0 || value.indexOf(' ', space + 1) >= 0)
          mergesNode.at(i).fail('a merge "left right" (one space) or a [left, right] pair');
        merges.push([value.slice(0, space), value.slice(space + 1)]);
      } else if (
        Array.isArray(value) &&
        value.length === 2 &&
        typeof value[0] === 'string' &&
        typeof value[1] === 'string'
      ) {
        merges.push([value[0], value[1]]);
      } else mergesNode.at(i).fail('a merge "left right" or a [left, right] pair of strings');
    }
    return new BPE(
      vocab,
      merges,
      {
        unkToken: node.get('unk_token').optionalString(),
        continuingSubwordPrefix: node.get('continuing_subword_prefix').optionalString(),
        endOfWordSuffix: node.get('end_of_word_suffix').optionalString(),
        fuseUnk: node.get('fuse_unk').optionalBoolean(false),
        byteFallback: node.get('byte_fallback').optionalBoolean(false),
        ignoreMerges: node.get('ignore_merges').optionalBoolean(false),
      },
      node.path,
    );
  }

  get vocabSize(): number {
    return this.vocab.size;
  }

  tokenToId(token: string): number | undefined {
    return this.vocab.get(token);
  }

  idToToken(id: number): string | undefined {
    return this.vocabR.get(id);
  }

  /**
   * Encodes a raw pre-token through the byte-level alphabet (the word BPE sees is its UTF-8 bytes mapped to
   * characters), appending ids to `out`. Cached by the raw text.
   */
  encodeByteLevel(text: string, out: number[]): void {
    const hit = this.cache.get(text);
    if (hit !== undefined) {
      pushIds(hit, out);
      return;
    }
    const ids = this.byteLevelUncached(text);
    this.cache.set(text, ids);
    pushIds(ids, out);
  }

  /** encodeByteLevel for the word text[start, end), without slicing it out when the cache has it. */
  encodeByteLevelRange(text: string, start: number, end: number, out: number[]): void {
    const hit = this.rangeCache.get(text, start, end);
    if (hit !== undefined) {
      if (typeof hit === 'number') out.push(hit);
      else for (let i = 0; i < hit.length; i++) out.push(hit[i]);
      return;
    }
    const word = text.slice(start, end);
    const ids = this.byteLevelUncached(word);
    this.rangeCache.insert(word, ids);
    pushIds(ids, out);
  }

  private byteLevelUncached(text: string): number | Int32Array {
    const o = this.options;
    if (o.ignoreMerges || o.continuingSubwordPrefix !== null || o.endOfWordSuffix !== null)
      return this.wordUncached(mapBytes(text));
    this.ensureScratch(text.length);
    const bytes = this.bytes;
    const n = encodeUtf8(text, bytes);
    const syms = this.syms;
    for (let i = 0; i < n; i++) {
      const id = this.byteIds[bytes[i]];
      if (id < 0) return this.wordUncached(mapBytes(text)); // alphabet lacks a byte: unk / byte_fallback rules
      syms[i] = id;
    }
    const m = this.merger.merge(syms, null, n);
    return m === 1 ? syms[0] : syms.slice(0, m);
  }

  /** Encodes a word whose model chars are its code points (no byte-level mapping), appending ids. Cached. */
  encodeWord(word: string, out: number[]): void {
    const hit = this.cache.get(word);
    if (hit !== undefined) {
      pushIds(hit, out);
      return;
    }
    const ids = this.wordUncached(word);
    this.cache.set(word, ids);
    pushIds(ids, out);
  }

  private wordUncached(word: string): number | Int32Array {
    this.ensureScratch(word.length);
    const n = this.symbolsOf(word, null);
    const m = this.merger.merge(this.syms, null, n);
    return m === 1 ? this.syms[0] : this.syms.slice(0, m);
  }

  /**
   * Encodes a word and reports each token's span in UTF-8 bytes of `word` (HF's unit), for offsets.
   * Appends ids to `ids` and [start, end) pairs to `spans`.
   */
  encodeWordSpans(word: string, ids: number[], spans: number[]): void {
    if (word.length === 0) return;
    let merged = this.spanCache.get(word);
    if (merged === undefined) {
      this.ensureScratch(word.length);
      const n = this.symbolsOf(word, this.lens);
      const m = this.merger.merge(this.syms, this.lens, n);
      merged = new Int32Array(2 * m);
      for (let i = 0; i < m; i++) {
        merged[2 * i] = this.syms[i];
        merged[2 * i + 1] = this.lens[i];
      }
      if (word.length < MAX_CACHED_LENGTH) {
        if (this.spanCache.size >= 1 << 16) this.spanCache.clear();
        this.spanCache.set(word, merged);
      }
    }
    let at = 0;
    for (let i = 0; i < merged.length; i += 2) {
      ids.push(merged[i]);
      spans.push(at, at + merged[i + 1]);
      at += merged[i + 1];
    }
  }

  /** Same as encodeWord without touching the cache (tests compare both merge strategies with it). */
  encodeWordForced(word: string, heap: boolean): number[] {
    this.ensureScratch(word.length);
    const n = this.symbolsOf(word, null);
    const m = this.merger.merge(this.syms, null, n, heap);
    return Array.from(this.syms.subarray(0, m));
  }

  /** Scratch room for a word of `units` UTF-16 units (up to 4 byte-fallback symbols per unit). */
  private ensureScratch(units: number): void {
    if (this.syms.length < units * 4 + 8) this.growScratch(units * 4 + 8);
  }

  /** Initial symbols of a word, following HF's merge_word: prefix/suffix, byte_fallback, (fused) unk. */
  private symbolsOf(word: string, lens: Int32Array | null): number {
    const o = this.options;
    if (o.ignoreMerges) {
      const whole = this.vocab.get(word);
      if (whole !== undefined) {
        this.syms[0] = whole;
        if (lens) lens[0] = new TextEncoder().encode(word).length;
        return 1;
      }
    }
    const syms = this.syms;
    let n = 0;
    let unkId = -1;
    let unkLen = 0;
    const plain = o.continuingSubwordPrefix === null && o.endOfWordSuffix === null;
    for (let i = 0; i < word.length; ) {
      const code = word.codePointAt(i) as number;
      const width = code > 0xffff ? 2 : 1;
      const first = i === 0;
      i += width;
      const last = i >= word.length;
      let id: number | undefined;
      let s: string | null = null;
      if (plain && width === 1) {
        id = this.charIds[code];
        if (id === -2) {
          id = this.vocab.get(word[i - 1]) ?? -1;
          this.charIds[code] = id;
        }
        if (id < 0) id = undefined;
      } else {
        s = String.fromCodePoint(code);
        if (!first && o.continuingSubwordPrefix !== null) s = o.continuingSubwordPrefix + s;
        if (last && o.endOfWordSuffix !== null) s += o.endOfWordSuffix;
        id = this.vocab.get(s);
      }
      if (id !== undefined) {
        if (unkId >= 0) {
          syms[n] = unkId;
          if (lens) lens[n] = unkLen;
          n++;
          unkId = -1;
        }
        syms[n] = id;
        if (lens) lens[n] = utf8Length(code);
        n++;
        continue;
      }
      s ??= String.fromCodePoint(code);
      if (o.byteFallback) {
        const fallback = this.byteFallbackIds(s);
        if (fallback) {
          for (const b of fallback) {
            syms[n] = b;
            if (lens) lens[n] = 1;
            n++;
          }
          continue;
        }
      }
      if (o.unkToken !== null) {
        const unk = this.vocab.get(o.unkToken);
        if (unk === undefined) throw new Error(`unk_token ${JSON.stringify(o.unkToken)} is not in the vocab`);
        if (unkId >= 0 && o.fuseUnk) unkLen += utf8Length(code);
        else {
          if (unkId >= 0) {
            syms[n] = unkId;
            if (lens) lens[n] = unkLen;
            n++;
          }
          unkId = unk;
          unkLen = utf8Length(code);
        }
      }
    }
    if (unkId >= 0) {
      syms[n] = unkId;
      if (lens) lens[n] = unkLen;
      n++;
    }
    return n;
  }

  private byteFallbackIds(s: string): number[] | null {
    const out: number[] = [];
    for (const b of new TextEncoder().encode(s)) {
      const id = this.vocab.get(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
      if (id === undefined) return null;
      out.push(id);
    }
    return out;
  }

  private growScratch(n: number): void {
    const cap = Math.max(n, this.syms.length * 2);
    this.syms = new Int32Array(cap);
    this.lens = new Int32Array(cap);
    this.bytes = new Uint8Array(cap * 3);
  }
}

function pushIds(ids: number | Int32Array, out: number[]): void {
  if (typeof ids === 'number') out.push(ids);
  else for (let i = 0; i < ids.length; i++) out.push(ids[i]);
}

function mapBytes(text: string): string {
  let out = '';
  for (const b of new TextEncoder().encode(text)) out += BYTE_TO_CHAR[b];
  return out;
}
