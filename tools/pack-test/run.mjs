#!/usr/bin/env node
// Pack test: every publishable package as a user gets it from npm.
//
//   node tools/pack-test/run.mjs [--build] [--keep] [--verbose] [--only tokenizer,hf-loader]
//   node tools/pack-test/run.mjs --local     # only the README doc tests, against the workspace's dist/
//
// 1. checks each packages/*/package.json (exports with types, files, sideEffects, license, a README with at
//    least one doc test, no runtime dependency on apps/ or on a devDependency);
// 2. `pnpm pack`s each package into a temp dir (workspace:* becomes the real version);
// 3. creates an empty project there and `npm install`s all the tarballs together;
// 4. type-checks a TypeScript file importing every package's public API against the installed tarballs;
// 5. runs the doc tests of each packed README (```js doctest blocks, see doctest.mjs and README.md here) with
//    plain `node` in that project, checking exit code and printed output.
//
// Shared files (the GPT-NeoX-20B tokenizer) come from MPTJS_SHARED_DIR (default ../shared from the repo root).
// --build runs `pnpm --filter <pkg> build` first (otherwise the dist/ folders already built are packed).
// Exit code 0 only if every check passed.
import { execFileSync, spawnSync } from 'node:child_process';
import {
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compareOutput, extractDoctests } from './doctest.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../..');
const args = process.argv.slice(2);
const flag = (name) => args.includes(name);
const onlyIdx = args.indexOf('--only');
const only = onlyIdx >= 0 ? new Set(args[onlyIdx + 1].split(',')) : null;
const sharedDir = resolve(root, process.env.MPTJS_SHARED_DIR ?? '../shared');
const local = flag('--local');

const failures = [];
const fail = (what, why) => {
  failures.push(`${what}: ${why}`);
  console.log(`  FAIL ${what}: ${why}`);
};
const warnings = [];
const warn = (what, why) => {
  if (warnings.includes(`${what}: ${why}`)) return;
  warnings.push(`${what}: ${why}`);
  console.log(`  WARN ${what}: ${why}`);
};
const pass = (what) => console.log(`  ok   ${what}`);
const t0 = Date.now();
const elapsed = () => `${((Date.now() - t0) / 1000).toFixed(1)}s`;

// ---- 1. manifests -------------------------------------------------------------------------------------------
// Only the public packages/* are packed: apps and the private tools/test-fixtures (tests' fixtures) never are.
const packages = readdirSync(join(root, 'packages'))
  .map((d) => ({ dir: join(root, 'packages', d), short: d }))
  .filter((p) => existsSync(join(p.dir, 'package.json')))
  .map((p) => ({ ...p, manifest: JSON.parse(readFileSync(join(p.dir, 'package.json'), 'utf8')) }))
  .filter((p) => !p.manifest.private && (!only || only.has(p.short)));
const appNames = new Set(
  readdirSync(join(root, 'apps')).flatMap((d) => {
    const f = join(root, 'apps', d, 'package.json');
    return existsSync(f) ? [JSON.parse(readFileSync(f, 'utf8')).name] : [];
  }),
);

