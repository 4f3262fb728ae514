// One model shape, randomly initialized once: a timed training step (unit chain + decoupled AdamW, as
// bench/trainer/step.bench.mjs runs it) and then KV-cached greedy decoding through `generate`.
import { setF16Gemm } from '@mptjs/kernels';
import {
  disposeRecordedDecoder,
  expectedParameterShapes,
  forwardBackwardChain,
  generate,
  LocalParameters,
  MPTModel,
  parseMptConfig,
  recordedDecoderFor,
} from '@mptjs/mpt-model';
import {
  DecoupledAdamW,
  flopsPerSample,
  gradientCoefficient,
  gradSumOfSquares,
  lmContext,
  mptChainUnits,
} from '@mptjs/trainer';
import * as tf from '@tensorflow/tfjs-core';
import { measureBatchedDecode } from './batched-decode.mjs';
import { timeRuns, withGpuErrors } from './timing.mjs';

const LAYER_STEPS = [24, 16, 12, 8, 6, 4, 2, 1];

export function modelConfig(shape, layers) {
  return parseMptConfig({
    model_type: 'mpt',
    d_model: shape.dModel,
    n_heads: shape.nHeads,
    n_layers: layers,
    expansion_ratio: 4,
    max_seq_len: shape.seq,
    vocab_size: shape.vocab,
    no_bias: true,
    attn_config: { alibi: true, alibi_bias_max: 8, qk_ln: true, attn_impl: 'flash' },
  });
}

export function countParams(config) {
  let n = 0;
  for (const s of expectedParameterShapes(config).values()) n += s.reduce((a, b) => a * b, 1);
  return n;
}

/**
 * How many of the shape's layers fit what is left of the budget, from the rates a smaller model measured in
 * this run (`rates`: init params/s, model FLOP/s of the step, decode-section seconds per weight). Without
 * rates, all of them.
 */
export function planLayers(shape, rates, { secondsLeft, repeats }) {
  const full = shape.nLayers;
  if (!rates) return { layers: full, estimate_s: null };
  let last = null;
  for (const layers of [full, ...LAYER_STEPS.filter((l) => l < full)]) {
    const config = modelConfig(shape, layers);
    const params = countParams(config);
    const stepS = (flopsPerSample(config, params, shape.seq) * shape.batch) / rates.modelFlopsPerS;
    const decodeS = params * rates.decodeSecondsPerParam;
    const estimate = params / rates.initParamsPerS + (1 + repeats) * stepS + decodeS;
    last = { layers, estimate_s: estimate };
    // A 1.5x margin: larger matrices usually run faster per FLOP, but shader compiles and allocation do not.
    if (1.5 * estimate <= secondsLeft) return last;
  }
  return last;
}

export function randomTokens(n, vocab, seed) {
  let s = seed;
  return Int32Array.from({ length: n }, () => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return s % vocab;
  });
}

/**
 * A training loop over one fixed batch of the shape's random tokens: `step()` runs one step (unit-chain
 * forward/backward, global-norm clipping, decoupled AdamW) and resolves to its loss; `dispose()` frees the
 * optimizer state and the batch.
 */
export function createTrainer(model, shape) {
  const { config } = model;
  const optimizer = new DecoupledAdamW({ lr: 2e-4, betas: [0.9, 0.95], eps: 1e-8, weightDecay: 0 });
  const host = new LocalParameters(model.params);
  const units = mptChainUnits(model);
  const ids = tf.tensor2d(
    randomTokens(shape.batch * shape.seq, config.vocabSize, 12345),
    [shape.batch, shape.seq],
    'int32',
  );
  const ctx = lmContext(model, ids);
  return {
    async step() {
      const loss = await forwardBackwardChain(units, ids, ctx, host);
      const grads = host.takeGradients();
      const list = [...grads.values()];
      const norm = Math.sqrt(await gradSumOfSquares(list));
      // Clipping rides along in the optimizer's update (as the trainer runs it): no pass of its own.
      optimizer.step(
        [...grads.keys()].map((n, i) => ({ name: n, param: model.params.get(n), grad: list[i] })),
        2e-4,
        gradientCoefficient(1, norm, 1.0),
      );
      tf.dispose(list);
      if (!Number.isFinite(loss) || !Number.isFinite(norm)) {
        throw new Error(`the training step produced a non-finite loss (${loss}) or gradient norm (${norm})`);
      }
      return loss;
    },
    dispose() {
      optimizer.dispose();
      tf.dispose([ids, ctx.targets]);
    },
  };
}

/**
 * One greedy `generate` run with the KV cache: seconds to the first token (prefill) and for the rest (decode).
 */
export async function decodeOnce(model, prompt, newTokens, engine = 'tfjs', recordedWeights = undefined) {
  const t0 = performance.now();
  let first = 0;
  const out = await generate(model, prompt, {
    maxNewTokens: newTokens,
    greedy: true,
    engine,
    ...(recordedWeights ? { recordedWeights } : {}),
    onToken: (t) => {
      if (t.index === 0) first = performance.now();
    },
  });
  const end = performance.now();
  if (out.tokens.length !== newTokens) {
    throw new Error(`generate returned ${out.tokens.length} tokens, expected ${newTokens}`);
  }
  return { prefill_s: (first - t0) / 1000, decode_s: (end - first) / 1000, tokens: out.tokens };
}

