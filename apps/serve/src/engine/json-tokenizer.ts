import { Tokenizer } from '@mptjs/tokenizer';
import type { TextTokenizer } from './types.js';

/** The names end-of-text goes by in tokenizer.json files of GPT-style vocabularies. */
const EOS_NAMES = ['<|endoftext|>', '</s>', '<eos>'];

/** TextTokenizer over `@mptjs/tokenizer` (a Hugging Face tokenizer.json). */
export class JsonTokenizer implements TextTokenizer {
  readonly eosTokenId: number | undefined;

  private constructor(readonly tokenizer: Tokenizer) {
    this.eosTokenId = EOS_NAMES.map((n) => tokenizer.tokenToId(n)).find((id) => id !== undefined);
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

  /** Ids past the vocabulary (the model's padding rows) have no text and are left out. */
  decode(ids: readonly number[]): string {
    const vocab = this.tokenizer.vocabSize;
    return this.tokenizer.decode(ids.some((id) => id >= vocab) ? ids.filter((id) => id < vocab) : ids);
  }
}
