// Builds the pre-tokenizer of a tokenizer.json (`pre_tokenizer` section).
import type { JsonNode } from '../json/reader.js';
import { onigToJs } from '../utils/unicode-classes.js';
import { ByteLevelPreTokenizer } from './byte-level.js';
import type { PreTokenizer } from './pre-tokenizer.js';
import { DigitsPreTokenizer, PreTokenizerSequence, SplitPreTokenizer } from './split.js';
import { SPLIT_BEHAVIORS, type SplitBehavior } from './split-behavior.js';

export { ByteLevelPreTokenizer, GPT2_PATTERN } from './byte-level.js';
export type { PreTokenizer } from './pre-tokenizer.js';
export { DigitsPreTokenizer, PreTokenizerSequence, SplitPreTokenizer } from './split.js';

export const SUPPORTED_PRE_TOKENIZERS = ['ByteLevel', 'Split', 'Digits', 'Sequence'];

export function preTokenizerFromJson(node: JsonNode): PreTokenizer | null {
  if (node.isMissing()) return null;
  const type = node.type();
  switch (type) {
    case 'ByteLevel':
      return new ByteLevelPreTokenizer(
        node.get('add_prefix_space').optionalBoolean(true),
        node.get('use_regex').optionalBoolean(true),
      );
    case 'Digits':
      return new DigitsPreTokenizer(node.get('individual_digits').optionalBoolean(false));
    case 'Split':
      return splitFromJson(node);
    case 'Sequence': {
      const list = node.get('pretokenizers');
      const steps = list.array().map((n) => preTokenizerFromJson(n) ?? n.fail('a pre-tokenizer'));
      steps.forEach((s, i) => {
        if (s.byteLevel && i !== steps.length - 1)
          list
            .array()
            [i].unsupported(
              'ByteLevel maps pieces to bytes, so it must be the last pre-tokenizer of a Sequence',
            );
      });
      return new PreTokenizerSequence(steps);
    }
    default:
      return node
        .get('type')
        .unsupported(
          `unsupported pre-tokenizer ${JSON.stringify(type)} (supported: ${SUPPORTED_PRE_TOKENIZERS.join(', ')})`,
        );
  }
}

function splitFromJson(node: JsonNode): PreTokenizer {
  const behaviorNode = node.get('behavior');
  const behavior = behaviorNode.string();
  if (!SPLIT_BEHAVIORS.includes(behavior as SplitBehavior))
    behaviorNode.fail(`one of ${SPLIT_BEHAVIORS.join(', ')}`);
  const pattern = node.get('pattern');
  const obj = pattern.object();
  let re: RegExp | null;
  if (typeof obj.String === 'string') {
    // Only syntax characters may be escaped in `u` mode (an escaped `-` outside a class is a SyntaxError).
    re = obj.String === '' ? null : new RegExp(obj.String.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&'), 'gu');
  } else if (typeof obj.Regex === 'string') {
    try {
      re = new RegExp(onigToJs(obj.Regex), 'gu');
    } catch (err) {
      return pattern
        .get('Regex')
        .unsupported(`regex not expressible in JavaScript: ${(err as Error).message}`);
    }
  } else return pattern.fail('{"String": ...} or {"Regex": ...}');
  return new SplitPreTokenizer(re, behavior as SplitBehavior, node.get('invert').optionalBoolean(false));
}
