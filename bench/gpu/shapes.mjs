// The shapes each measurement runs at: the real mpt-125m / mpt-1b shapes, or tiny ones that take the same code
// paths on an emulated adapter (SwiftShader) in a couple of minutes.
export function kitShapes(tiny) {
  if (tiny) {
    // The two tiny models share d_model and batch so most shaders compile once; emulated shader compiles and
    // per-dispatch costs, not FLOPs, set the tiny run's time.
    return {
      matmul: [64, 128],
      models: [
        { name: 'mpt-125m', dModel: 64, nLayers: 2, nHeads: 4, vocab: 512, seq: 32, batch: 2 },
        { name: 'mpt-1b', dModel: 64, nLayers: 2, nHeads: 8, vocab: 512, seq: 32, batch: 2 },
      ],
      decode: { prompt: 8, newTokens: 4 },
      // Sequences decoding together through the recorded step (mptjs-serve's batch on webgpu).
      decodeBatch: 16,
      attention: { batch: 1, heads: 4, seq: 32, headDim: 16 },
      // The flag sweep times the first model; the memory run trains this one.
      // No warm-up runs: the model stages before it compiled the same shapes' shaders, and tiny timings only
      // show that the code paths work.
      sweep: { decode: { prompt: 8, newTokens: 4 }, repeats: 1, warmup: 0 },
      memory: {
        // One layer: an emulated step costs seconds, all of them per-dispatch overhead.
        model: { name: 'mpt-mem', dModel: 64, nLayers: 1, nHeads: 4, vocab: 512, seq: 32, batch: 2 },
        steps: 20,
        checkFrom: 10,
      },
      int8: {
        linear: { k: 64, n: 96 },
        rows: [1, 40],
        model: { name: 'mpt-125m', dModel: 64, nLayers: 2, nHeads: 4, vocab: 512, seq: 32, batch: 2 },
        decode: { prompt: 20, newTokens: 4 },
      },
      f16: { size: 96, products: { dModel: 64, batch: 2, seq: 32, vocab: 512 } },
      // mptjs-serve over HTTP: one stream, then 16 at once.
      serve: {
        model: { name: 'mpt-125m', dModel: 64, nLayers: 2, nHeads: 4, vocab: 512, seq: 64, batch: 1 },
        streams: 16,
        requests: 1,
        prompt: 8,
        tokens: 4,
      },
      // fp32 against amp_fp16 on the sample's tokens (ids folded into the tiny vocabulary).
      learning: {
        model: { name: 'mpt-125m', dModel: 64, nLayers: 2, nHeads: 4, vocab: 512, seq: 32, batch: 2 },
        steps: 6,
        lr: 1e-3,
        seed: 9,
      },
      repeats: 1,
      // Seconds a section needs left to be worth starting.
      minSeconds: {
        f16: 10,
        matmul: 5,
        model: 20,
        attention: 5,
        sweep: 10,
        memory: 10,
        int8: 5,
        profile: 5,
        serve: 10,
        learning: 20,
      },
      // The most the flag sweep, the memory run and the learning run may take; the model stages leave them this.
      maxSeconds: { sweep: 150, memory: 200, learning: 200 },
    };
  }
  return {
    matmul: [1024, 2048, 4096],
    models: [
      { name: 'mpt-125m', dModel: 768, nLayers: 12, nHeads: 12, vocab: 50432, seq: 2048, batch: 4 },
      { name: 'mpt-1b', dModel: 2048, nLayers: 24, nHeads: 16, vocab: 50432, seq: 2048, batch: 2 },
    ],
    decode: { prompt: 128, newTokens: 32 },
    decodeBatch: 16,
    attention: { batch: 1, heads: 16, seq: 2048, headDim: 128 },
    sweep: { decode: { prompt: 128, newTokens: 16 }, repeats: 2, warmup: 1 },
    memory: {
      model: { name: 'mpt-mem', dModel: 256, nLayers: 4, nHeads: 4, vocab: 50432, seq: 256, batch: 4 },
      steps: 1000,
      checkFrom: 10,
    },
    int8: {
      // mpt-1b's up_proj: decode's one row, and a 2048-token prefill.
      linear: { k: 2048, n: 8192 },
      rows: [1, 2048],
      model: { name: 'mpt-125m', dModel: 768, nLayers: 12, nHeads: 12, vocab: 50432, seq: 2048, batch: 4 },
      decode: { prompt: 512, newTokens: 16 },
    },
    // mpt-1b's training products (batch 2 x 2048 tokens) for the f16 GEMM.
    f16: { size: 4096, products: { dModel: 2048, batch: 2, seq: 2048, vocab: 50432 } },
    // mptjs-serve over HTTP with the mpt-125m shape: one stream, then 16 at once, 2 requests of 32 tokens each.
    serve: {
      model: { name: 'mpt-125m', dModel: 768, nLayers: 12, nHeads: 12, vocab: 50432, seq: 2048, batch: 1 },
      streams: 16,
      requests: 2,
      prompt: 128,
      tokens: 32,
    },
    // The mpt-125m shape, 200 steps of 4 x 512 sample tokens in each precision.
    learning: {
      model: { name: 'mpt-125m', dModel: 768, nLayers: 12, nHeads: 12, vocab: 50432, seq: 512, batch: 4 },
      steps: 200,
      lr: 6e-4,
      seed: 9,
    },
    repeats: 3,
    minSeconds: {
      f16: 30,
      matmul: 15,
      model: 45,
      attention: 15,
      sweep: 30,
      memory: 20,
      int8: 30,
      profile: 30,
      serve: 30,
      learning: 40,
    },
    maxSeconds: { sweep: 90, memory: 90, learning: 180 },
  };
}
