// Test helpers: the bundled sample corpus, the real GPT-NeoX tokenizer, temporary directories.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoPath, sharedFile, TOKENIZER_JSON } from '@mptjs/test-fixtures';
import type { MixerConfig, StreamConfig } from '../config.js';
import { REDPAJAMA_MIX } from '../presets.js';
import type { TokenizerSpec } from '../tokenizer.js';

export const sampleDir = repoPath('data/sample');

const tokenizerPath = sharedFile(TOKENIZER_JSON);
export const tokenizerSpec: TokenizerSpec | undefined = tokenizerPath
  ? { path: tokenizerPath, library: 'mptjs' }
  : undefined;

export function sampleStreams(names: string[] = Object.keys(REDPAJAMA_MIX)): StreamConfig[] {
  return names.map((name) => ({ name, local: join(sampleDir, name), proportion: REDPAJAMA_MIX[name]! }));
}

export function sampleConfig(overrides: Partial<MixerConfig> = {}): MixerConfig {
  return {
    streams: sampleStreams(),
    maxSeqLen: 128,
    shuffle: true,
    shuffleSeed: 17,
    shuffleBlockSize: 16,
    ...overrides,
  };
}

export function tempDir(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'data-mixer-'));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
