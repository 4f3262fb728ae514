import { fileURLToPath } from 'node:url';
import {
  CollectiveTimeoutError,
  createLocalGroups,
  launchLocal,
  type ProcessGroup,
  type ThreadTransport,
} from '@mptjs/distributed';
import { selectBackend } from '@mptjs/kernels';
import { forwardChain } from '@mptjs/mpt-model';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  seededUniform,
  type TinyTrainOptions,
  tinyShapes,
  tinyStateDict,
  tinyUnits,
  trainTiny,
} from '../testing/tiny-model.js';
import { defaultGroups, flatLayout } from './flat-layout.js';
import { FsdpParameters } from './fsdp.js';

beforeAll(async () => {
  await selectBackend('cpu', { log: false });
});

/** Ranks in this thread; 'shared-memory' groups share an arena (the shared exchange), 'message-port' ones do not (the ring). */
async function inProcess<T>(
  w: number,
  fn: (pg: ProcessGroup) => Promise<T>,
  transport: ThreadTransport = 'shared-memory',
): Promise<T[]> {
  const groups = createLocalGroups(w, { timeoutMs: 20_000, transport });
  try {
    return await Promise.all(groups.map(fn));
  } finally {
    await Promise.all(groups.map((g) => g.destroy()));
  }
}

/** Two worker-thread ranks running `testing/fsdp-rank.ts` (tiny chain, FULL_SHARD, 6 steps). */
function launchTinyRanks(extra: { distTimeoutS?: number; env?: Record<string, string> } = {}) {
  return launchLocal({
    script: fileURLToPath(new URL('../../dist/testing/fsdp-rank.js', import.meta.url)),
    args: ['FULL_SHARD', '6'],
    nproc: 2,
    mode: 'threads',
    stdio: 'pipe',
    ...extra,
  });
}

/** The JSON line a rank script printed (its losses, or its error). */
function rankResult(output: string): { losses?: number[]; gradNorms?: number[]; error?: string } {
  return JSON.parse(output.split('\n').find((l) => l.startsWith('{')) ?? '{}');
}

function expectClose(actual: number[], expected: number[], rel = 1e-5): void {
  expect(actual.length).toBe(expected.length);
  actual.forEach((a, i) => {
    const e = expected[i]!;
    expect(Math.abs(a - e) / Math.max(Math.abs(e), 1e-12)).toBeLessThan(rel);
  });
}

describe('flat layout', () => {
  it("pads every group to a multiple of the world size and keeps tied weights in the first unit's group", () => {
    const groups = defaultGroups(tinyUnits());
    expect([...groups.keys()]).toEqual(['in', 'block.0', 'block.1', 'head']);
    expect(groups.get('head')).toEqual(['head.gain']);
    const l = flatLayout('block.0', groups.get('block.0')!, tinyShapes(), 3);
    expect(l.numel).toBe(72);
    expect(l.shardNumel).toBe(24);
    const odd = flatLayout('head', ['head.gain'], tinyShapes(), 3);
    expect([odd.numel, odd.paddedNumel, odd.shardNumel]).toEqual([8, 9, 3]);
  });
});

