import {
  type AttentionContext,
  type ChainUnit,
  crossEntropyLoss,
  IGNORE_INDEX,
  type MPTModel,
} from '@mptjs/mpt-model';
import * as tf from '@tensorflow/tfjs-core';

/** What a causal-LM microbatch gives the units: the shifted targets and the attention context. */
export interface LmContext {
  targets: tf.Tensor;
  attention: AttentionContext;
}

/**
 * The model's unit chain (`embed`, `block.i`, `head`) over a causal-LM microbatch, with the loss folded into the
 * head so the last unit returns the scalar mean cross-entropy (`withLoss: false` keeps the logits, for evaluation).
 */
export function mptChainUnits(model: MPTModel, options: { withLoss?: boolean } = {}): ChainUnit<LmContext>[] {
  const units = model.units();
  const withLoss = options.withLoss ?? true;
  return units.map((u, i) => {
    const last = withLoss && i === units.length - 1;
    return {
      name: u.name,
      paramNames: u.paramNames,
      inputIsDifferentiable: u.inputIsDifferentiable,
      forward: (params, input, ctx) => {
        if (!last) return u.forward(params, input, ctx.attention);
        // The head's own loss fuses the vocab projection with the cross-entropy where it can.
        if (u.loss) return u.loss(params, input, ctx.attention, ctx.targets);
        return crossEntropyLoss(u.forward(params, input, ctx.attention), ctx.targets);
      },
    } satisfies ChainUnit<LmContext>;
  });
}

/** llm-foundry's labels: `targets[:, t] = ids[:, t + 1]`, the last position ignored (-100). */
export function shiftedTargets(ids: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => {
    const [b, t] = ids.shape;
    const next = tf.slice(ids, [0, 1], [b, t - 1]);
    return tf.concat([tf.cast(next, 'int32'), tf.fill([b, 1], IGNORE_INDEX, 'int32')], 1) as tf.Tensor2D;
  });
}

/** The context for one microbatch of token ids `[B, T]` (caller disposes `targets`). */
export function lmContext(model: MPTModel, ids: tf.Tensor2D): LmContext {
  return { targets: shiftedTargets(ids), attention: { slopes: model.slopes, pastLength: 0, keyMask: null } };
}