console.log(`[pack-test] ${packages.length} packages; shared dir ${sharedDir}`);
console.log('[pack-test] manifests');
for (const { short, dir, manifest: m } of packages) {
  const what = `${m.name} package.json`;
  const problems = [];
  const dot = m.exports?.['.'];
  if (!dot || typeof dot !== 'object') problems.push('no exports["."] object');
  else {
    if (!dot.types) problems.push('exports["."] has no "types"');
    if (!dot.import && !dot.default) problems.push('exports["."] has no "import"/"default"');
    if (dot.types && Object.keys(dot)[0] !== 'types')
      problems.push('"types" must be the first export condition');
  }
  if (!Array.isArray(m.files) || !m.files.includes('dist')) problems.push('"files" does not include dist');
  if (typeof m.sideEffects !== 'boolean' && !Array.isArray(m.sideEffects)) problems.push('no "sideEffects"');
  if (!m.license) problems.push('no "license"');
  if (!m.version) problems.push('no "version"');
  const readme = join(dir, 'README.md');
  if (!existsSync(readme)) problems.push('no README.md');
  else {
    const doc = readDoctests(readFileSync(readme, 'utf8'));
    if (doc.error) problems.push(`README ${doc.error}`);
    else if (!doc.examples.length)
      problems.push('README has no ```js doctest example (see tools/pack-test/README.md)');
    else if (!doc.examples.some((e) => e.code.includes(`from '${m.name}'`)))
      problems.push(`README has no doctest example importing ${m.name}`);
  }
  const runtime = { ...m.dependencies, ...m.peerDependencies, ...m.optionalDependencies };
  for (const dep of Object.keys(runtime)) {
    if (appNames.has(dep)) problems.push(`runtime dependency on app ${dep}`);
    // An optional peer that the package's own tests use is a devDependency as well: that is the usual pattern.
    const optionalPeer = m.peerDependenciesMeta?.[dep]?.optional && !m.dependencies?.[dep];
    if (m.devDependencies?.[dep] && !optionalPeer)
      problems.push(`${dep} is both a dependency and a devDependency`);
  }
  // Bare imports in the built code must be declared runtime dependencies (or node: builtins).
  const distDir = join(dir, 'dist');
  if (!existsSync(join(distDir, 'index.js')))
    problems.push('dist/index.js missing (build first, or pass --build)');
  else {
    const declared = new Set([...Object.keys(runtime), m.name]);
    for (const f of readdirSync(distDir).filter((f) => f.endsWith('.js'))) {
      const src = readFileSync(join(distDir, f), 'utf8');
      for (const [, dynamic, spec] of src.matchAll(
        /(?:\bfrom\s*|\b(import)\s*\(\s*|\bimport\s+)['"]([^'".][^'"]*)['"]/g,
      )) {
        if (spec.startsWith('node:')) continue;
        const pkg = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0];
        if (declared.has(pkg) || isBuiltin(pkg)) continue;
        // A dynamic import of an undeclared package is an optional feature that fails at run time only when
        // used: a warning (it should be an optional peerDependency). A static one breaks the import: an error.
        if (dynamic)
          warn(
            what,
            `dist/${f} dynamically imports "${spec}", which is not a dependency (declare it as an optional peer)`,
          );
        else problems.push(`dist/${f} imports "${spec}", not a runtime dependency`);
      }
    }
  }
  if (problems.length) for (const p of [...new Set(problems)]) fail(what, p);
  else pass(`${what} (${short})`);
}

function isBuiltin(name) {
  return [
    'fs',
    'path',
    'os',
    'url',
    'worker_threads',
    'child_process',
    'crypto',
    'net',
    'util',
    'events',
    'stream',
    'zlib',
    'module',
    'perf_hooks',
    'readline',
    'http',
    'https',
    'assert',
  ].includes(name);
}

// ---- 2. build + pack ----------------------------------------------------------------------------------------
if (flag('--build') && !local) {
  for (const { manifest } of packages) {
    console.log(`[pack-test] building ${manifest.name} (${elapsed()})`);
    execFileSync('pnpm', ['--filter', manifest.name, 'build'], { cwd: root, stdio: 'inherit' });
  }
}
const work = mkdtempSync(join(tmpdir(), 'mptjs-pack-'));
const proj = join(work, 'project');
mkdirSync(proj);
writeFileSync(
  join(proj, 'package.json'),
  JSON.stringify({ name: 'mptjs-pack-test', private: true, type: 'module' }, null, 2),
);
// What the doc tests read: the READMEs as packed (what npm shows), or the workspace's with --local.
const readmes = new Map();
if (local) linkWorkspace();
else packInstallAndTypeCheck();

