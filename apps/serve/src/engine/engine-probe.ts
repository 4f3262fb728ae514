import type { Engine } from './types.js';

/**
 * Tells a working engine from a broken one after an engine call threw: a one-token forward pass must succeed and
 * give the logits it gave at start-up (same backend, same weights: the same numbers). A wasm abort, an out-of-bounds
 * access or a lost device fails the pass; corrupted weights change its numbers.
 */
export class EngineProbe {
  private baseline: Promise<Float32Array | undefined>;

  constructor(
    private readonly engine: Engine,
    private readonly tokenId = 0,
  ) {
    // Taken now, while the engine is known good; a failure here shows up at the first check.
    this.baseline = engine.logits([[tokenId]]).catch(() => undefined);
  }

  /** Throws, saying why, when the engine no longer computes what it computed at start-up. */
  async check(): Promise<void> {
    const expected = await this.baseline;
    const logits = await this.engine.logits([[this.tokenId]]);
    if (!expected) throw new Error('the engine failed its start-up forward pass');
    if (logits.length !== expected.length) {
      throw new Error(`the probe's logits have ${logits.length} values, not ${expected.length}`);
    }
    let num = 0;
    let den = 0;
    for (let i = 0; i < logits.length; i++) {
      const d = logits[i]! - expected[i]!;
      num += d * d;
      den += expected[i]! * expected[i]!;
    }
    const relative = Math.sqrt(num / den);
    // NaN fails this comparison too.
    if (!(relative <= 1e-5)) {
      throw new Error(`the probe's logits moved from their start-up values (relative L2 ${relative})`);
    }
  }
}
