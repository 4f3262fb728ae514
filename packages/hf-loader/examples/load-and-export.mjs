// Loads a checkpoint (hub id or directory), exports it as sharded bfloat16 safetensors, and writes an ids file.
// Run from the repository root: node packages/hf-loader/examples/load-and-export.mjs [org/name | dir]
import {
  loadCheckpoint,
  readSafetensors,
  resolveModel,
  saveCheckpoint,
  writeSafetensors,
} from '@mptjs/hf-loader';

// A hub id (downloaded into ~/.cache/huggingface/hub, or $HF_HOME/hub) or a local directory.
const dir = await resolveModel(process.argv[2] ?? 'tools/test-fixtures/fixtures/mosaic-6heads');
const { config, stateDict, source } = await loadCheckpoint(dir);
console.log(source, config.dModel, stateDict.get('transformer.blocks.0.ffn.up_proj.weight')?.shape);

// Export as bfloat16 safetensors in 2 MB shards, llm-foundry `mpt` config.
await saveCheckpoint('/tmp/exported', config, stateDict, { dtype: 'BF16', shardSizeBytes: 2e6 });

// General safetensors I/O (the CLIs' --input / --out files).
await writeSafetensors('/tmp/ids.safetensors', {
  input_ids: { shape: [1, 3], data: new BigInt64Array([1n, 2n, 3n]) },
});
const ids = (await readSafetensors('/tmp/ids.safetensors')).get('input_ids');
console.log(ids?.dtype, ids?.shape, ids?.data);
