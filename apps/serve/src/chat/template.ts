import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Template } from '@huggingface/jinja';

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
  name?: string | undefined;
}

/** Turns chat messages into the prompt text the model continues. */
export interface ChatTemplate {
  /** Where the template came from: the model's `tokenizer_config.json`, or the built-in plain format. */
  readonly source: 'tokenizer_config' | 'plain';
  render(messages: readonly ChatMessage[]): string;
  /** Stop strings every chat request gets (the plain format stops before the next `User:` turn). */
  readonly defaultStops: readonly string[];
}

/**
 * The plain format, for models without a chat template (mpt-1b-redpajama-200b is a base model):
 *
 *   <system content>\n\n            (when there is a system message)
 *   User: <content>\n\n
 *   Assistant: <content>\n\n
 *   Assistant:
 */
export const PLAIN_CHAT_TEMPLATE: ChatTemplate = {
  source: 'plain',
  defaultStops: ['\nUser:'],
  render(messages) {
    const turns = messages.map((m) => {
      if (m.role === 'system') return `${m.content}\n\n`;
      return `${m.role === 'user' ? 'User' : 'Assistant'}: ${m.content}\n\n`;
    });
    return `${turns.join('')}Assistant:`;
  },
};

function tokenText(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object' && typeof (value as { content?: unknown }).content === 'string') {
    return (value as { content: string }).content;
  }
  return undefined;
}

/** A Jinja chat template as Hugging Face's `apply_chat_template` renders it (with `add_generation_prompt`). */
export function jinjaChatTemplate(source: string, config: Record<string, unknown> = {}): ChatTemplate {
  const template = new Template(source);
  const bos = tokenText(config['bos_token']) ?? '';
  const eos = tokenText(config['eos_token']) ?? '';
  return {
    source: 'tokenizer_config',
    defaultStops: [],
    render(messages) {
      return template.render({
        messages,
        add_generation_prompt: true,
        bos_token: bos,
        eos_token: eos,
      });
    },
  };
}

/**
 * The first `chat_template` (a string, or a list of named templates where `default` wins) found in
 * `<dir>/tokenizer_config.json` of the given directories, else the plain template.
 */
export function loadChatTemplate(...dirs: (string | undefined)[]): ChatTemplate {
  for (const dir of dirs) {
    const path = dir && join(dir, 'tokenizer_config.json');
    if (!path || !existsSync(path)) continue;
    let config: Record<string, unknown>;
    try {
      config = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
    } catch (err) {
      throw new Error(`${path}: ${(err as Error).message}`);
    }
    let source = config['chat_template'];
    if (Array.isArray(source)) {
      const named = source as { name?: unknown; template?: unknown }[];
      source = (named.find((t) => t.name === 'default') ?? named[0])?.template;
    }
    if (typeof source === 'string' && source.length > 0) return jinjaChatTemplate(source, config);
  }
  return PLAIN_CHAT_TEMPLATE;
}
