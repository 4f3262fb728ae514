import { writeFileSync } from 'node:fs';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import {
  ConfigError,
  expectedParameterShapes,
  type MPTConfig,
  parseMptConfig,
  type StateDict,
} from '@mptjs/mpt-model';
import { randomFloats, sharedFile, TINY_MOSAIC_DIR } from '@mptjs/test-fixtures';
import { describe, expect, it } from 'vitest';
import { loadCheckpoint, saveCheckpoint } from './checkpoint.js';
import { f16ToF32, f32ToF16 } from './dtypes.js';
import { readSafetensors, writeSafetensors } from './safetensors.js';
import { appendRawTensor, expectSameStateDict, tempDir } from './testing/checkpoint-files.js';

const root = tempDir();

const tinyConfig: MPTConfig = parseMptConfig({
  model_type: 'mpt',
  d_model: 8,
  n_heads: 2,
  n_layers: 2,
  expansion_ratio: 2,
  max_seq_len: 16,
  vocab_size: 11,
  no_bias: true,
  attn_config: { alibi: true, qk_ln: true },
});

function randomStateDict(config: MPTConfig, seed = 1): StateDict {
  const sd: StateDict = new Map();
  for (const [name, shape] of expectedParameterShapes(config)) {
    sd.set(name, {
      shape,
      data: randomFloats(
        shape.reduce((a, b) => a * b, 1),
        seed++,
      ),
    });
  }
  return sd;
}

describe('the shared MosaicGPT checkpoint (pytorch_model.bin)', () => {
  const config = sharedFile(`${TINY_MOSAIC_DIR}/config.json`);
  it.skipIf(!config)('loads with MPT names, every parameter in its expected shape', async () => {
    const ckpt = await loadCheckpoint(dirname(config!));
    expect(ckpt.config.modelType).toBe('mosaic_gpt');
    expect(ckpt.source).toEqual({ format: 'pytorch_bin', dtype: 'F32', files: ['pytorch_model.bin'] });
    const expected = expectedParameterShapes(ckpt.config);
    expect([...ckpt.stateDict.keys()]).toEqual([...expected.keys()]);
    for (const [name, t] of ckpt.stateDict) {
      expect(t.shape).toEqual(expected.get(name));
      expect(t.data.length).toBe(t.shape.reduce((a, b) => a * b, 1));
    }
    expect(ckpt.stateDict.has('transformer.blocks.1.ffn.down_proj.weight')).toBe(true);
    // LayerNorm weights start at 1 and move a little in training; embeddings are small.
    const ln = ckpt.stateDict.get('transformer.norm_f.weight')!.data;
    expect(Math.max(...ln.map((x) => Math.abs(x - 1)))).toBeLessThan(1);
  });

  it.skipIf(!config)('survives a save to safetensors and a reload, bit for bit', async () => {
    const src = await loadCheckpoint(dirname(config!));
    const out = join(root, 'resaved');
    await saveCheckpoint(out, src.config, src.stateDict);
    const back = await loadCheckpoint(out);
    expect(back.configJson['model_type']).toBe('mpt');
    expect(back.config).toEqual({ ...src.config, modelType: 'mpt' });
    expectSameStateDict(back.stateDict, src.stateDict);
  });
});