// On wasm FSDP reads tensors in the backend's heap and reuses its host buffers from step to step (host-io.ts);
// cpu keeps the arrays it is given, so there every buffer is fresh.
describe.each([
  'cpu',
  'wasm',
] as const)('FSDP on the tiny chain (%s): N ranks train like 1 rank with the same global batch', (backend) => {
  const base: TinyTrainOptions = { steps: 6, globalBatch: 12 };
  let reference: Awaited<ReturnType<typeof trainTiny>>;

  beforeAll(async () => {
    await selectBackend(backend, { log: false });
    reference = (await inProcess(1, (pg) => trainTiny(pg, base)))[0]!;
  });
  afterAll(async () => {
    await selectBackend('cpu', { log: false });
  });

  it('the reference run learns and clips', () => {
    expect(reference.losses[5]!).toBeLessThan(reference.losses[0]!);
    expect(reference.gradNorms[0]!).toBeGreaterThan(0.5); // the clip threshold, so clipping is exercised
  });

  for (const [w, strategy] of [
    [2, 'FULL_SHARD'],
    [4, 'FULL_SHARD'],
    [3, 'FULL_SHARD'],
    [2, 'SHARD_GRAD_OP'],
    [4, 'NO_SHARD'],
  ] as const) {
    it(`${w} ranks, ${strategy}: same loss and gradient norm at every step, same final weights`, async () => {
      const results = await inProcess(w, (pg) => trainTiny(pg, { ...base, strategy, rank0Init: w === 4 }));
      for (const r of results) {
        expectClose(r.losses, reference.losses);
        expectClose(r.gradNorms, reference.gradNorms);
      }
      expect(results.slice(1).every((r) => r.final === null)).toBe(true);
      for (const [name, t] of reference.final!) {
        const first = results[0]!;
        const got = first.final?.get(name);
        if (!got) throw new Error(`rank 0 returned no "${name}"`);
        expect(got.shape).toEqual(t.shape);
        for (let i = 0; i < t.data.length; i++) expect(got.data[i]).toBeCloseTo(t.data[i]!, 5);
      }
    });
  }

  it('2 ranks x 2 accumulated microbatches match 1 rank x 1 microbatch', async () => {
    const results = await inProcess(2, (pg) => trainTiny(pg, { ...base, microbatches: 2 }));
    for (const r of results) {
      expectClose(r.losses, reference.losses);
      expectClose(r.gradNorms, reference.gradNorms);
    }
  });

  // Without an arena FULL_SHARD gathers and reduce-scatters over the ring, from pooled buffers.
  for (const [w, microbatches] of [
    [2, 1],
    [3, 2],
  ] as const) {
    it(`${w} ranks x ${microbatches} microbatch(es) over the ring (no shared arena) match 1 rank`, async () => {
      const results = await inProcess(
        w,
        (pg) => {
          expect(pg.arena).toBeUndefined();
          return trainTiny(pg, { ...base, microbatches });
        },
        'message-port',
      );
      for (const r of results) {
        expectClose(r.losses, reference.losses);
        expectClose(r.gradNorms, reference.gradNorms);
      }
    });
  }

  it('evaluation (forward only, prefetching) gives the 1-rank loss on every rank and frees what it gathered', async () => {
    const rand = seededUniform(5);
    const xs = Float32Array.from({ length: 4 * 6 }, rand);
    const ys = Float32Array.from({ length: 4 * 6 }, rand);
    const evalOn = (pg: ProcessGroup) => async () => {
      const fsdp = await FsdpParameters.create(
        pg,
        { units: tinyUnits(), paramShapes: tinyShapes() },
        tinyStateDict(1),
      );
      const x = tf.tensor2d(xs, [4, 6]);
      const y = tf.tensor2d(ys, [4, 6]);
      const before = tf.memory().numTensors;
      const out = await forwardChain(tinyUnits(), x, y, fsdp);
      const loss = (await out.data())[0]!;
      out.dispose();
      const leaked = tf.memory().numTensors - before;
      tf.dispose([x, y]);
      fsdp.dispose();
      return { loss, leaked };
    };
    const [one] = await inProcess(1, (pg) => evalOn(pg)());
    const two = await inProcess(2, (pg) => evalOn(pg)());
    for (const r of two) expect(r.loss).toBeCloseTo(one!.loss, 6);
    expect(one!.leaked).toBe(0);
  });

  it('frees gathered parameters: no tensors leak across steps under FULL_SHARD', async () => {
    await inProcess(2, async (pg) => {
      await trainTiny(pg, { steps: 1, globalBatch: 12 });
      return undefined;
    });
    const before = tf.memory().numTensors;
    await inProcess(2, async (pg) => {
      await trainTiny(pg, { steps: 3, globalBatch: 12 });
      return undefined;
    });
    expect(tf.memory().numTensors).toBe(before);
  });

  it('worker threads: 2 ranks (FULL_SHARD) match the 1-rank losses', async () => {
    const job = await launchTinyRanks();
    await job.done;
    for (const h of job.ranks) {
      const got = rankResult(h.output());
      expectClose(got.losses ?? [], reference.losses);
      expectClose(got.gradNorms ?? [], reference.gradNorms);
    }
  });
});

describe('FSDP over worker threads when a rank dies', () => {
  it('the other rank, waiting in the shared arena, fails within seconds naming the dead rank', async () => {
    await selectBackend('cpu', { log: false });
    const started = performance.now();
    const job = await launchTinyRanks({
      distTimeoutS: 60,
      env: { MPTJS_TEST_DIE_RANK: '1', MPTJS_TEST_DIE_AFTER: '2' },
    });
    // The launcher names the dead rank, even when the survivor's exit, failing because of it, came first.
    await expect(job.done).rejects.toThrow(/^rank 1 exited with code 3; stopping the other ranks$/);
    const { error } = rankResult(job.ranks[0]!.output());
    // Rank 0 was waiting for rank 1's parameters in the shared arena when rank 1's thread ended.
    expect(error).toMatch(/rank 1 closed its connection/);
    // Far inside the 60 s collective timeout: the dead thread's closed port fails the group at once.
    expect(performance.now() - started).toBeLessThan(20_000);
  });
});

