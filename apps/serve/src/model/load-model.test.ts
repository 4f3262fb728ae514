import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
// The hub client's own test server: real HTTP on 127.0.0.1 in the hub's URL layout.
import { type HubServer, startHubServer } from '@mptjs/test-fixtures';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixture, runCliProcess } from '../testing/fixture.js';

const fx = fixture();
const SHA = '0123456789abcdef0123456789abcdef01234567';

describe.skipIf(!fx)('models by hub id', () => {
  const work = mkdtempSync(join(tmpdir(), 'mptjs-hub-'));
  let hub: HubServer;

  beforeAll(async () => {
    // A repo holding the fixture weights and the GPT-NeoX tokenizer (links, not copies).
    const repo = join(work, 'repo');
    mkdirSync(repo);
    for (const f of ['config.json', 'pytorch_model.bin']) symlinkSync(join(fx!.dir, f), join(repo, f));
    symlinkSync(fx!.tokenizer, join(repo, 'tokenizer.json'));
    hub = await startHubServer({ 'test-org/mpt-tiny': { dir: repo, sha: SHA } });
  });
  afterAll(async () => {
    await hub?.close();
    rmSync(work, { recursive: true, force: true });
  });

  it('`generate org/name` downloads into the HF cache and uses the repo tokenizer', async () => {
    const { prompt, continuation } = fx!.expected.greedy;
    const env = { HF_ENDPOINT: hub.url, HF_HUB_CACHE: join(work, 'cache'), HF_HUB_OFFLINE: '0' };
    const r = await runCliProcess(
      [
        'generate',
        'test-org/mpt-tiny',
        '--prompt-ids',
        prompt.join(','),
        '--max-new-tokens',
        '4',
        '--json',
        '--backend',
        'wasm',
      ],
      env,
    );
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { ids: number[]; text?: string };
    expect(out.ids).toEqual(continuation.slice(0, 4));
    expect(typeof out.text).toBe('string');
    expect(hub.requests.some((q) => q.path.endsWith('/tokenizer.json'))).toBe(true);
  });

  it('fails with one line for a repo the hub does not have', async () => {
    const env = { HF_ENDPOINT: hub.url, HF_HUB_CACHE: join(work, 'cache') };
    const r = await runCliProcess(
      ['generate', 'test-org/missing', '--prompt-ids', '1', '--backend', 'wasm'],
      env,
    );
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n').at(-1)).toMatch(/^mptjs-serve: .*test-org\/missing/);
  });
});
