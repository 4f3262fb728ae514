// biome-ignore-all lint/suspicious/noTemplateCurlyInString: OmegaConf ${...} references are what these tests are about
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { mixerConfig, parseDataset, parseTrainLoader } from './config.js';
import { MixerConfigError } from './config-error.js';
import { REDPAJAMA_MIX } from './presets.js';
import { sampleDir } from './testing/fixtures.js';
import { interpolate } from './yaml/interpolate.js';
import { parseDataRunConfig } from './yaml-config.js';

describe('train_loader parsing', () => {
  it('reads streams with proportions, seed and sequence length', () => {
    const cfg = parseTrainLoader({
      name: 'text',
      dataset: {
        max_seq_len: 64,
        shuffle_seed: 5,
        streams: { a: { local: '/x/a', proportion: 3 }, b: { local: '/x/b', proportion: 1, split: 'train' } },
      },
    });
    expect(cfg).toEqual({
      maxSeqLen: 64,
      shuffle: false, // llm-foundry's default: stored order unless asked
      shuffleSeed: 5,
      shuffleBlockSize: 4096,
      onBadRecord: 'fail',
      streams: [
        { name: 'a', local: '/x/a', proportion: 3 },
        { name: 'b', local: '/x/b', proportion: 1, split: 'train' },
      ],
    });
  });

  it('reads on_bad_record (fail or skip) and rejects other values', () => {
    const loader = (v: unknown) => ({ dataset: { max_seq_len: 8, local: '/x', on_bad_record: v } });
    expect(parseTrainLoader(loader('skip')).onBadRecord).toBe('skip');
    expect(parseTrainLoader(loader(undefined)).onBadRecord).toBe('fail');
    expect(() => parseTrainLoader(loader('ignore'))).toThrow(
      'train_loader.dataset.on_bad_record must be fail or skip, got "ignore"',
    );
  });

  it('names an unknown key', () => {
    expect(() => parseTrainLoader({ dataset: { max_seq_len: 8, streams: {}, shufle: true } })).toThrow(
      'unknown key train_loader.dataset.shufle',
    );
    expect(() =>
      parseTrainLoader({ dataset: { max_seq_len: 8, streams: { a: { local: 'a', proportoin: 1 } } } }),
    ).toThrow('unknown key train_loader.dataset.streams.a.proportoin');
  });

  it('rejects mixing proportion with streams that have none, and bad numbers', () => {
    expect(() =>
      parseTrainLoader({
        dataset: { max_seq_len: 8, streams: { a: { local: 'a', proportion: 1 }, b: { local: 'b' } } },
      }),
    ).toThrow('proportion given for some streams but not for b');
    expect(() =>
      parseTrainLoader({ dataset: { max_seq_len: 8, streams: { a: { local: 'a', proportion: -1 } } } }),
    ).toThrow('train_loader.dataset.streams.a.proportion must be a positive number, got -1');
    expect(() => parseTrainLoader({ dataset: { streams: { a: { local: 'a' } } } })).toThrow(
      'train_loader.dataset.max_seq_len must be a positive integer, got undefined',
    );
    expect(() =>
      parseTrainLoader({ dataset: { max_seq_len: 8, streams: { a: { local: 'a', repeat: 2, choose: 5 } } } }),
    ).toThrow('give only one of proportion, repeat, choose');
  });
});

