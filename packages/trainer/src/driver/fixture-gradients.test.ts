// Loss and every parameter's gradient norm on the golden MosaicGPT fixture, computed by the unit-chain driver,
// against the float32 PyTorch figures in expected.json.
import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { loadCheckpoint } from '@mptjs/hf-loader';
import { selectBackend } from '@mptjs/kernels';
import { forwardBackwardChain, LocalParameters, MPTModel } from '@mptjs/mpt-model';
import { sharedFile, TINY_MOSAIC_DIR } from '@mptjs/test-fixtures';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { lmContext, mptChainUnits } from './mpt-units.js';

const expectedPath = sharedFile(`${TINY_MOSAIC_DIR}/expected.json`);

const MOSAIC_TO_MPT: [RegExp, string][] = [
  [/\.ln_1\./, '.norm_1.'],
  [/\.ln_2\./, '.norm_2.'],
  [/\.mlp\.mlp_up\./, '.ffn.up_proj.'],
  [/\.mlp\.mlp_down\./, '.ffn.down_proj.'],
  [/\.ln_f\./, '.norm_f.'],
];
const toMpt = (name: string) => MOSAIC_TO_MPT.reduce((n, [re, to]) => n.replace(re, to), name);

describe.skipIf(!expectedPath).each(['cpu', 'wasm'] as const)('fixture gradients on %s', (backend) => {
  it('loss and every gradient norm within 1e-4 relative error', async () => {
    await selectBackend(backend, { log: false });
    const expected = JSON.parse(readFileSync(expectedPath!, 'utf8')) as {
      input_ids: number[][];
      loss: number;
      grad_norms: Record<string, number>;
    };
    const { config, stateDict } = await loadCheckpoint(dirname(expectedPath!));
    const model = MPTModel.fromStateDict(config, stateDict);
    try {
      const ids = tf.tensor2d(expected.input_ids, undefined, 'int32');
      const ctx = lmContext(model, ids);
      const local = new LocalParameters(model.params);
      const loss = await forwardBackwardChain(mptChainUnits(model), ids, ctx, local);
      const grads = local.takeGradients();

      expect(Math.abs(loss - expected.loss) / expected.loss).toBeLessThan(1e-4);
      expect(Object.keys(expected.grad_norms).map(toMpt).sort()).toEqual([...grads.keys()].sort());
      for (const [mosaicName, norm] of Object.entries(expected.grad_norms)) {
        const g = grads.get(toMpt(mosaicName))!;
        const got = tf.tidy(() => tf.norm(g).dataSync()[0]!);
        expect({ name: mosaicName, rel: Math.abs(got - norm) / norm < 1e-4 }).toEqual({
          name: mosaicName,
          rel: true,
        });
      }
      tf.dispose([ids, ctx.targets, ...grads.values()]);
    } finally {
      model.dispose();
    }
  });
});
