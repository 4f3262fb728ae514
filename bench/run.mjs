// Runs every bench script (`bench/**/*.bench.mjs`), each in its own process so one backend's state never leaks
// into another's figures. `--filter WORD` keeps the benches whose path contains WORD; other flags pass through.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
const args = process.argv.slice(2);
const filters = [];
const passthrough = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--filter') filters.push(args[++i] ?? '');
  else if (args[i].startsWith('--filter=')) filters.push(args[i].slice(9));
  else passthrough.push(args[i]);
}

function find(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return name === 'results' || name === 'node_modules' ? [] : find(path);
    return name.endsWith('.bench.mjs') ? [path] : [];
  });
}

const benches = find(here)
  .map((p) => relative(here, p))
  .filter((p) => filters.length === 0 || filters.some((f) => p.includes(f)))
  .sort();
if (benches.length === 0) {
  console.error(`no bench matches ${filters.join(', ')}`);
  process.exit(1);
}
let failed = 0;
for (const bench of benches) {
  console.log(`\n=== ${bench}`);
  const r = spawnSync(process.execPath, [join(here, bench), ...passthrough], { stdio: 'inherit' });
  if (r.status !== 0) failed++;
}
// The generated targets table in docs/benchmarks.md, from the results on disk (those just written included).
const { rewriteDocs, targetsTable } = await import('./summarize.mjs');
rewriteDocs();
console.log(`\n=== targets (docs/benchmarks.md redrawn)\n${targetsTable()}`);
process.exit(failed ? 1 : 0);
