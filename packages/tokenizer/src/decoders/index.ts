// Decoders: token strings -> text (HF's Decoder::decode_chain, then joined).
import type { JsonNode } from '../json/reader.js';
import { CHAR_TO_BYTE } from '../utils/byte-level.js';

export interface Decoder {
  decodeChain(tokens: string[]): string[];
}

const utf8 = new TextEncoder();
const lossy = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });
const strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Byte-level chars back to bytes (tokens with other chars contribute their own UTF-8), then lossy UTF-8. */
export class ByteLevelDecoder implements Decoder {
  decodeChain(tokens: string[]): string[] {
    return [lossy.decode(byteLevelBytes(tokens))];
  }
}

export function byteLevelBytes(tokens: readonly string[]): Uint8Array {
  let total = 0;
  for (const t of tokens) total += t.length * 3;
  const bytes = new Uint8Array(total);
  let n = 0;
  for (const t of tokens) {
    let mapped = true;
    for (let i = 0; i < t.length; i++) {
      const c = t.charCodeAt(i);
      if (c >= CHAR_TO_BYTE.length || CHAR_TO_BYTE[c] < 0) {
        mapped = false;
        break;
      }
    }
    if (mapped) for (let i = 0; i < t.length; i++) bytes[n++] = CHAR_TO_BYTE[t.charCodeAt(i)];
    else {
      const raw = utf8.encode(t);
      bytes.set(raw, n);
      n += raw.length;
    }
  }
  return bytes.subarray(0, n);
}

/** `<0xXX>` tokens back to bytes; a run that is not valid UTF-8 becomes one U+FFFD per byte (HF). */
export class ByteFallbackDecoder implements Decoder {
  decodeChain(tokens: string[]): string[] {
    const out: string[] = [];
    let pending: number[] = [];
    const flush = () => {
      if (pending.length === 0) return;
      try {
        out.push(strict.decode(Uint8Array.from(pending)));
      } catch {
        for (let i = 0; i < pending.length; i++) out.push('\ufffd');
      }
      pending = [];
    };
    for (const t of tokens) {
      const m = t.length === 6 && /^<0x[0-9A-Fa-f]{2}>$/.test(t) ? Number.parseInt(t.slice(3, 5), 16) : -1;
      if (m >= 0) pending.push(m);
      else {
        flush();
        out.push(t);
      }
    }
    flush();
    return out;
  }
}

export class FuseDecoder implements Decoder {
  decodeChain(tokens: string[]): string[] {
    return [tokens.join('')];
  }
}

/** Removes up to `start` leading and `stop` trailing `content` chars from each token. */
export class StripDecoder implements Decoder {
  constructor(
    readonly content: string,
    readonly start: number,
    readonly stop: number,
  ) {}

  decodeChain(tokens: string[]): string[] {
    return tokens.map((t) => {
      const chars = [...t];
      let a = 0;
      while (a < this.start && a < chars.length && chars[a] === this.content) a++;
      let b = chars.length;
      while (chars.length - b < this.stop && b > a && chars[b - 1] === this.content) b--;
      return chars.slice(a, b).join('');
    });
  }
}

export class ReplaceDecoder implements Decoder {
  constructor(
    readonly pattern: string,
    readonly content: string,
  ) {}

  decodeChain(tokens: string[]): string[] {
    return tokens.map((t) => t.split(this.pattern).join(this.content));
  }
}

export class DecoderSequence implements Decoder {
  constructor(readonly decoders: readonly Decoder[]) {}

  decodeChain(tokens: string[]): string[] {
    for (const d of this.decoders) tokens = d.decodeChain(tokens);
    return tokens;
  }
}

export const SUPPORTED_DECODERS = ['ByteLevel', 'ByteFallback', 'Fuse', 'Strip', 'Replace', 'Sequence'];

export function decoderFromJson(node: JsonNode): Decoder | null {
  if (node.isMissing()) return null;
  const type = node.type();
  switch (type) {
    case 'ByteLevel':
      return new ByteLevelDecoder();
    case 'ByteFallback':
      return new ByteFallbackDecoder();
    case 'Fuse':
      return new FuseDecoder();
    case 'Strip': {
      const content = node.get('content').string();
      if ([...content].length !== 1) node.get('content').fail('a single character');
      return new StripDecoder(
        content,
        node.get('start').nonNegativeInteger(),
        node.get('stop').nonNegativeInteger(),
      );
    }
    case 'Replace': {
      const pattern = node.get('pattern');
      const obj = pattern.object();
      if (typeof obj.String !== 'string')
        pattern.unsupported('only {"String": ...} patterns are supported in the Replace decoder');
      return new ReplaceDecoder(obj.String as string, node.get('content').string());
    }
    case 'Sequence':
      return new DecoderSequence(
        node
          .get('decoders')
          .array()
          .map((d) => decoderFromJson(d) ?? d.fail('a decoder')),
      );
    default:
      return node
        .get('type')
        .unsupported(
          `unsupported decoder ${JSON.stringify(type)} (supported: ${SUPPORTED_DECODERS.join(', ')})`,
        );
  }
}