describe('saveCheckpoint', () => {
  it('writes one model.safetensors and a config.json in the mpt dialect', async () => {
    const dir = join(root, 'single');
    const sd = randomStateDict(tinyConfig);
    const saved = await saveCheckpoint(dir, tinyConfig, sd);
    expect(saved.files).toEqual(['model.safetensors', 'config.json']);
    expect((await readdir(dir)).sort()).toEqual(['config.json', 'model.safetensors']);
    const back = await loadCheckpoint(dir);
    expect(back.source).toEqual({ format: 'safetensors', dtype: 'F32', files: ['model.safetensors'] });
    expect(back.stateDict).toEqual(sd);
    expect(back.config).toEqual(tinyConfig);
  });

  it('shards by size with an index, and replaces a previous layout', async () => {
    const dir = join(root, 'sharded');
    const sd = randomStateDict(tinyConfig, 5);
    await saveCheckpoint(dir, tinyConfig, sd);
    const saved = await saveCheckpoint(dir, tinyConfig, sd, { shardSizeBytes: 600 });
    const shards = saved.files.filter((f) => f.startsWith('model-'));
    expect(shards.length).toBeGreaterThan(2);
    expect(shards[0]).toBe(`model-00001-of-${String(shards.length).padStart(5, '0')}.safetensors`);
    expect((await readdir(dir)).includes('model.safetensors')).toBe(false);
    const index = JSON.parse(await readFile(join(dir, 'model.safetensors.index.json'), 'utf8'));
    expect(Object.keys(index.weight_map).sort()).toEqual([...sd.keys()].sort());
    expect(index.metadata.total_size).toBe(saved.totalBytes);
    const back = await loadCheckpoint(dir);
    expect(back.source.files).toEqual(shards);
    expect(back.stateDict).toEqual(sd);
    // Saving unsharded again removes the shards and the index.
    await saveCheckpoint(dir, tinyConfig, sd);
    expect((await readdir(dir)).sort()).toEqual(['config.json', 'model.safetensors']);
  });

  it('stores F16 and BF16, which load back widened exactly', async () => {
    const sd = randomStateDict(tinyConfig, 9);
    for (const dtype of ['F16', 'BF16'] as const) {
      const dir = join(root, dtype);
      await saveCheckpoint(dir, tinyConfig, sd, { dtype });
      const back = await loadCheckpoint(dir);
      expect(back.source.dtype).toBe(dtype);
      expect(back.configJson['torch_dtype']).toBe(dtype === 'F16' ? 'float16' : 'bfloat16');
      const w = sd.get('transformer.wte.weight')!.data;
      const got = back.stateDict.get('transformer.wte.weight')!.data;
      const want = dtype === 'F16' ? f16ToF32(f32ToF16(w)) : w.map((x) => Math.fround(x));
      if (dtype === 'F16') expect(got).toEqual(want);
      else
        for (let i = 0; i < w.length; i++)
          expect(Math.abs(got[i]! - w[i]!)).toBeLessThanOrEqual(Math.abs(w[i]!) / 256);
    }
  });

  it('refuses a state dict that does not fit the config', async () => {
    const sd = randomStateDict(tinyConfig);
    sd.delete('transformer.blocks.1.norm_2.weight');
    await expect(saveCheckpoint(join(root, 'bad'), tinyConfig, sd)).rejects.toThrow(
      'missing tensor "transformer.blocks.1.norm_2.weight" [8]',
    );
    await expect(
      saveCheckpoint(join(root, 'bad'), tinyConfig, randomStateDict(tinyConfig), { dtype: 'F64' as 'F32' }),
    ).rejects.toThrow('unsupported dtype "F64"');
  });
});