/** Calls of the webgpu backend's `runWebGPUProgram` (one dispatch each) while `fn` runs. */
async function countDispatches(fn) {
  return (await withDispatchCount(fn)).dispatches;
}

/** `fn()`'s value and how many programs the webgpu backend ran meanwhile (`dispatches`). */
async function withDispatchCount(fn) {
  const backend = tf.backend();
  const original = backend.runWebGPUProgram;
  let dispatches = 0;
  backend.runWebGPUProgram = function (...args) {
    dispatches++;
    return original.apply(this, args);
  };
  try {
    return { value: await fn(), dispatches };
  } finally {
    backend.runWebGPUProgram = original;
  }
}

/**
 * The recorded decode step (`engine: 'recorded'`, webgpu only) timed like the tfjs one, its dispatches per
 * token beside the tfjs path's, and how many of its greedy tokens equal the tfjs path's.
 */
async function measureRecordedDecode(model, prompt, decode, tfjsTokens) {
  const steps = decode.newTokens - 1;
  const runOnce = () => decodeOnce(model, prompt, decode.newTokens, 'recorded');
  const t0 = performance.now();
  await withGpuErrors(() => recordedDecoderFor(model));
  const buildS = (performance.now() - t0) / 1000;
  await withGpuErrors(runOnce);
  const decoder = await recordedDecoderFor(model);
  const host = { ...decoder.hostStats };
  const run = await withGpuErrors(runOnce);
  const hostMs =
    (decoder.hostStats.encodeSubmitMs - host.encodeSubmitMs) / (decoder.hostStats.steps - host.steps);
  // Dispatches of one tfjs decode step: two greedy runs of 3 and 2 tokens differ by one step.
  const three = await countDispatches(() => decodeOnce(model, prompt, 3));
  const two = await countDispatches(() => decodeOnce(model, prompt, 2));
  const matching = run.tokens.findIndex((t, i) => t !== tfjsTokens[i]);
  // The same step reading its weights as packed f16 halves (half the bytes a token streams).
  const f16Once = () => decodeOnce(model, prompt, decode.newTokens, 'recorded', 'f16');
  await withGpuErrors(f16Once);
  const f16 = await withGpuErrors(f16Once);
  const f16Decoder = await recordedDecoderFor(model, 'f16');
  const f16Matching = f16.tokens.findIndex((t, i) => t !== tfjsTokens[i]);
  return {
    recorded_section_s: (performance.now() - t0) / 1000,
    decode_tokens_per_s_recorded: steps / run.decode_s,
    ms_per_token_recorded: (1000 * run.decode_s) / steps,
    prefill_s_recorded: run.prefill_s,
    // Host time per step to write the uniform, encode the pass and submit (the rest is the device and the read).
    recorded_host_ms_per_token: hostMs,
    recorded_build_s: buildS,
    dispatches_per_token: {
      tfjs: three - two,
      recorded: decoder.dispatchesPerToken.greedy,
    },
    recorded_tokens_matching_tfjs: matching < 0 ? run.tokens.length : matching,
    decode_tokens_per_s_recorded_f16: steps / f16.decode_s,
    recorded_weight_bytes_per_token: {
      f32: decoder.weightStats.bytesPerStep,
      f16: f16Decoder.weightStats.bytesPerStep,
    },
    recorded_f16_tokens_matching_tfjs: f16Matching < 0 ? f16.tokens.length : f16Matching,
  };
}

function shapeJson(shape, config, params, fullParams) {
  return {
    d_model: config.dModel,
    n_layers: config.nLayers,
    n_layers_full: shape.nLayers,
    n_heads: config.nHeads,
    vocab: config.vocabSize,
    seq: shape.seq,
    batch: shape.batch,
    params,
    params_full: fullParams,
  };
}

/** Times the trainer's steps (warm-up, then the run's repeats); the loss is the last step's. */
async function timeSteps(trainer, run) {
  let loss = Number.NaN;
  const timing = await withGpuErrors(() =>
    timeRuns(
      async () => {
        loss = await trainer.step();
      },
      { repeats: run.repeats, budget: run.budget, reserveS: run.reserveS },
    ),
  );
  return { timing, loss };
}

