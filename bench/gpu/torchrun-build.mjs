// Builds the self-contained torchrun check: the mptjs-train CLI bundled into one ESM file (tfjs, @mptjs/*) and the
// data mixer's worker beside it, the tfjs wasm binaries, Dawn's addon laid out as a `webgpu` package, the tiny run's generator, torchrun
// itself as a Python entry point that works around a Debian torch 1.13 bug, and torchrun-check.sh.
// Usage: node bench/gpu/torchrun-build.mjs [--out DIR]   (default bench/gpu/torchrun/dist; run `pnpm build` first)
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

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
const rootRequire = createRequire(join(root, 'package.json'));
const esbuild = createRequire(rootRequire.resolve('tsup'))('esbuild');
const kernelsRequire = createRequire(join(root, 'packages/kernels/package.json'));
const webgpuDir = dirname(kernelsRequire.resolve('webgpu'));
const dawn = join(webgpuDir, 'dist', 'linux-x64', 'dawn.node');
if (!existsSync(dawn)) fail(`Dawn's linux-x64 addon is missing at ${dawn}`);
const wasmDir = join(
  dirname(
    createRequire(join(root, 'packages/kernels/package.json')).resolve('@tensorflow/tfjs-backend-wasm'),
  ),
);

rmSync(out, { recursive: true, force: true });
mkdirSync(join(out, 'node_modules/webgpu/dist/linux-x64'), { recursive: true });

const common = {
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  // Dawn loads from node_modules/webgpu beside the bundle; the Rust tokenizer binding is optional (the run's
  // tokenizer loads with @mptjs/tokenizer).
  external: ['webgpu', 'tokenizers'],
  // tfjs marks its backend entry points side-effect free, which would drop their registration imports.
  ignoreAnnotations: true,
  banner: {
    js: [
      "import { createRequire as __bundleCreateRequire } from 'node:module';",
      "import { fileURLToPath as __bundleFileURLToPath } from 'node:url';",
      "import { dirname as __bundleDirname } from 'node:path';",
      'const require = __bundleCreateRequire(import.meta.url);',
      'const __filename = __bundleFileURLToPath(import.meta.url);',
      'const __dirname = __bundleDirname(__filename);',
    ].join('\n'),
  },
  logLevel: 'warning',
  legalComments: 'none',
};
await esbuild.build({ ...common, entryPoints: [cli], outfile: join(out, 'mptjs-train.mjs') });
// The data mixer reads batches in a worker thread, which it loads as ./worker.js beside the module (the bundle).
const mixerWorker = join(root, 'packages/data-mixer/dist/worker.js');
if (!existsSync(mixerWorker)) fail(`${mixerWorker} is missing: run \`pnpm build\` first`);
await esbuild.build({ ...common, entryPoints: [mixerWorker], outfile: join(out, 'worker.js') });
writeFileSync(join(out, 'package.json'), `${JSON.stringify({ type: 'module', private: true })}\n`);
// The mixer imports @mptjs/tokenizer by a computed name (it is optional), which no bundler follows: it gets a
// package of its own under node_modules.
const tokenizerDir = join(out, 'node_modules/@mptjs/tokenizer');
mkdirSync(tokenizerDir, { recursive: true });
await esbuild.build({
  ...common,
  entryPoints: [join(root, 'packages/tokenizer/dist/index.js')],
  outfile: join(tokenizerDir, 'index.js'),
});
writeFileSync(
  join(tokenizerDir, 'package.json'),
  `${JSON.stringify({ name: '@mptjs/tokenizer', type: 'module', exports: './index.js' })}\n`,
);
await esbuild.build({
  ...common,
  entryPoints: [join(here, 'torchrun-make-run.mjs')],
  outfile: join(out, 'make-run.mjs'),
});

for (const f of readdirSync(wasmDir).filter((f) => f.endsWith('.wasm'))) {
  copyFileSync(join(wasmDir, f), join(out, f));
}
copyFileSync(join(webgpuDir, 'index.js'), join(out, 'node_modules/webgpu/index.js'));
copyFileSync(join(webgpuDir, 'package.json'), join(out, 'node_modules/webgpu/package.json'));
copyFileSync(dawn, join(out, 'node_modules/webgpu/dist/linux-x64/dawn.node'));
copyFileSync(join(root, 'tools/test-fixtures/src/torchrun.py'), join(out, 'torchrun.py'));
copyFileSync(join(here, 'torchrun-check.sh'), join(out, 'torchrun-check.sh'));
chmodSync(join(out, 'torchrun-check.sh'), 0o755);

let commit = 'unknown';
try {
  commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' }).trim();
} catch {
  // Not a git checkout: the build still works, only unlabelled.
}
writeFileSync(
  join(out, 'BUILD.json'),
  `${JSON.stringify({ bundle: 'mptjs-torchrun-check', commit, built_at: new Date().toISOString() }, null, 2)}\n`,
);
console.log(`torchrun-build: ${out} (run: ${join(out, 'torchrun-check.sh')} --node /path/to/node)`);
