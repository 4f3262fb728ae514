// The playground in a real headless Chromium: type a prompt, generate, wait for the streamed text, save a
// screenshot (.test-output/playground.png) and check the text against the non-streamed greedy completion.
// Skipped unless playwright-core (here or in examples/browser) and a Chromium binary are available.
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoPath } from '@mptjs/test-fixtures';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ServeHttpServer } from '../http/server.js';
import { type LoadedModel, loadModel } from '../model/load-model.js';
import { createServeApp } from '../serve-app.js';
import { APP_DIR, fixture } from '../testing/fixture.js';

const CHROMIUM = process.env.MPTJS_CHROMIUM ?? '/usr/bin/chromium';
const OUTPUT_DIR = join(APP_DIR, '.test-output');
const PROMPT = 'The quick brown fox';
const MAX_TOKENS = 12;

interface Locator {
  fill(value: string): Promise<void>;
  click(): Promise<void>;
  textContent(): Promise<string | null>;
}
interface Page {
  goto(url: string): Promise<unknown>;
  locator(selector: string): Locator;
  selectOption(selector: string, value: string): Promise<unknown>;
  waitForFunction(fn: () => boolean, arg?: unknown, options?: { timeout: number }): Promise<unknown>;
  screenshot(options: { path: string; fullPage: boolean }): Promise<unknown>;
  on(event: 'pageerror', listener: (err: Error) => void): void;
}
interface Context {
  newPage(): Promise<Page>;
  close(): Promise<void>;
}
interface Chromium {
  launchPersistentContext(dir: string, options: Record<string, unknown>): Promise<Context>;
}

/** playwright-core from this package or from examples/browser, where the repository installs it. */
function findPlaywright(): { chromium: Chromium } | undefined {
  for (const from of [join(APP_DIR, 'package.json'), repoPath('examples/browser/package.json')]) {
    try {
      return createRequire(from)('playwright-core') as { chromium: Chromium };
    } catch {
      // not installed there
    }
  }
  return undefined;
}

const fx = fixture();
const playwright = existsSync(CHROMIUM) ? findPlaywright() : undefined;
const built = existsSync(join(APP_DIR, 'dist/playground/playground.js'));

// Under CI the browser, playwright-core and the built page are installed, so their absence is a failure.
const ci = process.env['CI'] === 'true';
describe.skipIf(!fx || (!ci && (!playwright || !built)))('playground in headless Chromium', () => {
  let model: LoadedModel;
  let app: ServeHttpServer;
  let base: string;
  let context: Context;
  let profile: string;

  beforeAll(async () => {
    model = await loadModel(fx!.dir, { backend: 'wasm', tokenizer: fx!.tokenizer, log: () => {} });
    app = createServeApp({
      engine: model.engine,
      tokenizer: model.tokenizer,
      modelId: 'mpt-tiny',
      maxBatch: 4,
      playgroundDir: join(APP_DIR, 'dist/playground'),
    });
    const address = await app.listen(0, '127.0.0.1');
    base = `http://127.0.0.1:${address.port}`;
    profile = mkdtempSync(join(tmpdir(), 'mptjs-playground-'));
    context = await playwright!.chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
      viewport: { width: 1000, height: 700 },
    });
  });
  afterAll(async () => {
    await context?.close();
    if (profile) rmSync(profile, { recursive: true, force: true });
    await app?.shutdown(1000);
    model?.engine.dispose();
  });

  it('streams the greedy completion into the page', async () => {
    const res = await fetch(`${base}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: PROMPT, max_tokens: MAX_TOKENS, temperature: 0 }),
    });
    expect(res.status).toBe(200);
    const expected = ((await res.json()) as { choices: { text: string }[] }).choices[0]?.text;
    expect(expected?.length).toBeGreaterThan(0);

    const page = await context.newPage();
    // Functions (not strings) for waitForFunction: the playground's CSP forbids eval, and is left on.
    const errors: Error[] = [];
    page.on('pageerror', (err) => errors.push(err));
    await page.goto(`${base}/`);
    await page.waitForFunction(
      () => document.getElementById('model')?.textContent === 'model: mpt-tiny',
      undefined,
      { timeout: 10_000 },
    );
    await page.selectOption('#mode', 'completion');
    await page.locator('#prompt').fill(PROMPT);
    await page.locator('#max_tokens').fill(String(MAX_TOKENS));
    await page.locator('#temperature').fill('0');
    await page.locator('#run').click();
    // Done when the run button is enabled again and the stats line reports the tokens.
    await page.waitForFunction(
      () =>
        !(document.getElementById('run') as HTMLButtonElement).disabled &&
        /tokens/.test(document.getElementById('stats')?.textContent ?? ''),
      undefined,
      { timeout: 20_000 },
    );
    mkdirSync(OUTPUT_DIR, { recursive: true });
    await page.screenshot({ path: join(OUTPUT_DIR, 'playground.png'), fullPage: true });

    const shown = (await page.locator('#output').textContent()) ?? '';
    const prompt = (await page.locator('#output .prompt').textContent()) ?? '';
    expect(prompt).toBe(PROMPT);
    expect(shown.slice(prompt.length)).toBe(expected);
    expect(await page.locator('#stats').textContent()).toMatch(new RegExp(`^${MAX_TOKENS} tokens`));
    expect(errors).toEqual([]);
    expect(existsSync(join(OUTPUT_DIR, 'playground.png'))).toBe(true);
  });
});