async function measureTrain(model, shape, run) {
  const { config } = model;
  const params = model.numParameters;
  const fullConfig = modelConfig(shape, shape.nLayers);
  const fullParams = countParams(fullConfig);
  const trainer = createTrainer(model, shape);
  try {
    const counted = await withDispatchCount(() => timeSteps(trainer, run));
    const { timing, loss } = counted.value;
    const tokens = shape.batch * shape.seq;
    const flopsPerStep = flopsPerSample(config, params, shape.seq) * shape.batch;
    const modelFlopsPerS = flopsPerStep / timing.median_s;
    const tokensPerS = tokens / timing.median_s;
    const result = {
      shape: shapeJson(shape, config, params, fullParams),
      attn_impl: 'flash (fused WebGPU kernels, forward and backward)',
      step: timing,
      tokens_per_step: tokens,
      tokens_per_s: tokensPerS,
      flops_per_token: flopsPerStep / tokens,
      model_tflops: modelFlopsPerS / 1e12,
      mfu_vs_measured_matmul: run.peakTflops ? modelFlopsPerS / 1e12 / run.peakTflops : null,
      mfu_vs_nominal: run.nominalTflops ? modelFlopsPerS / 1e12 / run.nominalTflops : null,
      loss,
      // Every step runs the same programs: the count over the warm-up and timed steps, per step.
      dispatches_per_step: counted.dispatches / (timing.runs + 1),
      flops_formula: '6*N*seq + 12*L*d*seq^2 per sample (llm-foundry); recompute not counted',
    };
    if (run.f16) result.amp_fp16 = await measureAmpStep(trainer, tokens, timing.median_s, run);
    if (config.nLayers < shape.nLayers) {
      // At the same model FLOP/s, the full depth would take its FLOPs over this rate.
      const fullFlopsPerToken = flopsPerSample(fullConfig, fullParams, shape.seq) / shape.seq;
      result.tokens_per_s_full_estimate = modelFlopsPerS / fullFlopsPerToken;
    }
    return { result, modelFlopsPerS };
  } finally {
    trainer.dispose();
  }
}

/** The same training step with its GEMMs on the f16 GEMM (f32 master weights, LayerNorm, softmax, loss, AdamW). */
async function measureAmpStep(trainer, tokens, fp32MedianS, run) {
  setF16Gemm(true);
  try {
    const { timing, loss } = await timeSteps(trainer, run);
    return {
      step: timing,
      tokens_per_s: tokens / timing.median_s,
      speedup_vs_fp32: fp32MedianS / timing.median_s,
      loss,
      note: 'GEMMs with f16 operands and f32 sums; the steps continue from the fp32 ones on the same batch',
    };
  } finally {
    setF16Gemm(false);
  }
}

async function measureDecode(model, shape, decode) {
  const prompt = Array.from(randomTokens(decode.prompt, model.config.vocabSize, 777));
  const runOnce = () => decodeOnce(model, prompt, decode.newTokens);
  // The first run compiles every shader the prompt and decode shapes need.
  const warm = await withGpuErrors(runOnce);
  const run = await withGpuErrors(runOnce);
  const steps = decode.newTokens - 1;
  return {
    shape: {
      d_model: model.config.dModel,
      n_layers: model.config.nLayers,
      n_layers_full: shape.nLayers,
      vocab: model.config.vocabSize,
    },
    prompt_tokens: decode.prompt,
    new_tokens: decode.newTokens,
    warmup_s: warm.prefill_s + warm.decode_s,
    prefill_s: run.prefill_s,
    prefill_tokens_per_s: decode.prompt / run.prefill_s,
    decode_s: run.decode_s,
    decode_tokens_per_s: steps / run.decode_s,
    ms_per_token: (1000 * run.decode_s) / steps,
    ...(tf.getBackend() === 'webgpu' ? await measureRecordedDecode(model, prompt, decode, run.tokens) : {}),
    note: 'batch 1, greedy; time to first token counted as prefill, the other tokens as decode',
  };
}

/**
 * Initializes the model (with `layers` of the shape's layers), measures training then decoding, and returns
 * both results and the rates this run saw (for planning a bigger model).
 */
export async function runModelStage(shape, layers, run) {
  const config = modelConfig(shape, layers);
  const t0 = performance.now();
  const model = MPTModel.init(config, 1);
  const initS = (performance.now() - t0) / 1000;
  try {
    const train = await measureTrain(model, shape, run);
    train.result.init_s = initS;
    let decode;
    let batched;
    if (run.budget.remaining() - run.reserveS > 2 * train.result.step.median_s) {
      decode = await measureDecode(model, shape, run.decode);
      // Sequences decoding together through the recorded step, as mptjs-serve runs them on webgpu.
      if (
        tf.getBackend() === 'webgpu' &&
        run.budget.remaining() - run.reserveS > 2 * train.result.step.median_s
      ) {
        batched = await measureBatchedDecode(
          model,
          run.decode,
          run.decodeBatch,
          decode.decode_tokens_per_s_recorded,
        );
      }
    }
    const rates = {
      initParamsPerS: model.numParameters / Math.max(initS, 1e-3),
      modelFlopsPerS: train.modelFlopsPerS,
      decodeSecondsPerParam: decode
        ? (decode.warmup_s +
            decode.prefill_s +
            decode.decode_s +
            (decode.recorded_section_s ?? 0) +
            (batched?.section_s ?? 0)) /
          model.numParameters
        : 0,
    };
    return { train: train.result, decode, batched, rates };
  } finally {
    await disposeRecordedDecoder(model);
    model.dispose();
  }
}
