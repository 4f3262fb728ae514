// Incremental decoding for generation (HF's DecodeStream): text is released only once the ids decode to
// complete characters, so a multi-byte character split over several tokens never comes out as U+FFFD halves.
import type { Tokenizer } from './tokenizer.js';

export class DecodeStream {
  private ids: number[] = [];
  private prefix = '';
  private prefixIndex = 0;

  constructor(
    private readonly tokenizer: Tokenizer,
    private readonly skipSpecialTokens: boolean,
  ) {}

  /** Feeds one id; returns the newly completed text, or null while a character is still incomplete. */
  step(id: number): string | null {
    this.ids.push(id);
    const text = this.tokenizer.decode(this.ids, { skipSpecialTokens: this.skipSpecialTokens });
    if (text.length <= this.prefix.length || text.endsWith('\ufffd')) return null;
    if (!text.startsWith(this.prefix))
      throw new Error('DecodeStream: decoded text no longer extends its prefix');
    const fresh = text.slice(this.prefix.length);
    // Keep only the ids since the last release as context, so each step decodes a short window.
    const nextPrefixIndex = this.ids.length - this.prefixIndex;
    this.ids = this.ids.slice(this.prefixIndex);
    this.prefix = this.tokenizer.decode(this.ids, { skipSpecialTokens: this.skipSpecialTokens });
    this.prefixIndex = nextPrefixIndex;
    return fresh;
  }

  /** Ends the stream: returns whatever is pending (incomplete bytes come out as U+FFFD) and resets. */
  flush(): string {
    const text = this.tokenizer.decode(this.ids, { skipSpecialTokens: this.skipSpecialTokens });
    const rest = text.startsWith(this.prefix) ? text.slice(this.prefix.length) : text;
    this.ids = [];
    this.prefix = '';
    this.prefixIndex = 0;
    return rest;
  }
}
