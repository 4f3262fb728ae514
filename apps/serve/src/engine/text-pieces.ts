// Cutting a long text into pieces that a GPT-2-style byte-level tokenizer encodes exactly as the whole text.
//
// The GPT-2 split regex ('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+) has no look-behind
// and no alternative that holds a non-space followed by a space, so a single whitespace character between two
// non-whitespace characters always starts a pre-token of its own (` x`, `\n`, ...). Cutting just before it leaves
// every pre-token, and so every id, unchanged. NFC cannot compose across it either: a whitespace character is a
// starter that composes with nothing before it.

// JavaScript's \s plus U+0085 (Oniguruma's \s has it, JavaScript's does not). Counting too many characters as
// whitespace only skips cut points, so a superset is safe.
const WHITESPACE = /[\s\u0085]/;

const isSpace = (ch: string | undefined): boolean => ch === undefined || WHITESPACE.test(ch);

/**
 * Splits `text` into pieces of about `target` UTF-16 units, cutting only before a single whitespace character that
 * has non-whitespace on both sides. A stretch with no such place stays whole (a piece may then be longer).
 */
export function splitForEncoding(text: string, target: number): string[] {
  if (!(target >= 1)) throw new RangeError('target must be >= 1');
  const pieces: string[] = [];
  let start = 0;
  while (text.length - start > target) {
    let cut = -1;
    for (let i = start + target; i < text.length - 1; i++) {
      if (isSpace(text[i]) && !isSpace(text[i - 1]) && !isSpace(text[i + 1])) {
        cut = i;
        break;
      }
    }
    if (cut < 0) break;
    pieces.push(text.slice(start, cut));
    start = cut;
  }
  pieces.push(text.slice(start));
  return pieces;
}

/** The parts of a tokenizer.json that decide whether `splitForEncoding` keeps its ids exact. */
export interface TokenizerLayout {
  normalizer?: unknown;
  pre_tokenizer?: unknown;
  post_processor?: unknown;
  added_tokens?: unknown;
}

function typeOf(v: unknown): string | null | undefined {
  if (v === null || v === undefined) return null;
  if (typeof v !== 'object') return undefined;
  const t = (v as { type?: unknown }).type;
  return typeof t === 'string' ? t : undefined;
}

/**
 * True when a tokenizer.json encodes pieces cut by `splitForEncoding` exactly as the whole text: NFC or no
 * normalizer; a ByteLevel pre-tokenizer with the GPT-2 regex and no prefix space; no post-processor that adds
 * tokens; added tokens that neither strip nor need word boundaries and are either free of whitespace or runs of two
 * or more whitespace characters (GPT-NeoX's space runs). Anything else is encoded in one go.
 */
export function splitsExactly(layout: TokenizerLayout): boolean {
  const normalizer = typeOf(layout.normalizer);
  if (normalizer !== null && normalizer !== 'NFC') return false;
  const pre = layout.pre_tokenizer as { type?: unknown; use_regex?: unknown; add_prefix_space?: unknown };
  if (typeOf(pre) !== 'ByteLevel' || pre.use_regex === false || pre.add_prefix_space === true) return false;
  const postType = typeOf(layout.post_processor);
  if (postType !== null && postType !== 'ByteLevel') return false;
  const added = layout.added_tokens ?? [];
  if (!Array.isArray(added)) return false;
  return added.every((t: unknown) => {
    if (typeof t !== 'object' || t === null) return false;
    const a = t as Record<string, unknown>;
    if (a['lstrip'] === true || a['rstrip'] === true || a['single_word'] === true) return false;
    const content = a['content'];
    if (typeof content !== 'string') return false;
    const chars = [...content];
    const spaces = chars.filter((c) => WHITESPACE.test(c)).length;
    return spaces === 0 || (spaces === chars.length && chars.length >= 2);
  });
}