// ---- 5. doc tests -------------------------------------------------------------------------------------------
console.log(`[pack-test] README doc tests in ${proj} (${elapsed()})`);
// The files the examples name, at the paths the READMEs say: a tokenizer.json, the checkpoint fixtures and
// the sample corpus, all relative to the working directory.
const tokenizerJson = join(sharedDir, 'data', 'gpt-neox-20b-tokenizer.json');
if (existsSync(tokenizerJson)) copyFileSync(tokenizerJson, join(proj, 'tokenizer.json'));
else warn('doc tests', `${tokenizerJson} missing: examples that read tokenizer.json fail`);
for (const fixture of ['mpt-f32', 'mosaic-6heads'])
  cpSync(join(root, 'tools/test-fixtures/fixtures', fixture), join(proj, 'fixtures', fixture), {
    recursive: true,
  });
cpSync(join(root, 'data', 'sample'), join(proj, 'data', 'sample'), { recursive: true });

for (const { short, manifest } of packages) {
  const text = readmes.get(manifest.name);
  if (text === undefined) continue; // its pack failed, already reported
  const doc = readDoctests(text);
  if (doc.error || !doc.examples.length) {
    fail(`${manifest.name} README`, doc.error ?? 'no ```js doctest example');
    continue;
  }
  for (const f of doc.files) writeFileSync(ensure(join(proj, f.name)), f.content);
  for (const [i, example] of doc.examples.entries()) runExample(manifest.name, short, i + 1, example);
}
finish();

function readDoctests(markdown) {
  try {
    return extractDoctests(markdown);
  } catch (e) {
    return { error: e.message, examples: [], files: [] };
  }
}

function runExample(name, short, n, { line, code, expected }) {
  const what = `${name} README example ${n} (README.md:${line})`;
  const file = `readme-${short}-${n}.mjs`;
  writeFileSync(join(proj, file), code);
  const started = Date.now();
  const r = spawnSync(process.execPath, [file], {
    cwd: proj,
    encoding: 'utf8',
    timeout: 180_000,
  });
  const secs = ((Date.now() - started) / 1000).toFixed(1);
  const out = `${r.stdout}${r.stderr}`.trim();
  if (flag('--verbose')) console.log(out.replace(/^/gm, '    | '));
  const tail = () => `\n    ${out.split('\n').slice(-20).join('\n    ')}`;
  if (r.status !== 0) return fail(what, `exit ${r.status ?? r.signal} after ${secs}s:${tail()}`);
  const mismatch = expected === null ? null : compareOutput(expected, r.stdout);
  if (mismatch) return fail(what, `${mismatch} (the output block after the example)${tail()}`);
  pass(`${name} README example ${n} (${secs}s${expected === null ? '' : ', output checked'})`);
}

// The packages as built in the workspace, linked into the project: the doc tests without pack and install.
function linkWorkspace() {
  console.log('[pack-test] --local: the workspace packages (dist/ as built), not tarballs');
  const link = (name) => {
    const target = join(root, 'node_modules', name);
    if (!existsSync(target)) return fail('--local', `${target} missing (pnpm install at the root first)`);
    symlinkSync(target, ensure(join(proj, 'node_modules', name)), 'dir');
  };
  // All of them, not only the --only ones: examples import their package's dependencies too.
  for (const d of readdirSync(join(root, 'node_modules', '@mptjs'))) link(`@mptjs/${d}`);
  link('@tensorflow/tfjs-core');
  for (const { dir, manifest } of packages)
    readmes.set(manifest.name, readFileSync(join(dir, 'README.md'), 'utf8'));
}

