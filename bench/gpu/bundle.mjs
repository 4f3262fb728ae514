// What the GPU kit's and the torchrun check's builds share: esbuild (it comes with tsup), the options that make
// a self-contained Node ESM bundle of the packages' built dist, Dawn's addon laid out as a `webgpu` package
// beside the bundle, and the commit a build is labelled with.
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

/** esbuild, resolved from tsup rather than added as a dependency. */
export function loadEsbuild(root) {
  return createRequire(createRequire(join(root, 'package.json')).resolve('tsup'))('esbuild');
}

/** esbuild options for one ESM file for Node 20 that loads Dawn and the Rust tokenizer binding at run time. */
export const nodeBundle = {
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  // Dawn loads from node_modules/webgpu beside the bundle; the Rust tokenizer binding is optional (text is
  // tokenized with @mptjs/tokenizer).
  external: ['webgpu', 'tokenizers'],
  // tfjs marks its backend entry points side-effect free, which would drop their registration imports.
  ignoreAnnotations: true,
  // Bundled CommonJS (tfjs-backend-wasm's loader) expects these in scope.
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

/** The installed `webgpu` package (its index.js loads dist/linux-x64/dawn.node) and Dawn's addon in it. */
export function dawnAddon(root, fail) {
  const webgpuDir = dirname(createRequire(join(root, 'packages/kernels/package.json')).resolve('webgpu'));
  const dawn = join(webgpuDir, 'dist', 'linux-x64', 'dawn.node');
  if (!existsSync(dawn)) fail(`Dawn's linux-x64 addon is missing at ${dawn}`);
  return { webgpuDir, dawn };
}

/** Lays the `webgpu` package out under `out/node_modules/webgpu`, where the bundle's import finds it. */
export function copyWebgpuPackage({ webgpuDir, dawn }, out) {
  const dir = join(out, 'node_modules/webgpu');
  mkdirSync(join(dir, 'dist/linux-x64'), { recursive: true });
  copyFileSync(join(webgpuDir, 'index.js'), join(dir, 'index.js'));
  copyFileSync(join(webgpuDir, 'package.json'), join(dir, 'package.json'));
  copyFileSync(dawn, join(dir, 'dist/linux-x64/dawn.node'));
}

/** The short commit of the checkout, or `unknown` outside git (the build still works, only unlabelled). */
export function gitCommit(root) {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}
