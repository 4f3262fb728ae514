// The pipeline: added tokens -> normalizer -> pre-tokenizer -> model -> post-processor; decoder for the way back.
import { type Decoder, decoderFromJson } from '../decoders/index.js';
import { TokenizerJsonError } from '../errors.js';
import { type JsonNode, parseTokenizerJson } from '../json/reader.js';
import { decodeTokenizerJson } from '../json/text.js';
import { BPE } from '../models/bpe/model.js';
import { type Normalizer, normalizerFromJson } from '../normalizers/index.js';
import { ByteLevelPreTokenizer, type PreTokenizer, preTokenizerFromJson } from '../pre-tokenizers/index.js';
import { type EncodingParts, type PostProcessor, postProcessorFromJson } from '../processors/index.js';
import { BYTE_TO_CHAR } from '../utils/byte-level.js';
import { encodeUtf8Into, utf8Length, wellFormed } from '../utils/utf8.js';
import { type AddedToken, AddedTokenMatcher, addedTokensFromJson } from './added-vocabulary.js';
import { DecodeStream } from './decode-stream.js';
import { encodeBatchInWorkers } from './encode-batch.js';
import { originalSegment, type Segment, sliceSegment } from './segment.js';

export interface EncodeOptions {
  /** Let the post-processor add its special tokens (e.g. a template's BOS/EOS). Default true, as in HF. */
  addSpecialTokens?: boolean;
}

export interface EncodeWithOffsetsOptions extends EncodeOptions {
  withOffsets: true;
  /** Offsets in code points (HF's char offsets, the default) or in UTF-16 units (for `String.prototype.slice`). */
  offsetUnit?: 'codepoint' | 'utf16';
}

export interface Encoding {
  ids: number[];
  tokens: string[];
  /** [start, end) of each token in the input text. */
  offsets: Array<[number, number]>;
}

export interface DecodeOptions {
  skipSpecialTokens?: boolean;
}

export interface BatchOptions extends EncodeOptions {
  /**
   * Threads to spread the batch over, the calling thread included (default: available parallelism, at most 8).
   * 1 (or 0) encodes in-thread; small batches are always encoded in-thread.
   */
  threads?: number;
}

const SUPPORTED_MODEL = 'BPE';

export class Tokenizer {
  readonly model: BPE;
  readonly normalizer: Normalizer | null;
  readonly preTokenizer: PreTokenizer | null;
  readonly postProcessor: PostProcessor | null;
  readonly decoder: Decoder | null;
  readonly addedTokens: readonly AddedToken[];
  private readonly addedById = new Map<number, AddedToken>();
  private readonly addedByContent = new Map<string, AddedToken>();
  /** Decoding string of each added token: the normalized content for normalized tokens (HF's normalized_cache). */
  private readonly addedDecodeForm = new Map<number, string>();
  private readonly rawMatcher: AddedTokenMatcher;
  private readonly normalizedMatcher: AddedTokenMatcher;
  private readonly source: string | object;
  private readonly utf8Scratch = new Uint8Array(4);

  private constructor(root: JsonNode, source: string | object) {
    this.source = source;
    root.object();
    const modelNode = root.get('model');
    if (modelNode.isMissing()) modelNode.fail(`a ${SUPPORTED_MODEL} model object`);
    this.model = BPE.fromJson(modelNode);
    this.normalizer = normalizerFromJson(root.get('normalizer'));
    this.preTokenizer = preTokenizerFromJson(root.get('pre_tokenizer'));
    this.postProcessor = postProcessorFromJson(root.get('post_processor'));
    this.decoder = decoderFromJson(root.get('decoder'));
    for (const key of ['truncation', 'padding'] as const) {
      const n = root.get(key);
      if (!n.isMissing()) n.unsupported(`${key} is not supported; apply it to the ids yourself`);
    }
    this.addedTokens = addedTokensFromJson(root.get('added_tokens'));
    const raw = new Map<string, AddedToken>();
    const normalized = new Map<string, AddedToken>();
    for (const t of this.addedTokens) {
      // An added token already in the model vocab keeps the model's id, as in HF.
      const id = this.addedByContent.get(t.content)?.id ?? this.model.tokenToId(t.content) ?? t.id;
      const token = { ...t, id };
      this.addedById.set(id, token);
      this.addedByContent.set(t.content, token);
      if (token.normalized) {
        const form = this.normalizer ? this.normalizer.normalizeText(t.content) : t.content;
        normalized.set(form, token);
        this.addedDecodeForm.set(id, form);
      } else {
        raw.set(t.content, token);
        this.addedDecodeForm.set(id, t.content);
      }
    }
    this.rawMatcher = new AddedTokenMatcher(raw);
    this.normalizedMatcher = new AddedTokenMatcher(normalized);
  }