function packInstallAndTypeCheck() {
  const tarDir = join(work, 'tarballs');
  mkdirSync(tarDir);
  console.log(`[pack-test] packing into ${tarDir} (${elapsed()})`);
  const tarballs = [];
  for (const { dir, manifest } of packages) {
    const before = new Set(readdirSync(tarDir));
    const r = spawnSync('pnpm', ['pack', '--pack-destination', tarDir], { cwd: dir, encoding: 'utf8' });
    const made = readdirSync(tarDir).filter((f) => !before.has(f));
    if (r.status !== 0 || made.length !== 1) {
      fail(`${manifest.name} pack`, `pnpm pack exited ${r.status}: ${r.stderr.trim().slice(-500)}`);
      continue;
    }
    const tgz = join(tarDir, made[0]);
    const listing = execFileSync('tar', ['-tzf', tgz], { encoding: 'utf8' }).split('\n').filter(Boolean);
    const packedManifest = JSON.parse(
      execFileSync('tar', ['-xzOf', tgz, 'package/package.json'], { encoding: 'utf8' }),
    );
    const problems = [];
    for (const f of [
      'package/package.json',
      'package/README.md',
      'package/dist/index.js',
      'package/dist/index.d.ts',
    ])
      if (!listing.includes(f)) problems.push(`tarball lacks ${f.slice(8)}`);
    const leaked = listing.filter((f) => /\/src\/|\.test\.|\/node_modules\/|\.vitest-report/.test(f));
    if (leaked.length)
      problems.push(`tarball ships ${leaked.slice(0, 3).join(', ')}${leaked.length > 3 ? ', ...' : ''}`);
    for (const [dep, v] of Object.entries({
      ...packedManifest.dependencies,
      ...packedManifest.optionalDependencies,
    }))
      if (String(v).startsWith('workspace:')) problems.push(`packed dependency ${dep}@${v} not rewritten`);
    if (problems.length) for (const p of problems) fail(`${manifest.name} tarball`, p);
    else pass(`${manifest.name} -> ${made[0]} (${listing.length} files)`);
    tarballs.push(tgz);
    readmes.set(
      manifest.name,
      execFileSync('tar', ['-xzOf', tgz, 'package/README.md'], { encoding: 'utf8' }),
    );
  }

  // ---- 3. install -------------------------------------------------------------------------------------------
  console.log(`[pack-test] npm install ${tarballs.length} tarballs in ${proj} (${elapsed()})`);
  // @types/node is what any TypeScript user of these Node-facing packages has; the type check below needs it.
  const install = spawnSync(
    'npm',
    ['install', '--no-audit', '--no-fund', '--loglevel=error', ...tarballs, '@types/node@20'],
    {
      cwd: proj,
      encoding: 'utf8',
      timeout: 600_000,
    },
  );
  if (install.status !== 0) {
    fail(
      'npm install',
      `exited ${install.status}: ${(install.stderr || install.stdout).trim().slice(-2000)}`,
    );
    finish();
  }
  pass(`npm install (${elapsed()})`);

  // ---- 4. types ---------------------------------------------------------------------------------------------
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  if (existsSync(tsc)) {
    const imports = packages.map(
      ({ manifest }, i) => `import * as p${i} from '${manifest.name}';\nvoid p${i};`,
    );
    writeFileSync(join(proj, 'types-check.ts'), `${imports.join('\n')}\n`);
    writeFileSync(
      join(proj, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          module: 'nodenext',
          moduleResolution: 'nodenext',
          target: 'es2022',
          strict: true,
          noEmit: true,
          skipLibCheck: false,
        },
        files: ['types-check.ts'],
      }),
    );
    const r = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: proj, encoding: 'utf8' });
    if (r.status === 0)
      pass('types resolve from the tarballs (tsc, moduleResolution nodenext, strict, skipLibCheck false)');
    else fail('types', (r.stdout + r.stderr).trim().split('\n').slice(0, 15).join('\n    '));
  }
}

function ensure(file) {
  mkdirSync(dirname(file), { recursive: true });
  return file;
}

function finish() {
  if (flag('--keep')) console.log(`[pack-test] kept ${work}`);
  else rmSync(work, { recursive: true, force: true });
  console.log(
    `[pack-test] ${failures.length ? `${failures.length} FAILED` : 'all passed'}, ${warnings.length} warnings, in ${elapsed()}`,
  );
  for (const w of warnings) console.log(`  ~ ${w}`);
  for (const f of failures) console.log(`  - ${f.split('\n')[0]}`);
  process.exit(failures.length ? 1 : 0);
}
