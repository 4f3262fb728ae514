// A rank script for tests and benches: joins the group from the environment (torchrun variables, or the ring ports
// of a launchLocal worker thread) and runs one scenario. It reports one JSON line per event on stdout.
import { parentPort } from 'node:worker_threads';
import { initFromEnv } from '../init.js';
import type { ProcessGroup } from '../process-group.js';
import { recordRankFailure } from '../rank-failure.js';

function report(event: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(event)}\n`);
}

const scenario = process.argv[2] ?? 'check';
const target = Number(process.env['TARGET_RANK'] ?? '-1');

async function check(pg: ProcessGroup): Promise<void> {
  const n = 100_003;
  const buf = new Float32Array(n).fill(pg.rank + 1);
  await pg.allReduce(buf);
  const gathered = await pg.allGather(new Float32Array([pg.rank, pg.rank]));
  const shard = await pg.reduceScatter(new Float32Array(4 * pg.worldSize).fill(1), 'avg');
  const b = new Float32Array(3).fill(pg.rank === 0 ? 42 : 0);
  await pg.broadcast(b, 0);
  await pg.verifySame({ world: pg.worldSize });
  await pg.barrier();
  report({
    rank: pg.rank,
    first: buf[0],
    last: buf[n - 1],
    gathered: Array.from(gathered),
    shard: Array.from(shard),
    b: Array.from(b),
  });
}

/** Reduces until something fails; the test kills a rank meanwhile. */
async function loop(pg: ProcessGroup): Promise<void> {
  const buf = new Float32Array(1 << 20);
  report({ rank: pg.rank, ready: true });
  for (;;) await pg.allReduce(buf);
}

/** TARGET_RANK stays alive but stops calling collectives. */
async function hang(pg: ProcessGroup): Promise<void> {
  report({ rank: pg.rank, ready: true });
  if (pg.rank === target) {
    setInterval(() => undefined, 1000);
    await new Promise(() => undefined);
  }
  for (;;) await pg.allReduce(new Float32Array(16));
}

/** TARGET_RANK exits between collectives without destroying its group; the others call one afterwards. */
async function exitEarly(pg: ProcessGroup): Promise<void> {
  await pg.barrier();
  if (pg.rank === target) process.exit(1);
  await new Promise((r) => setTimeout(r, 300));
  await pg.allReduce(new Float32Array(4));
}

/**
 * TARGET_RANK leaves the group, then fails with an error of its own only later: its peers fail first (their next
 * collective finds it gone), so the launcher sees their exits before the cause's.
 */
async function failLate(pg: ProcessGroup): Promise<void> {
  await pg.barrier();
  if (pg.rank === target) {
    await pg.destroy();
    await new Promise((r) => setTimeout(r, 800));
    throw new Error(`rank ${pg.rank} ran out of memory (test)`);
  }
  await new Promise((r) => setTimeout(r, 100));
  await pg.allReduce(new Float32Array(4));
}

async function mismatch(pg: ProcessGroup): Promise<void> {
  await pg.allReduce(new Float32Array(pg.rank === target ? 10 : 12));
}

async function main(): Promise<void> {
  const t0 = performance.now();
  let pg: ProcessGroup | null = null;
  try {
    pg = await initFromEnv();
    if (scenario === 'check') await check(pg);
    else if (scenario === 'loop') await loop(pg);
    else if (scenario === 'hang') await hang(pg);
    else if (scenario === 'mismatch') await mismatch(pg);
    else if (scenario === 'exit-early') await exitEarly(pg);
    else if (scenario === 'fail-late') await failLate(pg);
    else throw new Error(`unknown scenario ${scenario}`);
    await pg.destroy();
  } catch (err) {
    const e = err as Error & { peer?: number };
    report({
      rank: pg?.rank ?? Number(process.env['RANK']),
      error: e.message,
      name: e.name,
      peer: e.peer,
      ms: performance.now() - t0,
    });
    recordRankFailure(err);
    await pg?.destroy();
    process.exitCode = 3;
    if (parentPort) process.exit(3);
  }
}

void main();