  /** Loads a tokenizer.json file (Node) or URL (fetch, e.g. in browsers). */
  static async fromFile(path: string | URL): Promise<Tokenizer> {
    const href = String(path);
    if (/^(https?|blob|data):/.test(href)) {
      const res = await fetch(href);
      if (!res.ok) throw new Error(`cannot fetch ${href}: HTTP ${res.status}`);
      return Tokenizer.fromJSON(new Uint8Array(await res.arrayBuffer()));
    }
    const { readFile } = await import('node:fs/promises');
    return Tokenizer.fromJSON(new Uint8Array(await readFile(path)));
  }

  /**
   * Builds a tokenizer from tokenizer.json text, its bytes (strict UTF-8: UTF-16 and invalid bytes are refused), or
   * its parsed object. Bad input throws a one-line TokenizerJsonError with the JSON path.
   */
  static fromJSON(input: string | Uint8Array | object): Tokenizer {
    if (input instanceof Uint8Array) input = decodeTokenizerJson(input);
    if (typeof input !== 'string' && (typeof input !== 'object' || input === null))
      throw new TokenizerJsonError('', 'expected tokenizer.json text or its parsed object');
    return new Tokenizer(parseTokenizerJson(input), input);
  }

  /** The tokenizer.json this tokenizer was built from (workers rebuild the tokenizer from it). */
  toJSONString(): string {
    return typeof this.source === 'string' ? this.source : JSON.stringify(this.source);
  }

  /** Number of distinct ids: model vocab plus added tokens not in it (HF's vocab size with added tokens). */
  get vocabSize(): number {
    let extra = 0;
    for (const id of this.addedById.keys()) if (this.model.idToToken(id) === undefined) extra++;
    return this.model.vocabSize + extra;
  }

  tokenToId(token: string): number | undefined {
    return this.addedByContent.get(token)?.id ?? this.model.tokenToId(token);
  }

  idToToken(id: number): string | undefined {
    return this.addedById.get(id)?.content ?? this.model.idToToken(id);
  }

