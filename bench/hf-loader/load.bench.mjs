// Checkpoint loading speed of @mptjs/hf-loader: safetensors (F32, BF16) and pytorch_model.bin (torch zip) read into
// a validated float32 state dict, against a plain fs.readFile of the same bytes. Files are in the page cache
// (warm), so the figures are the loader's own cost, not the disk's.
// The checkpoint is an MPT with the real d_model / vocab and fewer layers (`--layers`, default 3: 1.02 GB in F32;
// the real 24-layer model is 5.25 GB).
// The .bin is written by torch when a Python with torch is found ($MPTJS_TORCH_PYTHON, else python3); otherwise
// that row is skipped.
// Usage: node bench/hf-loader/load.bench.mjs [--layers 3] [--repeats 3]
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { loadCheckpoint, saveCheckpoint } from '@mptjs/hf-loader';
import { expectedParameterShapes, parseMptConfig } from '@mptjs/mpt-model';
import { report, timeit } from '../lib.mjs';

const { values } = parseArgs({
  options: { layers: { type: 'string', default: '3' }, repeats: { type: 'string', default: '3' } },
});
const repeats = Number(values.repeats);
const config = parseMptConfig({
  model_type: 'mpt',
  d_model: 2048,
  n_heads: 16,
  n_layers: Number(values.layers),
  expansion_ratio: 4,
  max_seq_len: 2048,
  vocab_size: 50432,
  no_bias: true,
  attn_config: { alibi: true, qk_ln: true },
});

const stateDict = new Map();
let seed = 1;
for (const [name, shape] of expectedParameterShapes(config)) {
  const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < data.length; i++) {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    data[i] = (seed / 2 ** 32 - 0.5) * 0.1;
  }
  stateDict.set(name, { shape, data });
}

const root = mkdtempSync(join(tmpdir(), 'hf-loader-bench-'));
const dirs = { f32: join(root, 'f32'), bf16: join(root, 'bf16'), bin: join(root, 'bin') };
const rows = [];
const medians = {};
// Best of the repeats: on a shared machine the fastest run is the closest to the loader's own cost.
const row = (name, megabytes, t, unit = 'MB/s') => {
  rows.push({ name, value: megabytes / t.min_s, unit });
  medians[name] = `${(megabytes / t.median_s).toFixed(0)} ${unit}`;
};
try {
  const tSave = performance.now();
  const saved = await saveCheckpoint(dirs.f32, config, stateDict, { dtype: 'F32' });
  const saveSecs = (performance.now() - tSave) / 1000;
  await saveCheckpoint(dirs.bf16, config, stateDict, { dtype: 'BF16' });
  const mb = saved.totalBytes / 1e6;
  const f32File = join(dirs.f32, 'model.safetensors');

  const raw = await timeit(() => readFileSync(f32File), { repeats });
  row('fs.readFile (baseline)', mb, raw);
  const st = await timeit(() => loadCheckpoint(dirs.f32), { repeats });
  row('safetensors F32 -> state dict', mb, st);
  const bf = await timeit(() => loadCheckpoint(dirs.bf16), { repeats });
  row('safetensors BF16 -> F32 state dict', mb / 2, bf, 'MB/s (file)');
  rows.push({ name: 'saveCheckpoint F32 (one run)', value: mb / saveSecs, unit: 'MB/s' });

  const python = process.env.MPTJS_TORCH_PYTHON ?? 'python3';
  const fixtures = fileURLToPath(new URL('../../tools/test-fixtures/fixtures/', import.meta.url));
  const script = [
    'import sys, torch',
    `sys.path.insert(0, ${JSON.stringify(fixtures)})`,
    'from make_fixtures import read_safetensors',
    'sd = {k: v.clone() for k, v in read_safetensors(sys.argv[1]).items()}',
    'torch.save(sd, sys.argv[2])',
  ].join('\n');
  mkdirSync(dirs.bin);
  copyFileSync(join(dirs.f32, 'config.json'), join(dirs.bin, 'config.json'));
  const made = spawnSync(python, ['-c', script, f32File, join(dirs.bin, 'pytorch_model.bin')], {
    encoding: 'utf8',
  });
  if (made.status === 0) {
    const binMb = statSync(join(dirs.bin, 'pytorch_model.bin')).size / 1e6;
    const bin = await timeit(() => loadCheckpoint(dirs.bin), { repeats });
    row('pytorch_model.bin F32 -> state dict', binMb, bin);
  } else {
    console.log(
      `skipping pytorch_model.bin: ${python} with torch not found (${(made.stderr ?? '').trim().split('\n').at(-1)})`,
    );
  }
  report('hf-loader-load', {
    rows,
    baseline: 'fs.readFile (baseline)',
    notes: {
      checkpoint: `MPT d_model 2048, vocab 50432, ${config.nLayers} layers, ${mb.toFixed(0)} MB in F32`,
      cache: 'warm page cache',
      medians: JSON.stringify(medians),
      load_average: loadavg()
        .map((x) => x.toFixed(1))
        .join(' '),
    },
  });
} finally {
  rmSync(root, { recursive: true, force: true });
}
