// BPE trainer, a step-for-step port of HF's BpeTrainer (same pair counts, same priority order, same quirks), so
// its merges match HF's on the same input. Produces a GPT-NeoX-style tokenizer.json: NFC, ByteLevel everywhere,
// the full 256-byte initial alphabet.
import { UnicodeNormalizer } from '../../normalizers/unicode.js';
import { ByteLevelPreTokenizer } from '../../pre-tokenizers/byte-level.js';
import { BYTE_TO_CHAR, toByteLevel } from '../../utils/byte-level.js';
import { wellFormed } from '../../utils/utf8.js';

export interface TrainBpeOptions {
  /** Training files (UTF-8); each line (with its ending) is one sequence, as HF reads files. */
  files?: readonly string[];
  /** Training texts; each is one sequence. */
  texts?: Iterable<string>;
  /** Final vocab size including special tokens and the 256-char alphabet. */
  vocabSize: number;
  /** Special tokens (ids 0..n-1), e.g. ['<|endoftext|>', '<|padding|>']. */
  specialTokens?: readonly string[];
  /** Pairs seen fewer times are not merged (HF's min_frequency; default 0). */
  minFrequency?: number;
}

const BYTE_LEVEL = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };

/** The tokenizer.json that trainBpe produces (JSON.stringify it to save). */
export interface TrainedTokenizerJson {
  version: string;
  truncation: null;
  padding: null;
  added_tokens: Array<{
    id: number;
    content: string;
    single_word: boolean;
    lstrip: boolean;
    rstrip: boolean;
    normalized: boolean;
    special: boolean;
  }>;
  normalizer: { type: string };
  pre_tokenizer: typeof BYTE_LEVEL;
  post_processor: typeof BYTE_LEVEL;
  decoder: typeof BYTE_LEVEL;
  model: {
    type: 'BPE';
    dropout: null;
    unk_token: null;
    continuing_subword_prefix: null;
    end_of_word_suffix: null;
    fuse_unk: boolean;
    byte_fallback: boolean;
    ignore_merges: boolean;
    vocab: Record<string, number>;
    merges: Array<[string, string]>;
  };
}

/** Trains byte-level BPE and returns the tokenizer.json object (JSON.stringify it to save). */
export async function trainBpe(options: TrainBpeOptions): Promise<TrainedTokenizerJson> {
  const { vocabSize, specialTokens = [], minFrequency = 0 } = options;
  if (!Number.isInteger(vocabSize) || vocabSize < 1)
    throw new RangeError(`trainBpe: vocabSize must be a positive integer, got ${vocabSize}`);
  if (!options.files && !options.texts) throw new TypeError('trainBpe: give `files` or `texts`');
  const counts = new Map<string, number>();
  const normalizer = new UnicodeNormalizer('NFC');
  const pre = new ByteLevelPreTokenizer(false, true);
  const feed = (sequence: string) => {
    pre.splitText(normalizer.normalizeText(wellFormed(sequence)), (piece) => {
      const word = toByteLevel(piece);
      counts.set(word, (counts.get(word) ?? 0) + 1);
    });
  };
  for (const t of options.texts ?? []) feed(t);
  if (options.files) {
    const { readFile } = await import('node:fs/promises');
    for (const file of options.files)
      for (const line of (await readFile(file, 'utf8')).split(/(?<=\n)/)) feed(line);
  }
  const { vocab, merges } = trainFromCounts(counts, vocabSize, specialTokens, BYTE_TO_CHAR, minFrequency);
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: specialTokens
      .filter((t, i) => specialTokens.indexOf(t) === i)
      .map((content) => ({
        id: vocab.get(content) as number,
        content,
        single_word: false,
        lstrip: false,
        rstrip: false,
        normalized: false,
        special: true,
      })),
    normalizer: { type: 'NFC' },
    pre_tokenizer: { ...BYTE_LEVEL },
    post_processor: { ...BYTE_LEVEL },
    decoder: { ...BYTE_LEVEL },
    model: {
      type: 'BPE' as const,
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab: Object.fromEntries(vocab),
      merges,
    },
  };
}

interface QueueEntry {
  a: number;
  b: number;
  count: number;
  pos: Set<number>;
  seq: number;
}

const PAIR = 2 ** 21;

