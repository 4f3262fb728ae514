import { mkdtemp, rm, truncate } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLocalGroups, type ProcessGroup } from '@mptjs/distributed';
import { selectBackend } from '@mptjs/kernels';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tinyShapes, tinyStateDict, tinyUnits } from '../testing/tiny-model.js';
import { FsdpParameters } from './fsdp.js';
import { loadShardedCheckpoint, saveShardedCheckpoint, shardFileNames } from './sharded-checkpoint.js';

let dir: string;
beforeAll(async () => {
  await selectBackend('cpu', { log: false });
  dir = await mkdtemp(join(tmpdir(), 'fsdp-ckpt-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function inProcess<T>(w: number, fn: (pg: ProcessGroup) => Promise<T>): Promise<T[]> {
  const groups = createLocalGroups(w, { timeoutMs: 10_000 });
  try {
    return await Promise.all(groups.map(fn));
  } finally {
    await Promise.all(groups.map((g) => g.destroy()));
  }
}

const make = (pg: ProcessGroup, seed: number) =>
  FsdpParameters.create(pg, { units: tinyUnits(), paramShapes: tinyShapes() }, tinyStateDict(seed));

describe('sharded checkpoints', () => {
  it("round-trips every rank's shards and extras at the same world size", async () => {
    const ckpt = join(dir, 'a');
    const saved = await inProcess(2, async (pg) => {
      const fsdp = await make(pg, 1);
      const extras = new Map([['exp_avg/in', Float32Array.from({ length: 5 }, (_, i) => i + pg.rank * 10)]]);
      await saveShardedCheckpoint(fsdp, ckpt, extras);
      const full = await fsdp.fullStateDict({ allRanks: true });
      fsdp.dispose();
      return full!;
    });
    const loaded = await inProcess(2, async (pg) => {
      const fsdp = await make(pg, 99); // different weights until the checkpoint loads
      const extras = await loadShardedCheckpoint(fsdp, ckpt);
      const full = await fsdp.fullStateDict({ allRanks: true });
      fsdp.dispose();
      return { full: full!, extras };
    });
    for (const [r, { full, extras }] of loaded.entries()) {
      expect(Array.from(extras.get('exp_avg/in')!)).toEqual([0, 1, 2, 3, 4].map((i) => i + r * 10));
      for (const [name, t] of saved[0]!) expect(Array.from(full.get(name)!.data)).toEqual(Array.from(t.data));
    }
  });

  it('refuses another world size on every rank, pointing at the full checkpoint', async () => {
    const ckpt = join(dir, 'b');
    await inProcess(2, async (pg) => {
      const fsdp = await make(pg, 1);
      await saveShardedCheckpoint(fsdp, ckpt);
      fsdp.dispose();
    });
    const res = await inProcess(3, async (pg) => {
      const fsdp = await make(pg, 1);
      const msg = await loadShardedCheckpoint(fsdp, ckpt).then(
        () => 'ok',
        (e: Error) => e.message,
      );
      fsdp.dispose();
      return msg;
    });
    for (const m of res)
      expect(m).toMatch(/no shard for rank \d of 3 .*load the full checkpoint to change it/);
  });

  it('a truncated shard fails on its rank with the sizes, and on the others too', async () => {
    const ckpt = join(dir, 'c');
    await inProcess(2, async (pg) => {
      const fsdp = await make(pg, 1);
      await saveShardedCheckpoint(fsdp, ckpt);
      fsdp.dispose();
    });
    await truncate(shardFileNames(ckpt, 1, 2).data, 12);
    const res = await inProcess(2, async (pg) => {
      const fsdp = await make(pg, 1);
      const msg = await loadShardedCheckpoint(fsdp, ckpt).then(
        () => 'ok',
        (e: Error) => e.message,
      );
      fsdp.dispose();
      return msg;
    });
    expect(res[1]).toMatch(/shard-1-of-2\.bin has 12 bytes, expected \d+ \(truncated\?\)/);
    expect(res[0]).toBe('FSDP checkpoint: another rank failed to read or write its shard (see its error)');
  });
});