describe('FSDP through the shared arena when a rank hangs', () => {
  it("the other rank's wait for its parameters times out naming it", async () => {
    await selectBackend('cpu', { log: false });
    const groups = createLocalGroups(2, { timeoutMs: 1500 });
    try {
      const never = new Promise<void>(() => undefined);
      // Rank 1 trains one step, then stops calling anything (alive, but hung).
      void trainTiny(groups[1]!, { steps: 2, beforeStep: (s) => (s === 1 ? never : undefined) }).catch(
        () => undefined,
      );
      const started = performance.now();
      const err = await trainTiny(groups[0]!, { steps: 2 }).then(
        () => null,
        (e: Error) => e,
      );
      expect(err).toBeInstanceOf(CollectiveTimeoutError);
      expect(err?.message).toMatch(
        /^FSDP on rank 0: rank 1 did not publish its parameters \(2\) within 1\.50s/,
      );
      expect(performance.now() - started).toBeLessThan(10_000);
    } finally {
      await Promise.all(groups.map((g) => g.destroy()));
    }
  });
});

describe('FSDP on the tiny chain over 30 steps', () => {
  it('2 and 4 ranks (FULL_SHARD) give the 1-rank loss at every step and the same final full state dict', async () => {
    const opts: TinyTrainOptions = { steps: 30, globalBatch: 12, strategy: 'FULL_SHARD' };
    const [one] = await inProcess(1, (pg) => trainTiny(pg, opts));
    const ref = one!;
    expect(ref.losses[29]!).toBeLessThan(0.9 * ref.losses[0]!);
    const init = tinyStateDict(1);
    let moved = 0;
    for (const [name, t] of ref.final!)
      t.data.forEach((v, i) => {
        moved = Math.max(moved, Math.abs(v - (init.get(name)?.data[i] ?? Number.NaN)));
      });
    expect(moved).toBeGreaterThan(0.05); // the weights trained, so comparing them means something
    for (const w of [2, 4]) {
      const results = await inProcess(w, (pg) => trainTiny(pg, { ...opts, rank0Init: w === 4 }));
      for (const r of results) {
        expect(r.losses).toHaveLength(30);
        expectClose(r.losses, ref.losses);
        expectClose(r.gradNorms, ref.gradNorms);
      }
      const full = results[0]?.final;
      if (!full) throw new Error('rank 0 returned no full state dict');
      expect([...full.keys()].sort()).toEqual([...ref.final!.keys()].sort());
      let worst = 0;
      for (const [name, t] of ref.final!) {
        const got = full.get(name)!;
        expect(got.shape).toEqual(t.shape);
        for (let i = 0; i < t.data.length; i++) worst = Math.max(worst, Math.abs(got.data[i]! - t.data[i]!));
      }
      expect(worst, `${w} ranks: largest weight difference after 30 steps`).toBeLessThan(1e-5);
    }
  });
});

describe('FSDP gradient reduction', () => {
  it('does not block the backward pass on its reduce-scatter, and averages each group across ranks', async () => {
    const units = tinyUnits();
    const shapes = tinyShapes();
    const groups = createLocalGroups(2, { timeoutMs: 10_000 });
    try {
      const [a, b] = await Promise.all(
        groups.map((pg) => FsdpParameters.create(pg, { units, paramShapes: shapes }, tinyStateDict(1))),
      );
      // Gradient of every parameter = (rank + 1) * (index + 1), so the average is 1.5 * (index + 1).
      const grads = (unit: (typeof units)[number], rank: number) =>
        new Map(
          unit.paramNames.map((n) => {
            const size = shapes.get(n)!.reduce((x, y) => x * y, 1);
            return [
              n,
              tf.tensor(
                Float32Array.from({ length: size }, (_, i) => (rank + 1) * (i + 1)),
                shapes.get(n)!,
              ),
            ];
          }),
        );
      const backward = [...units].reverse();
      // Rank 0 hands over the head's gradients while rank 1 has not started: this must not wait for rank 1.
      await a!.afterUnitBackward(backward[0]!, grads(backward[0]!, 0));
      await a!.afterUnitBackward(backward[1]!, grads(backward[1]!, 0));
      // Now rank 1 catches up, and both finish the pass (the last call waits for every reduction).
      const rest = backward.slice(2);
      await Promise.all([
        (async () => {
          for (const u of rest) await a!.afterUnitBackward(u, grads(u, 0));
        })(),
        (async () => {
          for (const u of backward) await b!.afterUnitBackward(u, grads(u, 1));
        })(),
      ]);
      for (const [r, fsdp] of [a!, b!].entries()) {
        const shards = fsdp.takeGradients();
        for (const [group, layout] of fsdp.layouts) {
          const got = await shards.get(group)!.data();
          const start = r * layout.shardNumel;
          for (let k = 0; k < layout.shardNumel; k++) {
            const flat = start + k;
            const entry = layout.entries.find((e) => flat >= e.offset && flat < e.offset + e.numel);
            // The tied in.weight gets contributions from both units that read it.
            const readers = entry?.name === 'in.weight' ? 2 : 1;
            const want = entry ? 1.5 * (flat - entry.offset + 1) * readers : 0; // padding stays zero
            expect(got[k]).toBeCloseTo(want, 4);
          }
        }
        tf.dispose([...shards.values()]);
        fsdp.dispose();
      }
    } finally {
      await Promise.all(groups.map((g) => g.destroy()));
    }
  });
});

