// Post-processors: run on the whole encoding after the model (HF's PostProcessor).
import type { JsonNode } from '../json/reader.js';

/** The encoding a post-processor sees: offsets are in code points, `tokens` are the token strings. */
export interface EncodingParts {
  ids: number[];
  tokens: string[];
  offsets: number[] | null; // flat [start, end] per token
}

export interface PostProcessor {
  process(enc: EncodingParts, addSpecialTokens: boolean): EncodingParts;
}

const SPACE_CHAR = 'Ġ';
const WHITE_SPACE = /^\p{White_Space}$/u;

function isTrimmable(ch: string): boolean {
  return ch === SPACE_CHAR || WHITE_SPACE.test(ch);
}

/** ByteLevel: adds no tokens; with trim_offsets, offsets exclude leading/trailing spaces (HF's process_offsets). */
export class ByteLevelProcessor implements PostProcessor {
  constructor(
    readonly trimOffsets = true,
    readonly addPrefixSpace = true,
  ) {}

  process(enc: EncodingParts): EncodingParts {
    const offsets = enc.offsets;
    if (!this.trimOffsets || !offsets) return enc;
    for (let i = 0; i < enc.ids.length; i++) {
      const chars = [...enc.tokens[i]];
      let leading = 0;
      while (leading < chars.length && isTrimmable(chars[leading])) leading++;
      let trailing = 0;
      while (trailing < chars.length && isTrimmable(chars[chars.length - 1 - trailing])) trailing++;
      if (leading === 0 && trailing === 0) continue;
      if (leading > 0) {
        const isFirst = i === 0 || offsets[2 * i] === 0;
        if (!(isFirst && this.addPrefixSpace && leading === 1))
          offsets[2 * i] = Math.min(offsets[2 * i] + leading, offsets[2 * i + 1]);
      }
      if (trailing > 0 && offsets[2 * i + 1] >= trailing)
        offsets[2 * i + 1] = Math.max(offsets[2 * i + 1] - trailing, offsets[2 * i]);
    }
    return enc;
  }
}

interface TemplatePiece {
  special: string | null; // special token name, or null for the sequence
}

/** TemplateProcessing for single sequences: e.g. `<s> $A </s>` adds the special tokens around the text. */
export class TemplateProcessor implements PostProcessor {
  constructor(
    private readonly single: readonly TemplatePiece[],
    private readonly specials: ReadonlyMap<string, { ids: number[]; tokens: string[] }>,
  ) {}

  process(enc: EncodingParts, addSpecialTokens: boolean): EncodingParts {
    if (!addSpecialTokens) return enc;
    const out: EncodingParts = { ids: [], tokens: [], offsets: enc.offsets ? [] : null };
    for (const piece of this.single) {
      if (piece.special === null) {
        out.ids.push(...enc.ids);
        out.tokens.push(...enc.tokens);
        if (out.offsets && enc.offsets) out.offsets.push(...enc.offsets);
        continue;
      }
      const sp = this.specials.get(piece.special) as { ids: number[]; tokens: string[] };
      out.ids.push(...sp.ids);
      out.tokens.push(...sp.tokens);
      if (out.offsets) for (let k = 0; k < sp.ids.length; k++) out.offsets.push(0, 0);
    }
    return out;
  }
}

export class ProcessorSequence implements PostProcessor {
  constructor(readonly processors: readonly PostProcessor[]) {}

  process(enc: EncodingParts, addSpecialTokens: boolean): EncodingParts {
    for (const p of this.processors) enc = p.process(enc, addSpecialTokens);
    return enc;
  }
}

export const SUPPORTED_PROCESSORS = ['ByteLevel', 'TemplateProcessing', 'Sequence'];

export function postProcessorFromJson(node: JsonNode): PostProcessor | null {
  if (node.isMissing()) return null;
  const type = node.type();
  switch (type) {
    case 'ByteLevel':
      return new ByteLevelProcessor(
        node.get('trim_offsets').optionalBoolean(true),
        node.get('add_prefix_space').optionalBoolean(true),
      );
    case 'TemplateProcessing':
      return templateFromJson(node);
    case 'Sequence':
      return new ProcessorSequence(
        node
          .get('processors')
          .array()
          .map((p) => postProcessorFromJson(p) ?? p.fail('a post-processor')),
      );
    default:
      return node
        .get('type')
        .unsupported(
          `unsupported post-processor ${JSON.stringify(type)} (supported: ${SUPPORTED_PROCESSORS.join(', ')})`,
        );
  }
}

function templateFromJson(node: JsonNode): TemplateProcessor {
  const specials = new Map<string, { ids: number[]; tokens: string[] }>();
  const specialsNode = node.get('special_tokens');
  if (!specialsNode.isMissing()) {
    for (const name of Object.keys(specialsNode.object())) {
      const sp = specialsNode.get(name);
      const ids = sp
        .get('ids')
        .array()
        .map((n) => n.tokenId());
      const tokens = sp
        .get('tokens')
        .array()
        .map((n) => n.string());
      if (ids.length !== tokens.length) sp.get('tokens').fail(`${ids.length} tokens (one per id)`);
      specials.set(name, { ids, tokens });
    }
  }
  const parse = (list: JsonNode): TemplatePiece[] =>
    list.array().map((piece) => {
      const obj = piece.object();
      if ('SpecialToken' in obj) {
        const id = piece.get('SpecialToken').get('id');
        if (!specials.has(id.string())) id.fail(`a name listed in ${specialsNode.path}`);
        return { special: id.string() };
      }
      if ('Sequence' in obj) {
        const id = piece.get('Sequence').get('id');
        if (id.string() !== 'A' && id.string() !== 'B') id.fail('"A" or "B"');
        return { special: null };
      }
      return piece.fail('{"SpecialToken": ...} or {"Sequence": ...}');
    });
  const single = parse(node.get('single'));
  if (!node.get('pair').isMissing()) parse(node.get('pair'));
  return new TemplateProcessor(single, specials);
}