/** HF's `do_train` on word counts (words already in the byte-level alphabet). */
export function trainFromCounts(
  wordCounts: ReadonlyMap<string, number>,
  vocabSize: number,
  specialTokens: readonly string[],
  initialAlphabet: readonly string[],
  minFrequency: number,
): { vocab: Map<string, number>; merges: Array<[string, string]> } {
  const wordToId = new Map<string, number>();
  const idToWord: string[] = [];
  const add = (s: string) => {
    if (!wordToId.has(s)) {
      wordToId.set(s, idToWord.length);
      idToWord.push(s);
    }
  };
  for (const t of specialTokens) add(t);
  // Alphabet: every char seen plus the initial alphabet, in code point order.
  const alphabet = new Set<number>();
  for (const w of wordCounts.keys()) for (const ch of w) alphabet.add(ch.codePointAt(0) as number);
  for (const ch of initialAlphabet) alphabet.add(ch.codePointAt(0) as number);
  for (const cp of [...alphabet].sort((x, y) => x - y)) add(String.fromCodePoint(cp));

  const words: number[][] = [];
  const counts: number[] = [];
  for (const [w, c] of wordCounts) {
    words.push([...w].map((ch) => wordToId.get(ch) as number));
    counts.push(c);
  }

  const pairCounts = new Map<number, number>();
  let where = new Map<number, Set<number>>();
  words.forEach((word, i) => {
    for (let k = 0; k + 1 < word.length; k++) {
      const key = word[k] * PAIR + word[k + 1];
      pairCounts.set(key, (pairCounts.get(key) ?? 0) + counts[i]);
      addPosition(where, key, i);
    }
  });

  const queue = new MaxHeap();
  let seq = 0;
  const pushAll = () => {
    for (const [key, pos] of where) {
      const count = pairCounts.get(key) as number;
      if (count > 0) queue.push({ a: Math.floor(key / PAIR), b: key % PAIR, count, pos, seq: seq++ });
    }
    where = new Map();
  };
  pushAll();

  const merges: Array<[number, number, number]> = []; // [a, b, new id]
  for (;;) {
    if (wordToId.size >= vocabSize) break;
    const top = queue.pop();
    if (!top) break;
    const key = top.a * PAIR + top.b;
    const current = pairCounts.get(key) as number;
    if (top.count !== current) {
      top.count = current;
      top.seq = seq++;
      queue.push(top);
      continue;
    }
    if (top.count < 1 || minFrequency > top.count) break;
    const newToken = idToWord[top.a] + idToWord[top.b];
    add(newToken);
    const newId = wordToId.get(newToken) as number;
    merges.push([top.a, top.b, newId]);
    for (const i of top.pos) {
      for (const [pairKey, change] of mergeWord(words[i], top.a, top.b, newId)) {
        pairCounts.set(pairKey, (pairCounts.get(pairKey) ?? 0) + change * counts[i]);
        if (change > 0) {
          addPosition(where, pairKey, i);
        }
      }
    }
    pushAll();
  }

  // A pair merged twice keeps its last rank, as when HF collects the merges into a map.
  const rankOf = new Map<number, number>();
  merges.forEach(([a, b], rank) => {
    rankOf.set(a * PAIR + b, rank);
  });
  const ordered = merges.filter(([a, b], rank) => rankOf.get(a * PAIR + b) === rank);
  return { vocab: wordToId, merges: ordered.map(([a, b]) => [idToWord[a], idToWord[b]]) };
}

function addPosition(where: Map<number, Set<number>>, key: number, word: number): void {
  const set = where.get(key);
  if (set) set.add(word);
  else where.set(key, new Set([word]));
}

/** HF's Word::merge: replaces each (a, b) left to right; returns (pair key, +1/-1) count changes. */
function mergeWord(symbols: number[], a: number, b: number, replacement: number): Array<[number, number]> {
  const changes: Array<[number, number]> = [];
  let i = 0;
  while (i < symbols.length) {
    if (symbols[i] === a && i + 1 < symbols.length && symbols[i + 1] === b) {
      if (i > 0) {
        changes.push([symbols[i - 1] * PAIR + a, -1]);
        changes.push([symbols[i - 1] * PAIR + replacement, 1]);
      }
      symbols.splice(i, 2, replacement);
      if (i < symbols.length - 1) {
        changes.push([b * PAIR + symbols[i + 1], -1]);
        changes.push([replacement * PAIR + symbols[i + 1], 1]);
      }
    }
    i++;
  }
  return changes;
}

/** Highest count first; ties: smaller (a, b) first; then first pushed. */
class MaxHeap {
  private items: QueueEntry[] = [];

  private before(x: QueueEntry, y: QueueEntry): boolean {
    if (x.count !== y.count) return x.count > y.count;
    if (x.a !== y.a) return x.a < y.a;
    if (x.b !== y.b) return x.b < y.b;
    return x.seq < y.seq;
  }

  push(e: QueueEntry): void {
    const items = this.items;
    let i = items.length;
    items.push(e);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.before(e, items[p])) break;
      items[i] = items[p];
      i = p;
    }
    items[i] = e;
  }

  pop(): QueueEntry | undefined {
    const items = this.items;
    if (items.length === 0) return undefined;
    const top = items[0];
    const last = items.pop() as QueueEntry;
    if (items.length > 0) {
      let i = 0;
      for (;;) {
        let c = 2 * i + 1;
        if (c >= items.length) break;
        if (c + 1 < items.length && this.before(items[c + 1], items[c])) c++;
        if (!this.before(items[c], last)) break;
        items[i] = items[c];
        i = c;
      }
      items[i] = last;
    }
    return top;
  }
}
