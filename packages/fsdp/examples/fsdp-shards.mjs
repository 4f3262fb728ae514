// Run: node examples/fsdp-shards.mjs   (2 worker-thread ranks; a tiny MPT model sharded FULL_SHARD)
import { isMainThread } from 'node:worker_threads';
import { initFromEnv, launchLocal } from '@mptjs/distributed';
import { FsdpParameters } from '@mptjs/fsdp';
import { selectBackend } from '@mptjs/kernels';
import { expectedParameterShapes, MPTModel, parseMptConfig } from '@mptjs/mpt-model';

if (isMainThread) {
  const job = await launchLocal({ script: new URL(import.meta.url).pathname, nproc: 2, mode: 'threads' });
  await job.done;
} else {
  await selectBackend('cpu', { log: false });
  const pg = await initFromEnv();
  const config = parseMptConfig({
    model_type: 'mpt',
    d_model: 16,
    n_heads: 2,
    n_layers: 2,
    expansion_ratio: 2,
    max_seq_len: 16,
    vocab_size: 32,
    no_bias: true,
    attn_config: { alibi: true, qk_ln: true },
  });
  const model = MPTModel.init(config, 0);
  const units = model.units().map((u) => ({ name: u.name, paramNames: u.paramNames }));
  // Only rank 0 holds the weights; the others receive their shards by broadcast.
  const init = pg.rank === 0 ? await model.toStateDict() : null;
  const fsdp = await FsdpParameters.create(
    pg,
    { units, paramShapes: expectedParameterShapes(config), strategy: 'FULL_SHARD' },
    init,
  );
  for (const [group, shard] of fsdp.optimizerParameters()) {
    if (pg.rank === 0)
      console.log(`group ${group}: ${fsdp.layouts.get(group).numel} params, shard ${shard.size}`);
  }
  const params = await fsdp.beforeUnitForward(units[1], 'forward'); // all-gathers block.0
  console.log(
    `rank ${pg.rank} gathered`,
    [...params].map(([n, t]) => `${n.split('.').slice(-2).join('.')}[${t.shape}]`).join(' '),
  );
  fsdp.afterUnitForward(units[1], 'forward'); // FULL_SHARD frees it again
  const full = await fsdp.fullStateDict(); // rank 0 only: what model.safetensors is written from
  if (full) console.log(`consolidated ${full.size} tensors on rank 0`);
  fsdp.dispose();
  await pg.destroy();
}
