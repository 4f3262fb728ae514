// Builds the self-contained torchrun check: the mptjs-train CLI bundled into one ESM file (tfjs, @mptjs/*) and the
// data mixer's worker beside it, the tfjs wasm binaries, Dawn's addon laid out as a `webgpu` package, the tiny run's generator, torchrun
// itself as a Python entry point that works around a Debian torch 1.13 bug, and torchrun-check.sh.
// Usage: node bench/gpu/torchrun-build.mjs [--out DIR]   (default bench/gpu/torchrun/dist; run `pnpm build` first)
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { copyWebgpuPackage, dawnAddon, gitCommit, loadEsbuild, nodeBundle } from './bundle.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../..');
const { values } = parseArgs({
  options: { out: { type: 'string', default: join(here, 'torchrun', 'dist') } },
});
const out = resolve(values.out);

function fail(message) {
  console.error(`torchrun-build: ${message}`);
  process.exit(1);
}

const cli = join(root, 'apps/train/dist/cli.js');
if (!existsSync(cli)) fail(`${cli} is missing: run \`pnpm build\` first`);
const esbuild = loadEsbuild(root);
const webgpu = dawnAddon(root, fail);
const wasmDir = join(
  dirname(
    createRequire(join(root, 'packages/kernels/package.json')).resolve('@tensorflow/tfjs-backend-wasm'),
  ),
);

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });

await esbuild.build({ ...nodeBundle, entryPoints: [cli], outfile: join(out, 'mptjs-train.mjs') });
// The data mixer reads batches in a worker thread, which it loads as ./worker.js beside the module (the bundle).
const mixerWorker = join(root, 'packages/data-mixer/dist/worker.js');
if (!existsSync(mixerWorker)) fail(`${mixerWorker} is missing: run \`pnpm build\` first`);
await esbuild.build({ ...nodeBundle, entryPoints: [mixerWorker], outfile: join(out, 'worker.js') });
writeFileSync(join(out, 'package.json'), `${JSON.stringify({ type: 'module', private: true })}\n`);
await esbuild.build({
  ...nodeBundle,
  entryPoints: [join(here, 'torchrun-make-run.mjs')],
  outfile: join(out, 'make-run.mjs'),
});

for (const f of readdirSync(wasmDir).filter((f) => f.endsWith('.wasm'))) {
  copyFileSync(join(wasmDir, f), join(out, f));
}
copyWebgpuPackage(webgpu, out);
copyFileSync(join(root, 'tools/test-fixtures/src/torchrun.py'), join(out, 'torchrun.py'));
copyFileSync(join(here, 'torchrun-check.sh'), join(out, 'torchrun-check.sh'));
chmodSync(join(out, 'torchrun-check.sh'), 0o755);

const commit = gitCommit(root);
writeFileSync(
  join(out, 'BUILD.json'),
  `${JSON.stringify({ bundle: 'mptjs-torchrun-check', commit, built_at: new Date().toISOString() }, null, 2)}\n`,
);
console.log(`torchrun-build: ${out} (run: ${join(out, 'torchrun-check.sh')} --node /path/to/node)`);
