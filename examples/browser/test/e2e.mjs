// End-to-end test of the browser example in Debian's Chromium (playwright-core, no downloaded browsers):
// serves the built page (vite build -> dist/), and for each case checks that the page's greedy continuation equals
// the ids `mptjs-serve generate <model> --prompt-ids ... --temperature 0 --json` prints in Node, and that the
// live tokenization shown under the prompt equals @mptjs/tokenizer's in Node.
//   npm test   (prepares assets, builds, runs this)      CHROMIUM=/path/to/chromium to override the browser
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { extname, join, normalize, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = fileURLToPath(new URL('..', import.meta.url));
const repo = resolve(here, '../..');
const dist = join(here, 'dist');
const serveCli = join(repo, 'apps/serve/dist/cli.js');
assert.ok(existsSync(join(dist, 'index.html')), 'build the page first (npm run build)');
assert.ok(existsSync(serveCli), 'build mptjs-serve first: pnpm --filter @mptjs/serve build');

const types = {
  '.html': 'text/html',
  '.js': 'text/javascript',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
};
const server = createServer((req, res) => {
  const path = normalize(decodeURIComponent(new URL(req.url, 'http://x').pathname)).replace(
    /^(\.\.[/\\])+/,
    '',
  );
  let file = join(dist, path);
  if (existsSync(file) && statSync(file).isDirectory()) file = join(file, 'index.html');
  if (!file.startsWith(dist) || !existsSync(file)) return res.writeHead(404).end();
  res
    .writeHead(200, { 'content-type': types[extname(file)] ?? 'application/octet-stream' })
    .end(readFileSync(file));
});
await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
const origin = `http://127.0.0.1:${server.address().port}`;

/** What mptjs-serve prints for the same model and prompt (greedy). */
function nodeGreedy(modelDir, promptIds, maxNew) {
  const out = execFileSync(
    process.execPath,
    [
      serveCli,
      'generate',
      modelDir,
      '--prompt-ids',
      promptIds.join(','),
      '--temperature',
      '0',
      '--max-new-tokens',
      String(maxNew),
      '--json',
      '--backend',
      'wasm',
    ],
    { encoding: 'utf8', env: { ...process.env, HF_HUB_OFFLINE: '1' }, stdio: ['ignore', 'pipe', 'ignore'] },
  );
  return JSON.parse(out.trim().split('\n').at(-1)).ids;
}

// chromium.launch() gives the browser a fresh temporary profile (--user-data-dir) of its own.
const launch = (webgpu) =>
  chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      ...(webgpu
        ? [
            '--enable-unsafe-webgpu',
            '--enable-features=Vulkan',
            '--use-angle=swiftshader',
            '--use-webgpu-adapter=swiftshader',
          ]
        : ['--disable-features=WebGPU']),
    ],
    headless: true,
  });
const browser = await launch(true);
const noGpuBrowser = await launch(false);
const failures = [];
try {
  const { Tokenizer } = await import(join(repo, 'packages/tokenizer/dist/index.js'));
  const tok = Tokenizer.fromJSON(readFileSync(join(dist, 'tokenizer.json'), 'utf8'));
  const cases = [
    // On webgpu the page decodes through the recorded step by default; engine=tfjs keeps the tfjs path tested.
    {
      model: 'mpt-f32',
      backend: 'webgpu',
      prompt: [5, 17, 301, 42, 9],
      maxNew: 16,
      expectEngine: 'recorded',
    },
    {
      model: 'mpt-f32',
      backend: 'webgpu',
      engine: 'tfjs',
      prompt: [5, 17, 301, 42, 9],
      maxNew: 16,
      expectEngine: 'tfjs',
    },
    { model: 'mpt-f32', backend: 'wasm', prompt: [5, 17, 301, 42, 9], maxNew: 16, expectEngine: 'tfjs' },
    {
      model: 'mpt-tiny-mosaic',
      backend: 'webgpu',
      text: 'The capital of France is',
      maxNew: 12,
      expectEngine: 'recorded',
    },
    // A browser without WebGPU: the page asks for webgpu and must fall back to wasm.
    {
      model: 'mpt-f32',
      backend: 'webgpu',
      prompt: [5, 17, 301, 42, 9],
      maxNew: 16,
      noGpu: true,
      expectBackend: 'wasm',
      expectEngine: 'tfjs',
    },
  ];
  for (const c of cases) {
    const name = `${c.model} on ${c.backend}${c.engine ? ` (engine ${c.engine})` : ''}${c.noGpu ? ' (browser without WebGPU)' : ''}`;
    const page = await (c.noGpu ? noGpuBrowser : browser).newPage();
    const logs = [];
    page.on('console', (m) => logs.push(m.text()));
    page.on('pageerror', (e) => logs.push(`pageerror: ${e.message}`));
    const q = new URLSearchParams({
      model: `models/${c.model}/`,
      backend: c.backend,
      max_new: String(c.maxNew),
    });
    if (c.engine) q.set('engine', c.engine);
    if (c.prompt) q.set('prompt_ids', c.prompt.join(','));
    if (!c.text) q.set('autorun', '1');
    const t0 = Date.now();
    try {
      await page.goto(`${origin}/?${q}`);
      if (c.text) {
        // Live tokenization: type the prompt and compare the ids the page shows with Node's.
        await page.waitForSelector('#generate:not([disabled])', { timeout: 120_000 });
        await page.fill('#prompt', '');
        await page.type('#prompt', c.text, { delay: 5 });
        const shown = JSON.parse(await page.getAttribute('#ids', 'data-ids'));
        assert.deepEqual(shown, tok.encode(c.text), `${name}: live tokenization`);
        c.prompt = shown;
        await page.click('#generate');
      }
      await page.waitForFunction(() => ['done', 'error'].includes(document.body.dataset.state), null, {
        timeout: 180_000,
      });
      const state = await page.getAttribute('body', 'data-state');
      const status = await page.textContent('#status');
      assert.equal(state, 'done', `${name}: page ended with "${status}"`);
      const ids = JSON.parse(await page.getAttribute('#out-ids', 'data-ids'));
      const backend = await page.getAttribute('body', 'data-backend');
      if (c.expectBackend) assert.equal(backend, c.expectBackend, `${name}: backend`);
      const engine = await page.getAttribute('body', 'data-engine');
      assert.equal(engine, c.expectEngine, `${name}: decode engine`);
      const expected = nodeGreedy(join(dist, 'models', c.model), c.prompt, c.maxNew);
      const text = await page.textContent('#output');
      assert.deepEqual(ids, expected, `${name}: browser greedy ids vs mptjs-serve`);
      console.log(
        `ok   ${name}: ran on ${backend} (${engine} decode); ${ids.length} ids equal mptjs-serve's (${((Date.now() - t0) / 1000).toFixed(1)}s)` +
          `${c.text ? `; live ids [${c.prompt}] equal Node's; text ${JSON.stringify(text)}` : ''}`,
      );
      const adapterLine = logs.find((l) => l.startsWith('[mptjs] backend='));
      if (adapterLine) console.log(`     ${adapterLine}`);
    } catch (err) {
      failures.push(`${name}: ${err.message}`);
      console.log(
        `FAIL ${name}: ${err.message}\n     page log:\n       ${logs.slice(-15).join('\n       ')}`,
      );
    } finally {
      await page.close();
    }
  }
} finally {
  await browser.close();
  await noGpuBrowser.close();
  server.close();
}
console.log(failures.length ? `${failures.length} failed` : 'all passed');
process.exit(failures.length ? 1 : 0);
