// A rank script for tests: trains the tiny chain under FSDP (strategy from argv) and prints its losses as JSON.
// With MPTJS_TEST_DIE_RANK=r and MPTJS_TEST_DIE_AFTER=k, rank r stops before step k (its peers go on and wait for
// its parameters) and a moment later its thread or process exits abruptly, with no goodbye, as a crashed rank would.
// MPTJS_TEST_BACKEND picks the tensor backend (default cpu).
import { initFromEnv, recordRankFailure } from '@mptjs/distributed';
import { parseBackendRequest, selectBackend } from '@mptjs/kernels';
import type { ShardingStrategy } from '../fsdp/fsdp.js';
import { trainTiny } from './tiny-model.js';

async function main(): Promise<void> {
  await selectBackend(parseBackendRequest(process.env['MPTJS_TEST_BACKEND'] ?? 'cpu'), { log: false });
  const pg = await initFromEnv();
  try {
    const strategy = (process.argv[2] ?? 'FULL_SHARD') as ShardingStrategy;
    const dies = process.env['MPTJS_TEST_DIE_RANK'] === String(pg.rank);
    const dieAt = Number(process.env['MPTJS_TEST_DIE_AFTER']);
    const beforeStep = async (step: number) => {
      if (!dies || step !== dieAt) return;
      setTimeout(() => process.exit(3), 300);
      await new Promise(() => undefined);
    };
    const steps = Number(process.argv[3] ?? 5);
    const result = await trainTiny(pg, { strategy, steps, rank0Init: true, beforeStep });
    process.stdout.write(
      `${JSON.stringify({
        rank: pg.rank,
        losses: result.losses,
        gradNorms: result.gradNorms,
        gradientReads: result.profiles.map((p) => p.gradientReads),
      })}\n`,
    );
  } finally {
    await pg.destroy();
  }
}

main().catch((err: Error) => {
  recordRankFailure(err);
  process.stdout.write(`${JSON.stringify({ error: err.message })}\n`);
  process.exitCode = 1;
});
