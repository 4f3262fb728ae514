import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadChatTemplate, PLAIN_CHAT_TEMPLATE } from './template.js';

const CHATML =
  "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

const dir = mkdtempSync(join(tmpdir(), 'mptjs-template-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const messages = [
  { role: 'system' as const, content: 'Be brief.' },
  { role: 'user' as const, content: 'Hi!' },
];

describe('chat templates', () => {
  it("renders a tokenizer_config.json's Jinja template with the generation prompt", () => {
    writeFileSync(
      join(dir, 'tokenizer_config.json'),
      JSON.stringify({ chat_template: CHATML, eos_token: '<|im_end|>' }),
    );
    const t = loadChatTemplate(undefined, dir);
    expect(t.source).toBe('tokenizer_config');
    expect(t.render(messages)).toBe(
      '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n',
    );
  });

  it('picks the template named default from a list, with bos_token from an added-token object', () => {
    const sub = join(dir, 'named');
    rmSync(sub, { recursive: true, force: true });
    mkdirSync(sub);
    writeFileSync(
      join(sub, 'tokenizer_config.json'),
      JSON.stringify({
        bos_token: { content: '<s>' },
        chat_template: [
          { name: 'tool_use', template: 'tools' },
          {
            name: 'default',
            template: '{{ bos_token }}{% for m in messages %}[{{ m.role }}]{{ m.content }}{% endfor %}',
          },
        ],
      }),
    );
    expect(loadChatTemplate(sub).render(messages)).toBe('<s>[system]Be brief.[user]Hi!');
  });

  it('falls back to the plain template, which stops before the next user turn', () => {
    const t = loadChatTemplate(join(dir, 'missing'));
    expect(t).toBe(PLAIN_CHAT_TEMPLATE);
    expect(
      t.render([...messages, { role: 'assistant', content: 'Hello.' }, { role: 'user', content: 'More?' }]),
    ).toBe('Be brief.\n\nUser: Hi!\n\nAssistant: Hello.\n\nUser: More?\n\nAssistant:');
    expect(t.defaultStops).toEqual(['\nUser:']);
  });

  it('names the file when tokenizer_config.json is not JSON', () => {
    const bad = join(dir, 'bad');
    mkdirSync(bad, { recursive: true });
    writeFileSync(join(bad, 'tokenizer_config.json'), '{oops');
    expect(() => loadChatTemplate(bad)).toThrow(/bad\/tokenizer_config\.json: /);
  });
});
