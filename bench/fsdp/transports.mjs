// The transports the collective benches compare, as launchLocal options. BENCH_MODES picks some of them
// (comma-separated; default all three).
import { launchLocal } from '../../packages/distributed/dist/index.js';

const TRANSPORTS = {
  'shared-memory': { label: 'threads (shared memory)', mode: 'threads', threadTransport: 'shared-memory' },
  'message-port': { label: 'threads (MessagePort)', mode: 'threads', threadTransport: 'message-port' },
  processes: { label: 'TCP loopback (processes)', mode: 'processes' },
};

export function benchTransports() {
  const names = (process.env.BENCH_MODES ?? Object.keys(TRANSPORTS).join(',')).split(',');
  for (const n of names)
    if (!TRANSPORTS[n])
      throw new Error(`unknown BENCH_MODES entry ${n} (use ${Object.keys(TRANSPORTS).join(', ')})`);
  return names;
}

export const transportLabel = (name) => TRANSPORTS[name].label;

/** Runs `script` as `nproc` ranks over `transport` and returns rank 0's JSON line. */
export async function runRanks(transport, script, nproc, env) {
  const { mode, threadTransport } = TRANSPORTS[transport];
  const job = await launchLocal({ script, nproc, mode, threadTransport, stdio: 'pipe', env });
  await job.done;
  const line = job.ranks[0]
    .output()
    .split('\n')
    .find((l) => l.startsWith('{'));
  return JSON.parse(line);
}
