// Loads an MPT checkpoint (config.json + model.safetensors) and a tokenizer.json from URLs, generates greedily
// on WebGPU (falling back to wasm), streams the text into the page, and tokenizes the prompt as you type.
// URL parameters (used by the test): ?model=URL&tokenizer=URL&backend=webgpu|wasm|cpu&prompt_ids=1,2,3
//   &max_new=N&engine=auto|recorded|tfjs&autorun=1
// On webgpu the continuation runs through the model's recorded decode step (one submit per token, the token
// chosen on the GPU); elsewhere, or with engine=tfjs, through the tfjs decode path.
import { selectBackend } from '@mptjs/kernels';
import { generate, MPTModel, parseMptConfig, RecordedDecodeError } from '@mptjs/mpt-model';
import { Tokenizer } from '@mptjs/tokenizer';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { parseSafetensors } from './safetensors.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
for (const [param, id] of [
  ['model', 'model-url'],
  ['tokenizer', 'tokenizer-url'],
  ['backend', 'backend'],
  ['max_new', 'max-new'],
  ['engine', 'engine'],
]) {
  if (params.has(param)) $(id).value = params.get(param);
}
const status = (text) => {
  $('status').textContent = text;
  console.log(`[page] ${text}`);
};

// The wasm backend fetches its binaries at run time; scripts/prepare-assets.mjs puts them in public/tfjs-wasm/.
setWasmPaths(new URL(`${import.meta.env.BASE_URL}tfjs-wasm/`, location.href).href);

let model;
let tokenizer;
let backendName;

async function startBackend(requested) {
  try {
    const info = await selectBackend(requested, { log: (line) => console.log(line) });
    return info;
  } catch (err) {
    if (requested !== 'webgpu') throw err;
    console.log(`[page] webgpu unavailable (${err.message}); falling back to wasm`);
    const info = await selectBackend('wasm', { log: (line) => console.log(line) });
    return { ...info, reason: `fallback: ${err.message}` };
  }
}

async function fetchOk(url) {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`GET ${url}: ${res.status} ${res.statusText}`);
  return res;
}

async function load() {
  $('generate').disabled = true;
  const info = await startBackend($('backend').value);
  backendName = info.name;
  document.body.dataset.backend = info.name;
  status(`backend ${info.name}${info.adapter ? ` (${info.adapter.summary})` : ''}; loading…`);

  const base = new URL($('model-url').value, location.href);
  const configJson = await (await fetchOk(new URL('config.json', base))).json();
  const config = parseMptConfig(configJson);
  const weights = parseSafetensors(await (await fetchOk(new URL('model.safetensors', base))).arrayBuffer());
  model?.dispose();
  model = MPTModel.fromStateDict(config, weights);

  const tokUrl = $('tokenizer-url').value;
  tokenizer = tokUrl
    ? Tokenizer.fromJSON(await (await fetchOk(new URL(tokUrl, location.href))).text())
    : undefined;
  showIds();
  status(
    `backend ${info.name}: ${config.nLayers} layers, d_model ${config.dModel}, vocab ${config.vocabSize}` +
      `${tokenizer ? `, tokenizer ${tokenizer.vocabSize} ids` : ''}`,
  );
  $('generate').disabled = false;
}

function promptIds() {
  if (params.has('prompt_ids')) return params.get('prompt_ids').split(',').map(Number);
  if (!tokenizer) throw new Error('no tokenizer: give prompt_ids');
  return tokenizer.encode($('prompt').value);
}

function showIds() {
  if (!tokenizer) return;
  const ids = tokenizer.encode($('prompt').value);
  $('ids').textContent = `${ids.length} tokens: [${ids.join(', ')}]`;
  $('ids').dataset.ids = JSON.stringify(ids);
}

async function run() {
  $('generate').disabled = true;
  document.body.dataset.state = 'generating';
  const prompt = promptIds();
  const bad = prompt.find((id) => id >= model.config.vocabSize);
  if (bad !== undefined)
    throw new Error(`prompt id ${bad} is outside the model's vocabulary (${model.config.vocabSize})`);
  $('output').textContent = '';
  const stream = tokenizer?.decodeStream();
  const ids = [];
  const t0 = performance.now();
  const options = {
    maxNewTokens: Number($('max-new').value),
    greedy: true,
    onToken: ({ token }) => {
      ids.push(token);
      $('output').textContent += stream ? (stream.step(token) ?? '') : `${token} `;
      $('out-ids').textContent = `[${ids.join(', ')}]`;
    },
  };
  const asked = $('engine').value;
  let engine = asked === 'auto' ? (backendName === 'webgpu' ? 'recorded' : 'tfjs') : asked;
  let result;
  try {
    result = await generate(model, prompt, { ...options, engine });
  } catch (err) {
    // `auto` falls back when the adapter cannot build the recorded step (before any token was produced).
    if (!(asked === 'auto' && err instanceof RecordedDecodeError && ids.length === 0)) throw err;
    console.log(`[page] recorded decode unavailable (${err.message}); using the tfjs decode path`);
    engine = 'tfjs';
    result = await generate(model, prompt, { ...options, engine });
  }
  document.body.dataset.engine = engine;
  if (stream) $('output').textContent += stream.flush();
  const secs = (performance.now() - t0) / 1000;
  $('out-ids').dataset.ids = JSON.stringify(result.tokens);
  document.body.dataset.state = 'done';
  $('generate').disabled = false;
  status(
    `backend ${backendName}, ${engine} decode: ${result.tokens.length} tokens in ${secs.toFixed(2)} s (${result.finishReason})`,
  );
}

const fail = (err) => {
  document.body.dataset.state = 'error';
  if (model) $('generate').disabled = false;
  status(`error: ${err.message}`);
  console.error(err);
};
$('prompt').addEventListener('input', showIds);
$('load').addEventListener('click', () => load().catch(fail));
$('generate').addEventListener('click', () => run().catch(fail));
load()
  .then(() => (params.has('autorun') ? run() : undefined))
  .catch(fail);
