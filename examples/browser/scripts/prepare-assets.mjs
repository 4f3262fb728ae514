// Copies what the page loads at run time into public/ (git-ignored):
//   public/tfjs-wasm/*.wasm           tfjs's wasm binaries (the wasm backend fetches them)
//   public/models/mpt-f32/            tools/test-fixtures/fixtures/mpt-f32 (llm-foundry MPT, safetensors, vocab 512)
//   public/models/mpt-tiny-mosaic/    the shared MosaicGPT golden model, converted to safetensors (vocab 50432)
//   public/tokenizer.json             the shared GPT-NeoX-20B tokenizer
// Shared files come from MPTJS_SHARED_DIR (default ../shared from the repository root); missing ones are skipped.
import { copyFileSync, existsSync, mkdirSync, readdirSync, realpathSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '../../..');
const pub = join(here, '..', 'public');
const shared = resolve(repo, process.env.MPTJS_SHARED_DIR ?? '../shared');

const wasmDir = join(
  realpathSync(join(repo, 'packages/kernels/node_modules/@tensorflow/tfjs-backend-wasm')),
  'dist',
);
mkdirSync(join(pub, 'tfjs-wasm'), { recursive: true });
for (const f of readdirSync(wasmDir).filter((f) => f.endsWith('.wasm')))
  copyFileSync(join(wasmDir, f), join(pub, 'tfjs-wasm', f));

mkdirSync(join(pub, 'models/mpt-f32'), { recursive: true });
for (const f of ['config.json', 'model.safetensors'])
  copyFileSync(join(repo, 'tools/test-fixtures/fixtures/mpt-f32', f), join(pub, 'models/mpt-f32', f));

const tokenizer = join(shared, 'data/gpt-neox-20b-tokenizer.json');
if (existsSync(tokenizer)) copyFileSync(tokenizer, join(pub, 'tokenizer.json'));
else console.warn(`[assets] ${tokenizer} not found: live tokenization needs a tokenizer.json URL`);

const mosaic = join(shared, 'fixtures/mpt-tiny-mosaic');
const out = join(pub, 'models/mpt-tiny-mosaic');
if (existsSync(join(mosaic, 'pytorch_model.bin')) && !existsSync(join(out, 'model.safetensors'))) {
  const { loadCheckpoint, saveCheckpoint } = await import(join(repo, 'packages/hf-loader/dist/index.js'));
  const { config, stateDict } = await loadCheckpoint(mosaic);
  await saveCheckpoint(out, config, stateDict, { dtype: 'F32' });
}
console.log(`[assets] ready in ${pub}`);