describe('loadCheckpoint errors', () => {
  async function checkpointWith(
    name: string,
    edit: (sd: Map<string, { shape: number[]; data: Float32Array }>) => void,
    config: object = {},
  ) {
    const dir = join(root, name);
    await mkdir(dir, { recursive: true });
    const sd = randomStateDict(tinyConfig);
    edit(sd);
    await writeSafetensors(join(dir, 'model.safetensors'), sd);
    writeFileSync(
      join(dir, 'config.json'),
      JSON.stringify({
        model_type: 'mpt',
        d_model: 8,
        n_heads: 2,
        n_layers: 2,
        expansion_ratio: 2,
        max_seq_len: 16,
        vocab_size: 11,
        no_bias: true,
        attn_config: { alibi: true, qk_ln: true },
        ...config,
      }),
    );
    return dir;
  }

  it('names a missing tensor, an unexpected one, and both shapes of a mismatch', async () => {
    const dir = await checkpointWith('mismatch', (sd) => {
      sd.delete('transformer.blocks.0.attn.k_ln.weight');
      sd.set('lm_head.weight', { shape: [11, 8], data: new Float32Array(88) });
      sd.set('transformer.blocks.0.ffn.up_proj.weight', { shape: [8, 16], data: new Float32Array(128) });
    });
    const err = loadCheckpoint(dir);
    await expect(err).rejects.toThrow('missing tensor "transformer.blocks.0.attn.k_ln.weight" [8]');
    await expect(loadCheckpoint(dir)).rejects.toThrow('unexpected tensor "lm_head.weight" [11, 8]');
    await expect(loadCheckpoint(dir)).rejects.toThrow(
      'tensor "transformer.blocks.0.ffn.up_proj.weight" has shape [8, 16], the config needs [16, 8]',
    );
  });

  it('accepts MosaicGPT names with a model. prefix and drops mask buffers', async () => {
    const dir = await checkpointWith('mosaic-names', (sd) => {
      const entries = [...sd];
      sd.clear();
      for (const [k, v] of entries) {
        sd.set(
          `model.${k.replace('norm_1', 'ln_1').replace('norm_2', 'ln_2').replace('ffn.up_proj', 'mlp.mlp_up').replace('ffn.down_proj', 'mlp.mlp_down').replace('norm_f', 'ln_f')}`,
          v,
        );
      }
      sd.set('model.transformer.attn_bias', { shape: [1, 2, 1, 16], data: new Float32Array(32) });
      sd.set('model.transformer.blocks.0.attn.bias', { shape: [16, 16], data: new Float32Array(256) });
    });
    const ckpt = await loadCheckpoint(dir);
    expect([...ckpt.stateDict.keys()]).toEqual([...expectedParameterShapes(tinyConfig).keys()]);
  });

  it('skips a mask buffer of a dtype it does not read (BOOL attn.bias)', async () => {
    const dir = await checkpointWith('bool-mask', () => {});
    appendRawTensor(
      join(dir, 'model.safetensors'),
      'transformer.blocks.0.attn.bias',
      'BOOL',
      [4, 4],
      new Uint8Array(16).fill(1),
    );
    const ckpt = await loadCheckpoint(dir);
    expect(ckpt.stateDict.has('transformer.blocks.0.attn.bias')).toBe(false);
    expect(ckpt.stateDict.size).toBe(expectedParameterShapes(tinyConfig).size);
  });

  it('rejects two names for one parameter', async () => {
    const dir = await checkpointWith('clash', (sd) => {
      sd.set('transformer.ln_f.weight', sd.get('transformer.norm_f.weight')!);
    });
    await expect(loadCheckpoint(dir)).rejects.toThrow('both "transformer.norm_f.weight"');
  });

  it('reports a config key with an impossible value', async () => {
    const dir = await checkpointWith('config', () => {}, { n_heads: 3 });
    await expect(loadCheckpoint(dir)).rejects.toThrow(ConfigError);
    await expect(loadCheckpoint(dir)).rejects.toThrow('"d_model" (8) must be divisible by "n_heads" (3)');
    const neg = await checkpointWith('config2', () => {}, { attn_config: { clip_qkv: -1 } });
    await expect(loadCheckpoint(neg)).rejects.toThrow(
      'config key "attn_config.clip_qkv" must be a positive number or null, got -1',
    );
  });

  it('says where no weights were found', async () => {
    const dir = join(root, 'empty');
    await mkdir(dir, { recursive: true });
    writeFileSync(
      join(dir, 'config.json'),
      JSON.stringify({ d_model: 8, n_heads: 2, n_layers: 1, max_seq_len: 8, vocab_size: 4 }),
    );
    await expect(loadCheckpoint(dir)).rejects.toThrow('no weights found (looked for model.safetensors');
    await expect(loadCheckpoint(join(root, 'nowhere'))).rejects.toThrow('no config.json');
  });

  it('names an unsupported dtype of a parameter', async () => {
    const dir = await checkpointWith('int-param', () => {});
    const sd = await readSafetensors(join(dir, 'model.safetensors'));
    const ln = sd.get('transformer.norm_f.weight')!;
    sd.set('transformer.norm_f.weight', { dtype: 'I32', shape: ln.shape, data: new Int32Array(8) });
    await writeSafetensors(join(dir, 'model.safetensors'), sd);
    await expect(loadCheckpoint(dir)).rejects.toThrow(
      'tensor "transformer.norm_f.weight" has dtype I32, a parameter must be F32, F16 or BF16',
    );
  });
});

describe('sharded checkpoints with a broken index', () => {
  async function sharded(name: string): Promise<string> {
    const dir = join(root, name);
    await saveCheckpoint(dir, tinyConfig, randomStateDict(tinyConfig), { shardSizeBytes: 600 });
    return dir;
  }
  const editIndex = async (dir: string, edit: (map: Record<string, string>) => void) => {
    const path = join(dir, 'model.safetensors.index.json');
    const index = JSON.parse(await readFile(path, 'utf8'));
    edit(index.weight_map);
    writeFileSync(path, JSON.stringify(index));
  };

  it('names a shard that is missing', async () => {
    const dir = await sharded('missing-shard');
    await editIndex(dir, (m) => {
      m['transformer.wte.weight'] = 'model-00042-of-00099.safetensors';
    });
    await expect(loadCheckpoint(dir)).rejects.toThrow(
      'shard "model-00042-of-00099.safetensors" named in model.safetensors.index.json is missing',
    );
  });

  it('refuses shard names outside the directory', async () => {
    const dir = await sharded('escape');
    await editIndex(dir, (m) => {
      m['transformer.wte.weight'] = '../../etc/passwd';
    });
    await expect(loadCheckpoint(dir)).rejects.toThrow(
      'weight_map["transformer.wte.weight"] is not a file name in this directory',
    );
  });

  it('names a tensor the index places in a shard that lacks it', async () => {
    const dir = await sharded('wrong-shard');
    let first = '';
    await editIndex(dir, (m) => {
      first = m['transformer.wte.weight']!;
      m['transformer.norm_f.weight'] = first;
    });
    await expect(loadCheckpoint(dir)).rejects.toThrow(
      `shard "${first}" has no tensor "transformer.norm_f.weight"`,
    );
  });
});
