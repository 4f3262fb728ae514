// Property tests for the YAML config loader: mutated config text and random `--set` overrides either give a
// validated config or a TrainConfigError with a message; never a TypeError, a RangeError, a hang or a change to
// Object.prototype. Fixed run counts keep each property to a few seconds.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ByteMutation, mutateBytes, writeTinyRun } from '@mptjs/test-fixtures';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TrainConfigError } from './errors.js';
import { type LoadedConfig, parseTrainConfig } from './load.js';

const yaml = readFileSync(writeTinyRun(mkdtempSync(join(tmpdir(), 'mptjs-config-fuzz-'))), 'utf8');

const mutation: fc.Arbitrary<ByteMutation> = fc.oneof(
  fc.record({
    kind: fc.constant('set' as const),
    at: fc.nat(),
    value: fc.constantFrom(32, 10, 45, 58, 36, 123, 125, 38, 42, 48),
  }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ maxLength: 8 }) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 8 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({
    kind: fc.constant('copy' as const),
    from: fc.nat(),
    to: fc.nat(),
    length: fc.integer({ min: 1, max: 24 }),
  }),
);

/** Parses; a failure must be a TrainConfigError with a message, and must come quickly. */
function parseCleanly(text: string, overrides: string[] = []): LoadedConfig | undefined {
  const t0 = performance.now();
  try {
    return parseTrainConfig(text, overrides);
  } catch (e) {
    if (!(e instanceof TrainConfigError)) throw e;
    expect(e.message.length).toBeGreaterThan(0);
    return undefined;
  } finally {
    expect(performance.now() - t0).toBeLessThan(2000);
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
  }
}

const KEYS = [
  'max_duration',
  'optimizer.lr',
  'optimizer.betas',
  'model.n_layers',
  'model.attn_config.alibi',
  'train_loader.dataset.on_bad_record',
  'train_loader.dataset.streams.web.proportion',
  'train_loader.dataset.streams.web.text_field',
  'train_loader.dataset.shuffle_block_size',
  'train_loader.dataset.preset',
  'scheduler.t_warmup',
  'global_train_batch_size',
  'device_train_microbatch_size',
  'variables.max_seq_len',
  '__proto__.polluted',
  'constructor.prototype.polluted',
  'model.__proto__',
];

describe('fuzzing the YAML config loader', () => {
  it('loads the unmutated config (the control case)', () => {
    expect(parseCleanly(yaml)?.config.runName).toBe('tiny');
  });

  it('validates mutated YAML text or refuses it with a TrainConfigError', () => {
    const bytes = new TextEncoder().encode(yaml);
    const decoder = new TextDecoder();
    fc.assert(
      fc.property(fc.array(mutation, { minLength: 1, maxLength: 5 }), (ms) => {
        parseCleanly(decoder.decode(mutateBytes(bytes, ms)));
      }),
      { numRuns: 1500 },
    );
  });

  it('applies random --set overrides or refuses them with a TrainConfigError', () => {
    const value = fc.oneof(
      fc.constantFrom(
        '1',
        '-1',
        '0',
        '1e308',
        'null',
        '~',
        'true',
        '[1, 2]',
        '{a: 1}',
        `\${variables.max_seq_len}`,
        `\${nope}`,
        '12ba',
        'skip',
        'redpajama',
        '&a [*a]',
        '"x',
      ),
      fc.string({ maxLength: 12 }),
      fc.jsonValue({ maxDepth: 2 }).map((v) => JSON.stringify(v)),
    );
    const key = fc.oneof(
      fc.constantFrom(...KEYS),
      fc
        .array(fc.constantFrom('a', 'model', 'dataset', 'streams', '0', '__proto__', ''), {
          minLength: 1,
          maxLength: 4,
        })
        .map((p) => p.join('.')),
    );
    fc.assert(
      fc.property(fc.array(fc.tuple(key, value), { maxLength: 4 }), (sets) => {
        parseCleanly(
          yaml,
          sets.map(([k, v]) => `${k}=${v}`),
        );
      }),
      { numRuns: 1500 },
    );
  });
});
