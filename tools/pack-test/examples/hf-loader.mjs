// Mirrors packages/hf-loader/README.md's example against the installed tarball, then runs the loaded
// checkpoint through @mptjs/mpt-model and compares with the logits PyTorch gave (fixtures/mpt-f32).
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { selectBackend } from '@mptjs/alibi-attention';
import {
  loadCheckpoint,
  readSafetensors,
  resolveModel,
  saveCheckpoint,
  writeSafetensors,
} from '@mptjs/hf-loader';
import { MPTModel } from '@mptjs/mpt-model';

const out = mkdtempSync(join(tmpdir(), 'hf-loader-example-'));
const dir = await resolveModel('fixtures/mosaic-6heads'); // a local directory; hub ids download
const { config, stateDict, source } = await loadCheckpoint(dir);
console.log(source, config.dModel, stateDict.get('transformer.blocks.0.ffn.up_proj.weight')?.shape);
assert.equal(source.format, 'pytorch_bin');
assert.ok(stateDict.has('transformer.blocks.0.norm_1.weight'), 'MosaicGPT names renamed to MPT names');

const saved = await saveCheckpoint(join(out, 'exported'), config, stateDict, {
  dtype: 'BF16',
  shardSizeBytes: 2e5,
});
console.log('exported', saved.files);
const back = await loadCheckpoint(join(out, 'exported'));
assert.equal(back.source.dtype, 'BF16');
assert.deepEqual([...back.stateDict.keys()].sort(), [...stateDict.keys()].sort());

await writeSafetensors(join(out, 'ids.safetensors'), {
  input_ids: { shape: [1, 3], data: new BigInt64Array([1n, 2n, 3n]) },
});
const ids = (await readSafetensors(join(out, 'ids.safetensors'))).get('input_ids');
assert.equal(ids?.dtype, 'I64');
assert.deepEqual([...ids.data], [1n, 2n, 3n]);

// Load -> model -> logits, against PyTorch's.
await selectBackend('wasm', { log: false });
const f32 = await loadCheckpoint(resolve('fixtures/mpt-f32'));
const expected = await readSafetensors(resolve('fixtures/mpt-f32/expected.safetensors'));
const inputIds = expected.get('input_ids');
const rows = inputIds.shape[0];
const cols = inputIds.shape[1];
const batch = Array.from({ length: rows }, (_, r) =>
  Array.from(inputIds.data.slice(r * cols, (r + 1) * cols), Number),
);
const model = MPTModel.fromStateDict(f32.config, f32.stateDict);
const got = model.forward(batch).dataSync();
const want = expected.get('logits').data;
let num = 0;
let den = 0;
for (let i = 0; i < want.length; i++) {
  num += (got[i] - want[i]) ** 2;
  den += want[i] ** 2;
}
const rel = Math.sqrt(num / den);
console.log('mpt-f32 logits relative L2 vs PyTorch', rel);
assert.ok(rel < 1e-4, `logits differ from PyTorch: ${rel}`);
console.log('ok hf-loader');
