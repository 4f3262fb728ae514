// FSDP's GPU path: gradients leave the device per group (bucket) in reads the backward pass does not wait for, and
// gathered parameters are uploaded as soon as their gather completes. On cpu the bucketed path is forced, to show
// it gives the very same numbers as the per-parameter reads; on WebGPU (Dawn; SwiftShader where there is no GPU)
// two ranks, in one thread and as worker threads, train like one, and the order of events shows the overlap.
import { fileURLToPath } from 'node:url';
import { createLocalGroups, launchLocal, type ProcessGroup, type ThreadTransport } from '@mptjs/distributed';
import { selectBackend } from '@mptjs/kernels';
import { forwardBackwardChain, type UnitHooks } from '@mptjs/mpt-model';
import { webgpuExpected } from '@mptjs/test-fixtures';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  seededUniform,
  TINY_IN,
  type TinyTrainOptions,
  type TinyTrainResult,
  tinyShapes,
  tinyStateDict,
  tinyUnits,
  trainTiny,
} from '../testing/tiny-model.js';
import { FsdpParameters, type TransferEvent } from './fsdp.js';

async function inProcess<T>(
  w: number,
  fn: (pg: ProcessGroup) => Promise<T>,
  transport: ThreadTransport = 'shared-memory',
): Promise<T[]> {
  const groups = createLocalGroups(w, { timeoutMs: 60_000, transport });
  try {
    return await Promise.all(groups.map(fn));
  } finally {
    await Promise.all(groups.map((g) => g.destroy()));
  }
}

function expectClose(actual: number[], expected: number[], rel = 1e-5): void {
  expect(actual.length).toBe(expected.length);
  actual.forEach((a, i) => {
    const e = expected[i]!;
    expect(Math.abs(a - e) / Math.max(Math.abs(e), 1e-12)).toBeLessThan(rel);
  });
}

function expectSameWeights(got: TinyTrainResult, want: TinyTrainResult, digits = 5): void {
  for (const [name, t] of want.final!) {
    const g = got.final?.get(name);
    if (!g) throw new Error(`rank 0 returned no "${name}"`);
    for (let i = 0; i < t.data.length; i++) expect(g.data[i]).toBeCloseTo(t.data[i]!, digits);
  }
}

/** Groups of the tiny chain: `in` (read by `in` and the tied `head`), `block.0`, `block.1`, `head`. */
const GROUPS = 4;
/** Gradients the tiny chain's units hand over per pass: in.weight twice (tied), two per block, head.gain. */
const PARAM_GRADIENTS = 7;

describe('bucketed gradient reads on cpu (forced)', () => {
  beforeAll(async () => {
    await selectBackend('cpu', { log: false });
  });

  for (const [w, transport, microbatches] of [
    [2, 'shared-memory', 1],
    [2, 'message-port', 2],
    [3, 'message-port', 1],
  ] as const) {
    it(`${w} ranks over ${transport}, ${microbatches} microbatch(es): the same numbers as per-parameter reads`, async () => {
      const opts: TinyTrainOptions = { steps: 4, globalBatch: 12, microbatches };
      const run = (bucketGradients: boolean) =>
        inProcess(w, (pg) => trainTiny(pg, { ...opts, fsdp: { bucketGradients } }), transport);
      const [perParam, bucketed] = [await run(false), await run(true)];
      for (let r = 0; r < w; r++) {
        expect(bucketed[r]!.losses).toEqual(perParam[r]!.losses);
        expect(bucketed[r]!.gradNorms).toEqual(perParam[r]!.gradNorms);
        // One read per group and pass, against one per gradient handed over.
        expect(bucketed[r]!.profiles.map((p) => p.gradientReads)).toEqual(
          Array(4).fill(GROUPS * microbatches),
        );
        expect(perParam[r]!.profiles.map((p) => p.gradientReads)).toEqual(
          Array(4).fill(PARAM_GRADIENTS * microbatches),
        );
      }
      const [want, got] = [perParam[0]?.final, bucketed[0]?.final];
      if (!want || !got) throw new Error('rank 0 returned no full state dict');
      for (const [name, t] of want) expect(Array.from(got.get(name)?.data ?? [])).toEqual(Array.from(t.data));
    });
  }

  it('a wrong gradient is refused with the same message, and nothing leaks', async () => {
    await inProcess(1, async (pg) => {
      const units = tinyUnits();
      const fsdp = await FsdpParameters.create(
        pg,
        { units, paramShapes: tinyShapes(), bucketGradients: true },
        tinyStateDict(1),
      );
      const before = tf.memory().numTensors;
      const head = units[units.length - 1]!;
      await expect(
        fsdp.afterUnitBackward(
          head,
          new Map([
            ['head.gain', tf.zeros([8])],
            ['block.0.gain', tf.zeros([8])],
          ]),
        ),
      ).rejects.toThrow('FSDP: unit "head" returned a gradient for "block.0.gain", which it does not read');
      await expect(fsdp.afterUnitBackward(head, new Map([['head.gain', tf.zeros([7])]]))).rejects.toThrow(
        'FSDP: gradient of "head.gain" has 7 values, expected 8',
      );
      expect(tf.memory().numTensors).toBe(before);
      fsdp.dispose();
    });
  });
});

