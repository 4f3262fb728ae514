// The serve section: mptjs-serve's OpenAI-compatible HTTP server on webgpu, its decode steps through the recorded
// batch decoder (what `mptjs-serve serve` picks on webgpu), with streaming clients on 127.0.0.1: one client, then
// `streams` clients at once, each sending greedy completions in turn; generated tokens per second of each and the
// ratio. The mpt-125m shape with random weights; prompts are token ids, so only the output is detokenized.
import { MPTModel } from '@mptjs/mpt-model';
import { createServeApp, JsonTokenizer, RecordedEngine } from '../../apps/serve/dist/index.js';
import { httpLoad } from '../serve/http-load.mjs';
import { modelConfig, randomTokens } from './model-stage.mjs';
import { withGpuErrors } from './timing.mjs';

/** `spec` = { model, streams, requests, prompt, tokens }; `tokenizerPath` the kit's tokenizer.json. */
export async function measureServe(spec, tokenizerPath) {
  const shape = spec.model;
  const t0 = performance.now();
  const model = MPTModel.init(modelConfig(shape, shape.nLayers), 5);
  const engine = await withGpuErrors(() => RecordedEngine.create(model, spec.streams));
  const tokenizer = await JsonTokenizer.fromFile(tokenizerPath);
  const app = createServeApp({ engine, tokenizer, modelId: 'kit', maxBatch: engine.slots, maxQueue: 256 });
  const { port } = await app.listen(0, '127.0.0.1');
  const url = `http://127.0.0.1:${port}/v1/completions`;
  const bodyFor = (client, r) => ({
    prompt: Array.from(randomTokens(spec.prompt, shape.vocab, 100 * client + r + 1)),
    max_tokens: spec.tokens,
    temperature: 0,
  });
  try {
    // Warm-up: compiles the prefill shapes and settles the buffers.
    await httpLoad(url, { concurrency: 2, requestsPerClient: 1, bodyFor });
    const statsBefore = engine.stepStats;
    const one = await httpLoad(url, { concurrency: 1, requestsPerClient: spec.requests, bodyFor });
    const many = await httpLoad(url, {
      concurrency: spec.streams,
      requestsPerClient: spec.requests,
      bodyFor,
    });
    const statsAfter = engine.stepStats;
    const figures = (r) => ({
      tokens: r.tokens,
      tokens_per_s: r.wall,
      ttft_p50_ms: r.p50 * 1000,
      ttft_p99_ms: r.p99 * 1000,
      requests: r.n,
    });
    return {
      shape: { d_model: shape.dModel, n_layers: shape.nLayers, vocab: shape.vocab },
      engine: 'recorded',
      slots: engine.slots,
      streams: spec.streams,
      prompt_tokens: spec.prompt,
      max_tokens: spec.tokens,
      one_stream: figures(one),
      many_streams: figures(many),
      speedup: many.wall / one.wall,
      dispatches_per_step: statsAfter.dispatchesPerStep,
      mean_rows_per_step:
        (statsAfter.rows - statsBefore.rows) / Math.max(1, statsAfter.steps - statsBefore.steps),
      section_s: (performance.now() - t0) / 1000,
      note: `greedy streaming completions over HTTP; ${spec.requests} requests per client in turn; tokens/s counts every generated token`,
    };
  } finally {
    await app.shutdown(1000);
    engine.dispose();
  }
}
