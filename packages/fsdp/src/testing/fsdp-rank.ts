// A rank script for tests: trains the tiny chain under FSDP (strategy from argv) and prints its losses as JSON.
import { selectBackend } from '@mptjs/alibi-attention';
import type { ShardingStrategy } from '../fsdp/fsdp.js';
import { initFromEnv } from '../init.js';
import { trainTiny } from './tiny-model.js';

async function main(): Promise<void> {
  await selectBackend('cpu', { log: false });
  const pg = await initFromEnv();
  try {
    const strategy = (process.argv[2] ?? 'FULL_SHARD') as ShardingStrategy;
    const result = await trainTiny(pg, { strategy, steps: Number(process.argv[3] ?? 5), rank0Init: true });
    process.stdout.write(
      `${JSON.stringify({ rank: pg.rank, losses: result.losses, gradNorms: result.gradNorms })}\n`,
    );
  } finally {
    await pg.destroy();
  }
}

main().catch((err: Error) => {
  process.stdout.write(`${JSON.stringify({ error: err.message })}\n`);
  process.exitCode = 1;
});
