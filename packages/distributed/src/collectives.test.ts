import { beforeAll, describe, expect, it } from 'vitest';
import { CollectiveMismatchError, CollectiveTimeoutError, PeerFailureError } from './errors.js';
import type { ProcessGroup } from './process-group.js';
import { createLocalGroups, THREAD_TRANSPORTS, type ThreadTransport } from './transports/threads.js';

/** Small integers, so float sums are exact whatever the reduction order. */
function data(rank: number, n: number, salt = 0): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = ((i * 7 + rank * 13 + salt) % 31) - 15;
  return a;
}

let transport: ThreadTransport = 'shared-memory';

async function withGroups<T>(
  w: number,
  fn: (groups: ProcessGroup[]) => Promise<T>,
  timeoutMs = 5000,
  seg = 5,
) {
  const groups = createLocalGroups(w, { timeoutMs, segmentElements: seg, transport });
  try {
    return await fn(groups);
  } finally {
    await Promise.all(groups.map((g) => g.destroy()));
  }
}

for (const t of THREAD_TRANSPORTS)
  describe(`ring collectives (ranks in one thread over ${t})`, () => {
    beforeAll(() => {
      transport = t;
    });

    for (const w of [1, 2, 3, 4]) {
      for (const n of [0, 1, 3, 17, 64]) {
        it(`allReduce sum/avg/max, world ${w}, ${n} elements`, async () => {
          await withGroups(w, async (groups) => {
            for (const op of ['sum', 'avg', 'max'] as const) {
              const bufs = groups.map((g) => data(g.rank, n, op.length));
              const expected = new Float32Array(n);
              for (let i = 0; i < n; i++) {
                const vals = bufs.map((b) => b[i]!);
                expected[i] =
                  op === 'max' ? Math.max(...vals) : vals.reduce((s, v) => s + v, 0) / (op === 'avg' ? w : 1);
              }
              const out = await Promise.all(groups.map((g, r) => g.allReduce(bufs[r]!, op)));
              for (const o of out) expect(Array.from(o)).toEqual(Array.from(expected));
            }
          });
        });
      }
      it(`allGather, reduceScatter and broadcast agree with their definitions, world ${w}`, async () => {
        await withGroups(w, async (groups) => {
          const m = 11;
          const inputs = groups.map((g) => data(g.rank, m));
          const gathered = await Promise.all(groups.map((g, r) => g.allGather(inputs[r]!)));
          const concat = new Float32Array(w * m);
          for (const [r, x] of inputs.entries()) concat.set(x, r * m);
          for (const g of gathered) expect(Array.from(g)).toEqual(Array.from(concat));

          const full = groups.map((g) => data(g.rank, w * m, 3));
          const before = full.map((f) => f.slice());
          const shards = await Promise.all(groups.map((g, r) => g.reduceScatter(full[r]!, 'avg')));
          for (let r = 0; r < w; r++) {
            const want = Array.from({ length: m }, (_, i) => full.reduce((s, f) => s + f[r * m + i]!, 0) / w);
            expect(Array.from(shards[r]!)).toEqual(want.map((v) => Math.fround(v)));
            expect(Array.from(full[r]!)).toEqual(Array.from(before[r]!)); // input untouched
          }

          const root = w - 1;
          const bufs = groups.map((g) => data(g.rank, 23, 5));
          const rootData = bufs[root]!.slice();
          await Promise.all(groups.map((g, r) => g.broadcast(bufs[r]!, root)));
          for (const b of bufs) expect(Array.from(b)).toEqual(Array.from(rootData));
          await Promise.all(groups.map((g) => g.barrier()));
        });
      });
    }

    it('queues calls issued back to back and keeps their order', async () => {
      await withGroups(3, async (groups) => {
        const results = await Promise.all(
          groups.map((g) =>
            Promise.all([
              g.allReduce(new Float32Array([g.rank])),
              g.allReduce(new Float32Array([1]), 'max'),
              g.allGather(new Float32Array([g.rank * 2])),
            ]),
          ),
        );
        for (const [a, b, c] of results) {
          expect(Array.from(a)).toEqual([3]);
          expect(Array.from(b)).toEqual([1]);
          expect(Array.from(c)).toEqual([0, 2, 4]);
        }
      });
    });

    it('rejects bad arguments with precise messages', async () => {
      await withGroups(2, async ([g]) => {
        await expect(g!.reduceScatter(new Float32Array(5))).rejects.toThrow(
          'reduceScatter: input has 5 elements, not a multiple of worldSize 2 (pad it to 6)',
        );
        await expect(g!.allGather(new Float32Array(2), new Float32Array(3))).rejects.toThrow(
          'allGather: output has 3 elements, expected worldSize (2) x input (2) = 4',
        );
        await expect(g!.broadcast(new Float32Array(1), 2)).rejects.toThrow(
          'broadcast: root 2 is not a rank of this group (0..1)',
        );
        await expect(g!.allReduce(new Float32Array(1), 'min' as 'sum')).rejects.toThrow(
          "unknown reduce op 'min'",
        );
      });
    });

    it('mismatched sizes fail on every rank, naming the ranks and sizes', async () => {
      await withGroups(3, async (groups) => {
        const res = await Promise.allSettled(
          groups.map((g) => g.allReduce(new Float32Array(g.rank === 1 ? 8 : 10))),
        );
        for (const r of res) {
          expect(r.status).toBe('rejected');
          const err = (r as PromiseRejectedResult).reason;
          expect(err).toBeInstanceOf(CollectiveMismatchError);
          expect(err.message).toMatch(
            /mismatched collective #1: rank [01] passed (8|10) elements, rank [12] passed (8|10) elements/,
          );
        }
        // The group stays failed.
        await expect(groups[0]!.barrier()).rejects.toThrow(/cannot run: the process group failed earlier/);
      });
    });

    it('mismatched operations fail with both names', async () => {
      await withGroups(2, async ([a, b]) => {
        const res = await Promise.allSettled([
          a!.allReduce(new Float32Array(4)),
          b!.broadcast(new Float32Array(4)),
        ]);
        const msgs = res.map((r) => String((r as PromiseRejectedResult).reason?.message));
        expect(
          msgs.some(
            (m) => m.includes('called broadcast while rank') || m.includes('called allReduce while rank'),
          ),
        ).toBe(true);
      });
    });

    it("a rank that never joins is named in every rank's timeout error", async () => {
      await withGroups(
        4,
        async (groups) => {
          const t0 = performance.now();
          // Rank 2 is alive but does not call the collective.
          const res = await Promise.allSettled(
            groups.filter((g) => g.rank !== 2).map((g) => g.allReduce(new Float32Array(8))),
          );
          const elapsed = performance.now() - t0;
          for (const r of res) {
            const err = (r as PromiseRejectedResult).reason;
            expect(err).toBeInstanceOf(CollectiveTimeoutError);
            expect(err.peer).toBe(2);
            expect(err.message).toMatch(
              /allReduce #1 \(8 elements\) on rank \d failed after \d+\.\d\ds: rank 2 did not join allReduce #1 within 0\.30s/,
            );
          }
          expect(elapsed).toBeLessThan(2000);
        },
        300,
      );
    });

    it('a destroyed peer makes pending and later collectives fail naming it', async () => {
      await withGroups(3, async (groups) => {
        const pending = groups[0]!.allReduce(new Float32Array(4));
        await groups[1]!.destroy();
        const err = await pending.catch((e) => e);
        expect(err).toBeInstanceOf(PeerFailureError);
        expect(err.message).toMatch(/rank 1 has shut down its process group/);
        await expect(groups[2]!.barrier()).rejects.toThrow(/rank 1 has shut down/);
      });
    });

    it('verifySame passes equal values and names differing ranks and keys', async () => {
      await withGroups(3, async (groups) => {
        await Promise.all(groups.map((g) => g.verifySame({ b: [1, 2], a: 'x' }, 'config')));
        await Promise.all(groups.map((g) => g.verifySame({ a: 'x', b: [1, 2] }, 'config')));
        const res = await Promise.allSettled(
          groups.map((g) =>
            g.verifySame(
              { fsdp: { strategy: g.rank === 2 ? 'NO_SHARD' : 'FULL_SHARD' }, lr: 1e-3 },
              'config',
            ),
          ),
        );
        for (const r of res) {
          const err = (r as PromiseRejectedResult).reason;
          expect(err).toBeInstanceOf(CollectiveMismatchError);
          expect(err.message).toContain('verifySame(config) failed');
          expect(err.message).toContain(
            'rank 2 differs from rank 0 at fsdp.strategy ("FULL_SHARD" vs "NO_SHARD")',
          );
        }
      });
    });
  });
