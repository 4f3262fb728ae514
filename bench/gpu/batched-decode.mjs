// Batched decoding through the recorded WebGPU step (`RecordedBatchDecoder`, what `mptjs-serve` runs on webgpu):
// `batch` sequences decode together, each greedy row reading back only its arg-max, against one sequence alone
// on the same decoder; tokens/s counts every row's token.
import { RecordedBatchDecoder } from '@mptjs/mpt-model';
import { randomTokens } from './model-stage.mjs';
import { withGpuErrors } from './timing.mjs';

/** Seconds for `steps` greedy steps of `sequences` (each fed its own arg-max), after the prefill. */
async function timeSteps(decoder, sequences, firstTokens, steps) {
  let tokens = firstTokens;
  const t0 = performance.now();
  for (let i = 0; i < steps; i++) {
    const out = await decoder.step(
      sequences.map((sequence, r) => ({ sequence, token: tokens[r], logits: false })),
    );
    tokens = out.map((o) => o.token);
  }
  return (performance.now() - t0) / 1000;
}

/** Prefills `count` prompts (each its own random ids) and returns the sequences and their first tokens. */
async function prefillRows(decoder, count, prompt, vocab) {
  const sequences = [];
  const first = [];
  for (let r = 0; r < count; r++) {
    const ids = Array.from(randomTokens(prompt, vocab, 1000 + r));
    const { sequence, logits } = await decoder.prefill(ids);
    sequences.push(sequence);
    let best = 0;
    for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
    first.push(best);
  }
  return { sequences, first };
}

/**
 * Decode tokens/s of `batch` sequences stepping together and of one alone, through one recorded batch decoder
 * built for `batch` slots; `decode` = { prompt, newTokens }. `singleRecorded`: the one-sequence recorded step's
 * tokens/s measured on the same model (its kernels are compiled for one row), the fairer baseline.
 */
export async function measureBatchedDecode(model, decode, batch, singleRecorded) {
  const t0 = performance.now();
  const decoder = await withGpuErrors(() => RecordedBatchDecoder.create(model, { slots: batch }));
  const buildS = (performance.now() - t0) / 1000;
  try {
    const steps = decode.newTokens - 1;
    const vocab = model.config.vocabSize;
    const rates = {};
    for (const rows of [1, batch]) {
      const { sequences, first } = await withGpuErrors(() =>
        prefillRows(decoder, rows, decode.prompt, vocab),
      );
      // One untimed step (its shaders were compiled when the decoder was built; this settles the buffers).
      await withGpuErrors(() => timeSteps(decoder, sequences, first, 1));
      const hostBefore = { ...decoder.hostStats };
      const seconds = await withGpuErrors(() => timeSteps(decoder, sequences, first, steps));
      rates[rows] = {
        tokens_per_s: (rows * steps) / seconds,
        ms_per_step: (1000 * seconds) / steps,
        host_ms_per_step: (decoder.hostStats.encodeSubmitMs - hostBefore.encodeSubmitMs) / steps,
      };
      for (const s of sequences) decoder.release(s);
    }
    return {
      shape: { d_model: model.config.dModel, n_layers: model.config.nLayers, vocab },
      batch,
      slots: decoder.slots,
      prompt_tokens: decode.prompt,
      new_tokens: decode.newTokens,
      decode_tokens_per_s: rates[batch].tokens_per_s,
      ms_per_step: rates[batch].ms_per_step,
      host_ms_per_step: rates[batch].host_ms_per_step,
      batch1_tokens_per_s: rates[1].tokens_per_s,
      speedup_over_batch1: rates[batch].tokens_per_s / rates[1].tokens_per_s,
      single_sequence_recorded_tokens_per_s: singleRecorded ?? null,
      speedup_over_single_sequence_step: singleRecorded ? rates[batch].tokens_per_s / singleRecorded : null,
      dispatches_per_step: decoder.dispatchesPerStep,
      build_s: buildS,
      section_s: (performance.now() - t0) / 1000,
      engine: 'recorded',
      note: `greedy; ${batch} sequences stepping together (each reading back its arg-max) against one alone on the same decoder (its kernels compiled for ${batch} rows) and against the one-sequence recorded step`,
    };
  } finally {
    decoder.dispose();
  }
}
