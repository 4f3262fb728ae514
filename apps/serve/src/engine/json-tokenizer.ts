import { setImmediate as nextTurn } from 'node:timers/promises';
import { Tokenizer } from '@mptjs/tokenizer';
import { splitForEncoding, splitsExactly, type TokenizerLayout } from './text-pieces.js';
import type { TextTokenizer } from './types.js';

/** The names end-of-text goes by in tokenizer.json files of GPT-style vocabularies. */
const EOS_NAMES = ['<|endoftext|>', '</s>', '<eos>'];

/** Characters encoded between two turns of the event loop (a few milliseconds of work). */
export const ENCODE_PIECE_CHARS = 8 * 1024;

/** TextTokenizer over `@mptjs/tokenizer` (a Hugging Face tokenizer.json). */
export class JsonTokenizer implements TextTokenizer {
  readonly eosTokenId: number | undefined;
  /** Whether long texts can be encoded piece by piece with the same ids (see `splitsExactly`). */
  readonly encodesInPieces: boolean;

  private constructor(readonly tokenizer: Tokenizer) {
    this.eosTokenId = EOS_NAMES.map((n) => tokenizer.tokenToId(n)).find((id) => id !== undefined);
    this.encodesInPieces = splitsExactly(JSON.parse(tokenizer.toJSONString()) as TokenizerLayout);
  }

  static async fromFile(path: string): Promise<JsonTokenizer> {
    return new JsonTokenizer(await Tokenizer.fromFile(path));
  }

  get vocabSize(): number {
    return this.tokenizer.vocabSize;
  }

  encode(text: string): number[] {
    return this.tokenizer.encode(text);
  }

  /** Same ids as `encode`; a long text is encoded in pieces with a turn of the event loop between them. */
  async encodeAsync(text: string, pieceChars = ENCODE_PIECE_CHARS): Promise<number[]> {
    if (!this.encodesInPieces || text.length <= pieceChars) return this.encode(text);
    const ids: number[] = [];
    for (const piece of splitForEncoding(text, pieceChars)) {
      await nextTurn();
      for (const id of this.tokenizer.encode(piece)) ids.push(id);
    }
    return ids;
  }

  /** Ids past the vocabulary (the model's padding rows) have no text and are left out. */
  decode(ids: readonly number[]): string {
    const vocab = this.tokenizer.vocabSize;
    return this.tokenizer.decode(ids.some((id) => id >= vocab) ? ids.filter((id) => id < vocab) : ids);
  }
}
