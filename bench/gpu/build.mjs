// Builds the self-contained GPU measurement kit: the measurement script bundled with tfjs and the packages'
// built dist (run `pnpm build` first), Dawn's native addon laid out as a `webgpu` package beside the bundle, the
// Vulkan loader and a libstdc++ from this machine for targets that lack them, run.sh, and the PyTorch reference.
// Usage: node bench/gpu/build.mjs [--out DIR]   (default bench/gpu/dist)
import { chmodSync, copyFileSync, existsSync, mkdirSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { copyWebgpuPackage, dawnAddon, gitCommit, loadEsbuild, nodeBundle } from './bundle.mjs';
import { sampleTokenizerPath, writeSampleTokens } from './sample-tokens.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../..');
const { values } = parseArgs({ options: { out: { type: 'string', default: join(here, 'dist') } } });
const out = resolve(values.out);

/** Copies GPT-NeoX-20B's tokenizer.json into the kit; returns a note when the build machine has none. */
function copyTokenizer(dir) {
  const path = sampleTokenizerPath(root);
  if (!existsSync(path)) return `no tokenizer at ${path} (set MPTJS_SHARED_DIR): the serve section will skip`;
  copyFileSync(path, join(dir, 'tokenizer.json'));
  return null;
}

function fail(message) {
  console.error(`build: ${message}`);
  process.exit(1);
}

// The bundle takes each package from its built dist, as `pnpm build` left it.
const packages = ['kernels', 'alibi-attention', 'mpt-model', 'data-mixer', 'trainer', 'tokenizer'];
for (const p of packages) {
  if (!existsSync(join(root, 'packages', p, 'dist', 'index.js'))) {
    fail(`packages/${p}/dist is missing: run \`pnpm build\` first`);
  }
}
// The serve section runs mptjs-serve's app.
if (!existsSync(join(root, 'apps/serve/dist/index.js')))
  fail('apps/serve/dist is missing: run `pnpm build` first');

const esbuild = loadEsbuild(root);
const webgpu = dawnAddon(root, fail);

rmSync(out, { recursive: true, force: true });
mkdirSync(join(out, 'lib'), { recursive: true });
mkdirSync(join(out, 'compat'), { recursive: true });

await esbuild.build({
  ...nodeBundle,
  entryPoints: [join(here, 'kit.mjs')],
  outfile: join(out, 'mptjs-gpu-kit.mjs'),
});

// The PyTorch reference (run.sh runs it with the target's python3 and torch) and the step that merges its
// result into the kit's JSON.
await esbuild.build({
  entryPoints: [join(here, 'pytorch-merge.mjs')],
  outfile: join(out, 'pytorch-merge.mjs'),
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  logLevel: 'warning',
  legalComments: 'none',
});
copyFileSync(join(here, 'pytorch_reference.py'), join(out, 'pytorch_reference.py'));

copyWebgpuPackage(webgpu, out);

// The same-learning section's batches: 800 samples of 512 tokens (200 steps of 4), drawn here.
const sampleNote = await writeSampleTokens(out, { root, seqLen: 512, samples: 800 });
// The serve section's server detokenizes with the tokenizer of the model family.
const tokenizerNote = copyTokenizer(out);

// Dawn dlopens libvulkan.so.1; GPU containers often carry the driver's ICD but no loader.
const notes = [sampleNote, tokenizerNote].filter(Boolean);
const loader = '/usr/lib/x86_64-linux-gnu/libvulkan.so.1';
if (existsSync(loader)) copyFileSync(realpathSync(loader), join(out, 'lib/libvulkan.so.1'));
else notes.push(`no Vulkan loader at ${loader} (apt-get install libvulkan1): the kit will need the target's`);
// NVIDIA's Vulkan driver (libGLX_nvidia.so.0) needs glvnd (libGLdispatch and the GLX/EGL dispatchers), which a
// CUDA-only image may lack; without it the loader finds "no drivers". run.sh puts these copies on the path only
// when the target has no libGLdispatch.so.0.
mkdirSync(join(out, 'glvnd'), { recursive: true });
for (const lib of [
  'libGLdispatch.so.0',
  'libGLX.so.0',
  'libEGL.so.1',
  'libOpenGL.so.0',
  'libGL.so.1',
  'libGLESv2.so.2',
]) {
  const path = `/usr/lib/x86_64-linux-gnu/${lib}`;
  if (existsSync(path)) copyFileSync(realpathSync(path), join(out, 'glvnd', lib));
  else
    notes.push(
      `no ${path} (apt-get install libglvnd0 libglx0 libegl1 libopengl0 libgl1): no NVIDIA driver without glvnd`,
    );
}
// dawn.node needs GLIBCXX_3.4.30 (GCC 12); run.sh uses this copy only when the target's libstdc++ is older.
const libstdcxx = '/usr/lib/x86_64-linux-gnu/libstdc++.so.6';
if (existsSync(libstdcxx)) copyFileSync(realpathSync(libstdcxx), join(out, 'compat/libstdc++.so.6'));

copyFileSync(join(here, 'run.sh'), join(out, 'run.sh'));
chmodSync(join(out, 'run.sh'), 0o755);
copyFileSync(join(here, 'README.md'), join(out, 'README.md'));

const commit = gitCommit(root);
writeFileSync(
  join(out, 'BUILD.json'),
  `${JSON.stringify({ kit: 'mptjs-gpu-kit', commit, built_at: new Date().toISOString(), notes }, null, 2)}\n`,
);
for (const n of notes) console.warn(`build: ${n}`);
console.log(`build: kit in ${out} (run: ${join(out, 'run.sh')} --node /path/to/node)`);
