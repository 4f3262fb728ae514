// Packs one stream's documents into fixed-length samples, llm-foundry style: each text document contributes
// `ids + [eos]` (GPT-NeoX has no BOS), samples are cut every `seqLen` tokens, and the remainder carries into
// the stream's next sample. Token documents (pre-tokenised MDS) are used as they are, without an added EOS.
import type { DocumentPosition, ShuffledDocuments } from './shuffled-documents.js';
import type { Document } from './source.js';
import type { TextTokenizer } from './tokenizer.js';

/** Where a stream stands: the document the next token comes from, and the token offset inside it. */
export interface StreamCursor extends DocumentPosition {
  token: number;
}

export function toInt32(ids: ArrayLike<number>): Int32Array {
  return ids instanceof Int32Array ? ids : Int32Array.from(ids as ArrayLike<number>);
}

export class StreamPacker {
  private tokens: Int32Array | undefined;
  private token = 0;

  constructor(
    private readonly docs: ShuffledDocuments,
    private readonly tokenizer: () => Promise<{ tokenizer: TextTokenizer; eosId: number }>,
  ) {}

  get cursor(): StreamCursor {
    return { ...this.docs.at, token: this.token };
  }

  restore(cursor: StreamCursor): void {
    this.docs.seek(cursor);
    this.token = cursor.token;
    this.tokens = undefined;
  }

  /** Writes the next `length` tokens of this stream into `out` at `offset` (or skips them when out is null). */
  async fill(out: Int32Array | null, offset: number, length: number): Promise<void> {
    let need = length;
    while (need > 0) {
      if (!this.tokens) {
        this.tokens = await this.encode(await this.docs.current());
        if (this.token >= this.tokens.length)
          throw new Error('stream cursor points past the end of its document');
      }
      const take = Math.min(need, this.tokens.length - this.token);
      out?.set(this.tokens.subarray(this.token, this.token + take), offset + length - need);
      this.token += take;
      need -= take;
      if (this.token === this.tokens.length) {
        this.docs.advance();
        this.tokens = undefined;
        this.token = 0;
      }
    }
  }

  private async encode(doc: Document): Promise<Int32Array> {
    if (typeof doc !== 'string') return doc;
    const { tokenizer, eosId } = await this.tokenizer();
    const ids = await tokenizer.encode(doc);
    const out = new Int32Array(ids.length + 1);
    out.set(toInt32(ids));
    out[ids.length] = eosId;
    return out;
  }
}