describe('FSDP state dicts and errors', () => {
  it('a full state dict written at one world size loads into another', async () => {
    const [trained] = await inProcess(2, async (pg) => {
      const r = await trainTiny(pg, { steps: 2 });
      return r.final;
    });
    const results = await inProcess(3, async (pg) => {
      const fsdp = await FsdpParameters.create(
        pg,
        { units: tinyUnits(), paramShapes: tinyShapes() },
        pg.rank === 0 ? trained! : null,
      );
      const back = await fsdp.fullStateDict({ allRanks: true });
      fsdp.dispose();
      return back!;
    });
    for (const sd of results)
      for (const [name, t] of trained!) expect(Array.from(sd.get(name)!.data)).toEqual(Array.from(t.data));
  });

  it('a state dict that does not fit fails on every rank with the problem listed', async () => {
    const bad = tinyStateDict(1);
    bad.set('head.gain', { shape: [7], data: new Float32Array(7) });
    bad.set('extra', { shape: [1], data: new Float32Array(1) });
    const res = await inProcess(2, (pg) =>
      FsdpParameters.create(
        pg,
        { units: tinyUnits(), paramShapes: tinyShapes() },
        pg.rank === 0 ? bad : null,
      ).then(
        () => 'ok',
        (e: Error) => e.message,
      ),
    );
    expect(res[0]).toContain('tensor "head.gain" has shape [7], expected [8]');
    expect(res[0]).toContain('unexpected tensor "extra"');
    expect(res[1]).toContain('another rank passed a state dict that does not fit');
  });

  it('ranks built with different strategies are told so before anything runs', async () => {
    const res = await inProcess(2, (pg) =>
      FsdpParameters.create(
        pg,
        {
          units: tinyUnits(),
          paramShapes: tinyShapes(),
          strategy: pg.rank === 0 ? 'FULL_SHARD' : 'NO_SHARD',
        },
        tinyStateDict(1),
      ).then(
        () => 'ok',
        (e: Error) => e.message,
      ),
    );
    for (const m of res) expect(m).toContain('verifySame(FSDP layout) failed');
    expect(res[0]).toContain('rank 1 differs from rank 0 at strategy ("FULL_SHARD" vs "NO_SHARD")');
  });

  it('rejects unknown strategies, units and parameters clearly', async () => {
    await inProcess(1, async (pg) => {
      await expect(
        FsdpParameters.create(
          pg,
          { units: tinyUnits(), paramShapes: tinyShapes(), strategy: 'HYBRID' as 'NO_SHARD' },
          null,
        ),
      ).rejects.toThrow("FSDP: unknown sharding strategy 'HYBRID'");
      const shapes = tinyShapes();
      shapes.delete('head.gain');
      await expect(
        FsdpParameters.create(pg, { units: tinyUnits(), paramShapes: shapes }, null),
      ).rejects.toThrow('FSDP: no shape given for parameter "head.gain" (group "head")');
      const fsdp = await FsdpParameters.create(
        pg,
        { units: tinyUnits(), paramShapes: tinyShapes() },
        tinyStateDict(1),
      );
      await expect(fsdp.beforeUnitForward({ name: 'nope', paramNames: [] }, 'forward')).rejects.toThrow(
        'FSDP: unknown unit "nope" (not in the chain FSDP was built for)',
      );
      expect(() => fsdp.takeGradients()).not.toThrow();
      fsdp.dispose();
    });
  });
});