  /** Special added tokens by content, e.g. `{'<|endoftext|>': 0, '<|padding|>': 1}` for GPT-NeoX. */
  get specialTokens(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const t of this.addedById.values()) if (t.special) out[t.content] = t.id;
    return out;
  }

  encode(text: string, options?: EncodeOptions & { withOffsets?: false }): number[];
  encode(text: string, options: EncodeWithOffsetsOptions): Encoding;
  encode(
    text: string,
    options: EncodeOptions & { withOffsets?: boolean; offsetUnit?: 'codepoint' | 'utf16' } = {},
  ): number[] | Encoding {
    if (typeof text !== 'string') throw new TypeError(`encode expects a string, got ${typeof text}`);
    const addSpecial = options.addSpecialTokens ?? true;
    if (options.withOffsets)
      return this.encodeWithOffsets(text, addSpecial, options.offsetUnit ?? 'codepoint');
    const ids = this.encodeIds(wellFormed(text));
    if (!this.postProcessor) return ids;
    return this.postProcessor.process({ ids, tokens: [], offsets: null }, addSpecial).ids;
  }

  /** Encodes many texts, spread over worker threads when available; same ids as `encode` on each text. */
  async encodeBatch(texts: readonly string[], options: BatchOptions = {}): Promise<number[][]> {
    return encodeBatchInWorkers(this, texts, options);
  }

  decode(ids: ArrayLike<number>, options: DecodeOptions = {}): string {
    const tokens: string[] = [];
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      const added = this.addedById.get(id);
      if (added) {
        if (!(options.skipSpecialTokens && added.special))
          tokens.push(this.addedDecodeForm.get(id) as string);
        continue;
      }
      const token = this.model.idToToken(id);
      if (token === undefined)
        throw new RangeError(
          `decode: id ${id} at position ${i} is not in the vocabulary (${this.vocabSize} ids)`,
        );
      tokens.push(token);
    }
    return this.decodeTokens(tokens);
  }

  /** Decoder output for token strings (no decoder: joined with spaces, as HF). */
  decodeTokens(tokens: string[]): string {
    return this.decoder ? this.decoder.decodeChain(tokens).join('') : tokens.join(' ');
  }

  /** A streaming decoder for generation: feed ids one at a time, get text once it forms complete characters. */
  decodeStream(options: DecodeOptions = {}): DecodeStream {
    return new DecodeStream(this, options.skipSpecialTokens ?? false);
  }

  // ---- fast path: ids only ----

  private encodeIds(text: string): number[] {
    const ids: number[] = [];
    if (this.rawMatcher.isEmpty) {
      this.encodeRawPiece(text, ids);
      return ids;
    }
    const parts = this.rawMatcher.split(text);
    for (let i = 0; i < parts.length; i += 3) {
      if (parts[i + 1] === parts[i]) continue;
      if (parts[i + 2] >= 0) ids.push(parts[i + 2]);
      else this.encodeRawPiece(text.slice(parts[i], parts[i + 1]), ids);
    }
    return ids;
  }

  private encodeRawPiece(raw: string, ids: number[]): void {
    const text = this.normalizer ? this.normalizer.normalizeText(raw) : raw;
    if (this.normalizedMatcher.isEmpty) {
      this.encodeNormalized(text, ids);
      return;
    }
    const parts = this.normalizedMatcher.split(text);
    for (let i = 0; i < parts.length; i += 3) {
      if (parts[i + 1] === parts[i]) continue;
      if (parts[i + 2] >= 0) ids.push(parts[i + 2]);
      else this.encodeNormalized(text.slice(parts[i], parts[i + 1]), ids);
    }
  }

  private encodeNormalized(text: string, ids: number[]): void {
    if (text.length === 0) return;
    const pre = this.preTokenizer;
    if (!pre) {
      this.model.encodeWord(text, ids);
      return;
    }
    const model = this.model;
    if (pre instanceof ByteLevelPreTokenizer)
      pre.splitRanges(text, (t, start, end) => model.encodeByteLevelRange(t, start, end, ids));
    else if (pre.byteLevel) pre.splitText(text, (word) => model.encodeByteLevel(word, ids));
    else pre.splitText(text, (word) => model.encodeWord(word, ids));
  }

  // ---- offsets path: same pipeline over segments that carry alignments ----

  private encodeWithOffsets(input: string, addSpecial: boolean, unit: 'codepoint' | 'utf16'): Encoding {
    const text = wellFormed(input);
    const ids: number[] = [];
    const values: Array<string | null> = [];
    const offs: number[] = []; // original UTF-16 [start, end) per token
    const pushAdded = (seg: Segment, start: number, end: number, id: number) => {
      ids.push(id);
      values.push(seg.text.slice(start, end));
      offs.push(...spanOf(seg.align as Int32Array, start, end));
    };
    const rawParts = this.rawMatcher.split(text);
    const whole = originalSegment(text, 0, text.length, true);
    for (let i = 0; i < rawParts.length; i += 3) {
      const [s, e, id] = [rawParts[i], rawParts[i + 1], rawParts[i + 2]];
      if (e === s) continue;
      if (id >= 0) {
        pushAdded(whole, s, e, id);
        continue;
      }
      let seg = sliceSegment(whole, s, e);
      if (this.normalizer) seg = this.normalizer.normalizeSegment(seg);
      const parts = this.normalizedMatcher.split(seg.text);
      for (let j = 0; j < parts.length; j += 3) {
        const [ps, pe, pid] = [parts[j], parts[j + 1], parts[j + 2]];
        if (pe === ps) continue;
        if (pid >= 0) pushAdded(seg, ps, pe, pid);
        else this.encodeSegment(sliceSegment(seg, ps, pe), ids, values, offs);
      }
    }
    // HF converts offsets to chars before post-processing (trim_offsets counts chars).
    const toCp = codePointIndex(text);
    const offsets = offs.map((u) => toCp[u]);
    const tokens = ids.map((id, k) => values[k] ?? (this.model.idToToken(id) as string));
    let enc: EncodingParts = { ids, tokens, offsets };
    if (this.postProcessor) enc = this.postProcessor.process(enc, addSpecial);
    const flat = enc.offsets as number[];
    const fromCp = unit === 'utf16' ? utf16Index(text) : null;
    const pairs: Array<[number, number]> = [];
    for (let k = 0; k < enc.ids.length; k++) {
      const a = flat[2 * k];
      const b = flat[2 * k + 1];
      pairs.push(fromCp ? [fromCp[a], fromCp[b]] : [a, b]);
    }
    return { ids: enc.ids, tokens: enc.tokens, offsets: pairs };
  }

  private encodeSegment(seg: Segment, ids: number[], values: Array<string | null>, offs: number[]): void {
    const pieces: Segment[] = [];
    if (this.preTokenizer) this.preTokenizer.splitSegment(seg, pieces);
    else if (seg.text.length > 0) pieces.push(seg);
    const byteLevel = this.preTokenizer?.byteLevel ?? false;
    for (const piece of pieces) {
      // byteUnit[k]: the piece's UTF-16 unit that byte k of the model's word came from.
      const byteUnit: number[] = [];
      let word = '';
      const text = piece.text;
      for (let u = 0; u < text.length; ) {
        const c = text.charCodeAt(u);
        const width = c >= 0xd800 && c < 0xdc00 && u + 1 < text.length ? 2 : 1;
        if (byteLevel) {
          const n = encodeUtf8Into(text.slice(u, u + width), this.utf8Scratch);
          for (let k = 0; k < n; k++) {
            const mapped = BYTE_TO_CHAR[this.utf8Scratch[k]];
            word += mapped;
            byteUnit.push(u);
            if (mapped.charCodeAt(0) >= 0x80) byteUnit.push(u); // mapped chars >= U+0080 take 2 UTF-8 bytes
          }
        } else {
          for (let k = utf8Length(text.codePointAt(u) as number); k > 0; k--) byteUnit.push(u);
        }
        u += width;
      }
      if (!byteLevel) word = text;
      const spans: number[] = [];
      const before = ids.length;
      this.model.encodeWordSpans(word, ids, spans);
      const align = piece.align as Int32Array;
      for (let t = 0; t < ids.length - before; t++) {
        let start = Number.MAX_SAFE_INTEGER;
        let end = 0;
        for (let b = spans[2 * t]; b < spans[2 * t + 1]; b++) {
          const u = byteUnit[b];
          start = Math.min(start, align[2 * u]);
          end = Math.max(end, align[2 * u + 1]);
        }
        offs.push(start, end);
        values.push(null);
      }
    }
  }
}

/** Original range of seg.text[start, end): min start and max end of the alignments (HF's expand_alignments). */
function spanOf(align: Int32Array, start: number, end: number): [number, number] {
  let s = Number.MAX_SAFE_INTEGER;
  let e = 0;
  for (let u = start; u < end; u++) {
    s = Math.min(s, align[2 * u]);
    e = Math.max(e, align[2 * u + 1]);
  }
  return [s, e];
}

/** index[u] = number of code points before UTF-16 unit u (for u = 0..length). */
function codePointIndex(text: string): Int32Array {
  const index = new Int32Array(text.length + 1);
  let cp = 0;
  for (let u = 0; u < text.length; u++) {
    index[u] = cp;
    const c = text.charCodeAt(u);
    if (!(c >= 0xdc00 && c < 0xe000 && u > 0)) cp++;
  }
  index[text.length] = cp;
  return index;
}

/** index[c] = UTF-16 position of code point c (for c = 0..count). */
function utf16Index(text: string): number[] {
  const index: number[] = [];
  let u = 0;
  for (const ch of text) {
    index.push(u);
    u += ch.length;
  }
  index.push(u);
  return index;
}