// Real WebGPU: where the environment promises an adapter (CI, or VK_ICD_FILENAMES set for SwiftShader).
const gpu = webgpuExpected ? describe : describe.skip;
if (!webgpuExpected) {
  console.warn('fsdp-gpu.test.ts: no WebGPU adapter expected here (CI unset, no VK_ICD_FILENAMES): skipping');
}

gpu('FSDP on WebGPU', () => {
  const base: TinyTrainOptions = { steps: 4, globalBatch: 12 };
  let reference: TinyTrainResult;

  beforeAll(async () => {
    await selectBackend('webgpu', { log: false });
    reference = (await inProcess(1, (pg) => trainTiny(pg, base)))[0]!;
  });
  afterAll(async () => {
    await selectBackend('cpu', { log: false });
  });

  it('the 1-rank reference learns and reads one bucket per group', () => {
    expect(reference.losses[3]!).toBeLessThan(reference.losses[0]!);
    expect(reference.profiles.map((p) => p.gradientReads)).toEqual([4, 4, 4, 4]);
  });

  for (const [strategy, transport] of [
    ['FULL_SHARD', 'shared-memory'],
    ['FULL_SHARD', 'message-port'],
    ['SHARD_GRAD_OP', 'message-port'],
  ] as const) {
    it(`2 ranks sharing the device, ${strategy} over ${transport}: the 1-rank losses, norms and weights`, async () => {
      const results = await inProcess(2, (pg) => trainTiny(pg, { ...base, strategy }), transport);
      for (const r of results) {
        expectClose(r.losses, reference.losses);
        expectClose(r.gradNorms, reference.gradNorms);
        expect(r.profiles.map((p) => p.gradientReads)).toEqual([4, 4, 4, 4]);
      }
      expectSameWeights(results[0]!, reference);
    });
  }

  it('2 worker-thread ranks, each with its own Dawn device: the 1-rank losses', async () => {
    const job = await launchLocal({
      script: fileURLToPath(new URL('../../dist/testing/fsdp-rank.js', import.meta.url)),
      args: ['FULL_SHARD', '4'],
      nproc: 2,
      mode: 'threads',
      stdio: 'pipe',
      env: { MPTJS_TEST_BACKEND: 'webgpu' },
    });
    await job.done;
    for (const h of job.ranks) {
      const line = h
        .output()
        .split('\n')
        .find((l) => l.startsWith('{'));
      const got = JSON.parse(line ?? '{}') as {
        losses?: number[];
        gradNorms?: number[];
        gradientReads?: number[];
      };
      expectClose(got.losses ?? [], reference.losses);
      expectClose(got.gradNorms ?? [], reference.gradNorms);
      expect(got.gradientReads).toEqual([4, 4, 4, 4]);
    }
  });

  /** One training step on 2 ranks over the ring; rank 0's transfers and the driver's progress, in order. */
  async function tracedStep(bucketGradients: boolean): Promise<string[]> {
    const log: string[] = [];
    await inProcess(
      2,
      async (pg) => {
        const units = tinyUnits();
        const record = (e: TransferEvent) => {
          if (pg.rank === 0) log.push(`${e.kind} ${e.group}`);
        };
        const fsdp = await FsdpParameters.create(
          pg,
          { units, paramShapes: tinyShapes(), bucketGradients, onTransfer: record },
          tinyStateDict(1),
        );
        const note = (what: string) => {
          if (pg.rank === 0) log.push(what);
        };
        const hooks: UnitHooks<tf.Tensor> = {
          beforeUnitForward: (u, phase) => {
            if (phase === 'recompute') note(`backward ${u.name}`);
            return fsdp.beforeUnitForward(u, phase);
          },
          afterUnitForward: (u, phase) => fsdp.afterUnitForward(u, phase),
          afterUnitBackward: async (u, grads) => {
            note(`gradients ${u.name}`);
            await fsdp.afterUnitBackward(u, grads);
            note(`returned ${u.name}`);
          },
        };
        const rand = seededUniform(9);
        const x = tf.tensor2d(Float32Array.from({ length: 6 * TINY_IN }, rand), [6, TINY_IN]);
        const y = tf.tensor2d(Float32Array.from({ length: 6 * TINY_IN }, rand), [6, TINY_IN]);
        await forwardBackwardChain(units, x, y, hooks);
        tf.dispose([x, y, ...fsdp.takeGradients().values()]);
        fsdp.dispose();
      },
      'message-port',
    );
    return log;
  }

  it("a group's readback and reduce-scatter are under way while the unit before it runs backward", async () => {
    const log = await tracedStep(true);
    const at = (entry: string, from = 0) => {
      const i = log.indexOf(entry, from);
      if (i < 0) throw new Error(`"${entry}" is not in the log:\n${log.join('\n')}`);
      return i;
    };
    const backwardStart = at('backward head');
    // Each group's last reader and the unit whose backward comes next.
    for (const [group, next] of [
      ['head', 'block.1'],
      ['block.1', 'block.0'],
      ['block.0', 'in'],
    ] as const) {
      const issued = at(`readback ${group}`);
      // Issued when its last reader handed over its gradients, before the driver went on...
      expect(issued).toBeGreaterThan(at(`gradients ${group}`));
      expect(issued).toBeLessThan(at(`returned ${group}`));
      // ...which it did without waiting for it: the read completes after the next unit's backward has started,
      expect(at(`backward ${next}`)).toBeLessThan(at(`readback-done ${group}`));
      // and its reduce-scatter is issued after the read, within the pass.
      expect(at(`reduce ${group}`)).toBeGreaterThan(at(`readback-done ${group}`));
      expect(at(`reduce ${group}`)).toBeLessThan(at('returned in'));
      // The next unit's parameters were gathered (prefetched) and uploaded before its backward started.
      // The next unit's parameters were gathered (prefetched) while this unit ran, and were uploaded before
      // the next unit computed its gradients.
      expect(at(`gather ${next}`, backwardStart)).toBeLessThan(at(`gradients ${group}`));
      expect(at(`upload ${next}`, at(`gather ${next}`, backwardStart))).toBeLessThan(at(`gradients ${next}`));
    }
    // One read per group in the pass (the tied `in` group's two contributions are summed on the device).
    expect(log.filter((l) => l.startsWith('readback ')).sort()).toEqual(
      ['readback block.0', 'readback block.1', 'readback head', 'readback in'].sort(),
    );
  });

  it('per-parameter reads (the wasm and cpu path) finish before the driver goes on: the same check fails', async () => {
    const log = await tracedStep(false);
    const doneHead = log.lastIndexOf('readback-done head');
    expect(doneHead).toBeGreaterThan(-1);
    expect(doneHead).toBeLessThan(log.indexOf('returned head'));
    expect(log.indexOf('returned head')).toBeLessThan(log.indexOf('backward block.1'));
  });

  it('the profile reports bytes read back and uploaded and readback time in flight against time blocked; nothing leaks', async () => {
    const before = tf.memory().numTensors;
    const [r] = await inProcess(1, (pg) => trainTiny(pg, { ...base, steps: 2, fsdp: { profile: true } }));
    expect(tf.memory().numTensors, 'tensors left behind').toBe(before);
    const units = tinyUnits();
    const shapes = tinyShapes();
    const numel = (n: string) => shapes.get(n)!.reduce((a, b) => a * b, 1);
    const paramBytes = [...shapes.keys()].reduce((n, p) => n + numel(p) * 4, 0);
    for (const p of r!.profiles) {
      // Gradients: each group once; shards: read for each gather (the same values, cached after the first).
      expect(p.gradientReads).toBe(GROUPS);
      expect(p.bytesReadBack).toBeGreaterThanOrEqual(paramBytes);
      // FULL_SHARD uploads each unit's parameters for its forward and again for its backward (the head runs
      // once), and the gradient shards for the optimizer.
      const gathered = units.reduce(
        (n, u) => n + (u.name === 'head' ? 1 : 2) * u.paramNames.reduce((m, q) => m + numel(q) * 4, 0),
        0,
      );
      expect(p.bytesUploaded).toBe(gathered + paramBytes);
      expect(p.readbackInFlightMs).toBeGreaterThan(0);
      expect(p.readbackWaitMs).toBeLessThanOrEqual(p.wallMs);
      expect(p.computeMs).toBeGreaterThan(0);
    }
  });
});