describe('one definition of a valid dataset and stream', () => {
  const streams = (a: Record<string, unknown>) => ({ dataset: { max_seq_len: 8, streams: { a } } });
  const thrown = (f: () => unknown): MixerConfigError => {
    try {
      f();
    } catch (e) {
      expect(e).toBeInstanceOf(MixerConfigError);
      return e as MixerConfigError;
    }
    throw new Error('expected a MixerConfigError');
  };

  it('reports the key path and the problem as data, worded in the message', () => {
    const zero = thrown(() => parseTrainLoader(streams({ local: 'a', proportion: 0 })));
    expect(zero.key).toBe('train_loader.dataset.streams.a.proportion');
    expect(zero.problem).toEqual({ kind: 'invalid', rule: { type: 'positive-number' }, got: 0 });
    expect(zero.message).toBe('train_loader.dataset.streams.a.proportion must be a positive number, got 0');
    expect(thrown(() => parseTrainLoader(streams({ local: 'a', repeat: 0 }))).message).toBe(
      'train_loader.dataset.streams.a.repeat must be a positive number, got 0',
    );
    expect(thrown(() => parseTrainLoader(streams({ local: 'a', choose: 2.5 }))).message).toBe(
      'train_loader.dataset.streams.a.choose must be a positive integer, got 2.5',
    );
    const unknown = thrown(() => parseTrainLoader({ dataset: { max_seq_len: 8, local: 'a', shufle: true } }));
    expect([unknown.key, unknown.problem]).toEqual(['train_loader.dataset.shufle', { kind: 'unknown-key' }]);
    const missing = thrown(() => parseTrainLoader(streams({ split: 'train' })));
    expect([missing.key, missing.problem]).toEqual([
      'train_loader.dataset.streams.a.local',
      { kind: 'missing' },
    ]);
    expect(missing.message).toBe('train_loader.dataset.streams.a.local is required');
  });

  it('names the section it was given (eval_loader) and reads a null value as an absent key', () => {
    expect(
      thrown(() =>
        parseTrainLoader({ dataset: { max_seq_len: 8, local: 'a', shuffle: 'yes' } }, 8, 'eval_loader'),
      ).message,
    ).toBe('eval_loader.dataset.shuffle must be true or false, got "yes"');
    const cfg = parseTrainLoader({
      dataset: {
        max_seq_len: 8,
        shuffle: null,
        streams: { a: { local: 'a', proportion: null, split: null } },
      },
    });
    expect(cfg.shuffle).toBe(false);
    expect(cfg.streams).toEqual([{ name: 'a', local: 'a' }]);
  });

  it('checks the type of every key it keeps, at dataset and stream level', () => {
    const bad: [Record<string, unknown>, string][] = [
      [{ local: 'a', split: 3 }, 'train_loader.dataset.split must be a string, got 3'],
      [{ local: 'a', remote: 3 }, 'train_loader.dataset.remote must be a string, got 3'],
      [{ local: 'a', text_field: 3 }, 'train_loader.dataset.text_field must be a string, got 3'],
      [
        { local: 'a', eos_token_id: -1 },
        'train_loader.dataset.eos_token_id must be a non-negative integer, got -1',
      ],
      [{ local: '' }, 'train_loader.dataset.local must be a directory path, got ""'],
      [{ remote: 's3://b/c4' }, 'train_loader.dataset needs streams, local or preset'],
      [{ streams: {} }, 'train_loader.dataset.streams is empty'],
      [{ streams: [1] }, 'train_loader.dataset.streams must be a mapping of name -> stream, got [1]'],
      [
        { streams: { a: { local: 'a', split: 3 } } },
        'train_loader.dataset.streams.a.split must be a string, got 3',
      ],
      [
        { streams: { a: { local: 'a', remote: 3 } } },
        'train_loader.dataset.streams.a.remote must be a string, got 3',
      ],
      [{ streams: { a: 'a' } }, 'train_loader.dataset.streams.a must be a mapping, got "a"'],
      [{ preset: 'redpajama' }, 'train_loader.dataset.preset needs train_loader.dataset.root'],
      [{ preset: 'pile', root: '/d' }, 'train_loader.dataset.preset must be redpajama, got "pile"'],
      [{ local: 'a', root: '/d' }, 'train_loader.dataset.root is only used with train_loader.dataset.preset'],
    ];
    for (const [dataset, message] of bad) {
      expect(thrown(() => parseTrainLoader({ dataset: { max_seq_len: 8, ...dataset } })).message).toBe(
        message,
      );
    }
  });

  it('keeps the dataset as written, and builds the mixer config from it', () => {
    const dataset = parseDataset(
      {
        local: '/d',
        split: 'val',
        text_field: 'body',
        streams: { a: { local: '/a', text_field: 'content' }, b: { local: '/b' } },
      },
      'eval_loader.dataset',
      16,
    );
    expect(dataset.streams).toEqual([
      { name: 'a', local: '/a', textField: 'content' },
      { name: 'b', local: '/b' },
    ]);
    expect(mixerConfig(dataset).streams).toEqual([
      { name: 'a', local: '/a', textField: 'content' },
      { name: 'b', local: '/b', textField: 'body' },
    ]);
    expect(dataset.streams[1]).toEqual({ name: 'b', local: '/b' }); // not changed by building
    const lone = parseDataset({ local: '/d', split: 'val' }, 'eval_loader.dataset', 16);
    expect(mixerConfig(lone)).toMatchObject({
      maxSeqLen: 16,
      streams: [{ name: 'default', local: '/d', split: 'val' }],
    });
    const preset = parseDataset({ preset: 'redpajama', root: '/rp' }, 'train_loader.dataset', 16);
    expect(preset.preset).toEqual({ name: 'redpajama', root: '/rp' });
    expect(mixerConfig(preset).streams.map((s) => s.local)).toEqual(
      Object.keys(REDPAJAMA_MIX).map((n) => `/rp/${n}`),
    );
  });
});

describe('YAML configs', () => {
  it('interpolates ${...} references, keeping the type of whole-string references', () => {
    const root = { variables: { n: 128, dir: 'data' }, x: '${variables.n}', y: '${variables.dir}/c4' };
    expect(interpolate(root, root)).toMatchObject({ x: 128, y: 'data/c4' });
    expect(() => interpolate({ a: '${variables.missing}' }, root)).toThrow(
      'cannot resolve ${variables.missing}',
    );
  });

  it('parses the bundled RedPajama sample config', () => {
    const file = join(sampleDir, 'redpajama-sample.yaml');
    const cfg = parseDataRunConfig(readFileSync(file, 'utf8'), file);
    expect(cfg.tokenizerPath).toBe('../shared/data/gpt-neox-20b-tokenizer.json');
    expect(cfg.mixer.maxSeqLen).toBe(128);
    expect(cfg.mixer.shuffleSeed).toBe(17);
    expect(Object.fromEntries(cfg.mixer.streams.map((s) => [s.name, s.proportion]))).toEqual(REDPAJAMA_MIX);
    expect(cfg.mixer.streams[0]!.local).toBe('data/sample/common_crawl');
  });

  it('expands the redpajama preset', () => {
    const cfg = parseDataRunConfig(
      'max_seq_len: 32\ntokenizer: {name: t.json}\ntrain_loader:\n  dataset: {preset: redpajama, root: /d}\n',
    );
    expect(cfg.mixer.streams.map((s) => s.name)).toEqual(Object.keys(REDPAJAMA_MIX));
    expect(cfg.mixer.streams[1]).toEqual({ name: 'c4', local: '/d/c4', proportion: 0.15 });
    expect(cfg.mixer.maxSeqLen).toBe(32);
  });

  it('reports invalid YAML and missing sections with the file name', () => {
    expect(() => parseDataRunConfig('a: [1, 2', 'bad.yaml')).toThrow(/^bad.yaml: invalid YAML/);
    expect(() => parseDataRunConfig('a: !foo bar', 'tag.yaml')).toThrow(
      'tag.yaml: invalid YAML (Unresolved tag: !foo',
    );
    expect(() => parseDataRunConfig('train_loader: {}', 'c.yaml')).toThrow(
      'c.yaml: tokenizer.name must be a path',
    );
  });

  it('refuses a YAML alias inside its own anchor and inherited members as references', () => {
    const head = 'max_seq_len: 32\ntokenizer: {name: t.json}\n';
    expect(() =>
      parseDataRunConfig(`${head}train_loader: &loop\n  dataset: {local: /d, again: *loop}\n`, 'loop.yaml'),
    ).toThrow('loop.yaml.train_loader.dataset.again: contains itself (a YAML alias inside its own anchor)');
    expect(() =>
      parseDataRunConfig(`${head}train_loader:\n  dataset: {local: '\${constructor}'}\n`, 'c.yaml'),
    ).toThrow('c.yaml.train_loader.dataset.local: cannot resolve ${constructor}');
  });
});
