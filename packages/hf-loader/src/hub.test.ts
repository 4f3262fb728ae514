import { lstatSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import {
  FIXTURES_DIR,
  type HubServer,
  sharedFile,
  startHubServer,
  TINY_MOSAIC_DIR,
} from '@mptjs/test-fixtures';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCheckpoint } from './checkpoint.js';
import { HubError } from './errors.js';
import { defaultModelFiles, parseModelSpec, resolveModel } from './hub.js';
import { tempDir } from './testing/checkpoint-files.js';

const SHA = 'a'.repeat(39) + 'b';
const PRIVATE_SHA = 'c'.repeat(40);
const sharedConfig = sharedFile(`${TINY_MOSAIC_DIR}/config.json`);
const sharedDir = sharedConfig ? join(sharedConfig, '..') : undefined;
const shardedDir = join(FIXTURES_DIR, 'mpt-sharded');

let hub: HubServer;
beforeAll(async () => {
  hub = await startHubServer({
    'test-org/mpt-sharded': { dir: shardedDir, sha: SHA },
    'test-org/private': { dir: shardedDir, sha: PRIVATE_SHA, token: 'secret-token' },
    ...(sharedDir ? { 'test-org/mpt-tiny-mosaic': { dir: sharedDir, sha: SHA } } : {}),
  });
});
afterAll(() => hub.close());

const quiet = { progress: false as const };

describe('resolveModel', () => {
  it('downloads into the hub cache layout: blobs, refs/main, snapshot symlinks', async () => {
    const cacheDir = tempDir();
    const snap = await resolveModel('test-org/mpt-sharded', { ...quiet, endpoint: hub.url, cacheDir });
    const repoDir = join(cacheDir, 'models--test-org--mpt-sharded');
    expect(snap).toBe(join(repoDir, 'snapshots', SHA));
    expect(readFileSync(join(repoDir, 'refs', 'main'), 'utf8')).toBe(SHA);
    const files = readdirSync(snap).sort();
    expect(files).toEqual([
      'config.json',
      'expected.json',
      'model-00001-of-00003.safetensors',
      'model-00002-of-00003.safetensors',
      'model-00003-of-00003.safetensors',
      'model.safetensors.index.json',
    ]);
    for (const f of files) {
      expect(lstatSync(join(snap, f)).isSymbolicLink()).toBe(true);
      expect(readlinkSync(join(snap, f))).toMatch(/^\.\.\/\.\.\/blobs\/[0-9a-f]{40,64}$/);
      expect(readFileSync(join(snap, f)).equals(readFileSync(join(shardedDir, f)))).toBe(true);
    }
    expect(readdirSync(join(repoDir, 'blobs')).some((b) => b.endsWith('.incomplete'))).toBe(false);
    const ckpt = await loadCheckpoint(snap);
    expect(ckpt.source.files).toHaveLength(3);
  });

  it('honors HF_ENDPOINT and HF_HOME, then serves a cache hit offline with no request', async () => {
    const home = tempDir();
    const saved = { ...process.env };
    try {
      process.env['HF_ENDPOINT'] = hub.url;
      process.env['HF_HOME'] = home;
      delete process.env['HF_HUB_CACHE'];
      const snap = await resolveModel('test-org/mpt-sharded@main', quiet);
      expect(snap).toBe(join(home, 'hub', 'models--test-org--mpt-sharded', 'snapshots', SHA));
      const before = hub.requests.length;
      process.env['HF_HUB_OFFLINE'] = '1';
      process.env['HF_ENDPOINT'] = 'http://127.0.0.1:9'; // nothing listens there
      expect(await resolveModel('test-org/mpt-sharded', quiet)).toBe(snap);
      expect(await resolveModel(`test-org/mpt-sharded@${SHA}`, quiet)).toBe(snap);
      expect(hub.requests.length).toBe(before);
      await expect(resolveModel('test-org/other', quiet)).rejects.toThrow(
        `HF_HUB_OFFLINE is set and test-org/other@main is not in the cache (${join(home, 'hub', 'models--test-org--other')})`,
      );
      await expect(resolveModel('test-org/mpt-sharded@v2', quiet)).rejects.toThrow('not in the cache');
    } finally {
      process.env = saved;
    }
  });

  it.skipIf(!sharedDir)(
    'resumes an interrupted download of the shared pytorch_model.bin with an HTTP Range request',
    async () => {
      const cacheDir = tempDir();
      const opts = { ...quiet, endpoint: hub.url, cacheDir };
      hub.cutNextDownloadAfter(4_000_000);
      await expect(resolveModel('test-org/mpt-tiny-mosaic', opts)).rejects.toThrow(
        /download of pytorch_model\.bin interrupted at \d+ of 13311847 bytes/,
      );
      const blobs = join(cacheDir, 'models--test-org--mpt-tiny-mosaic', 'blobs');
      const partial = readdirSync(blobs).find((b) => b.endsWith('.incomplete'))!;
      const have = statSync(join(blobs, partial)).size;
      expect(have).toBeGreaterThan(0);
      expect(have).toBeLessThan(13311847);
      const before = hub.requests.length;
      const snap = await resolveModel('test-org/mpt-tiny-mosaic', opts);
      const ranged = hub.requests.slice(before).filter((r) => r.range);
      expect(ranged).toEqual([expect.objectContaining({ method: 'GET', range: `bytes=${have}-` })]);
      expect(
        readFileSync(join(snap, 'pytorch_model.bin')).equals(
          readFileSync(join(sharedDir!, 'pytorch_model.bin')),
        ),
      ).toBe(true);
      expect(readdirSync(blobs).some((b) => b.endsWith('.incomplete'))).toBe(false);
      expect((await loadCheckpoint(snap)).source.format).toBe('pytorch_bin');
    },
  );

  it('answers 401 without a token with a hint, and downloads with HF_TOKEN', async () => {
    const cacheDir = tempDir();
    const saved = process.env['HF_TOKEN'];
    delete process.env['HF_TOKEN'];
    try {
      const err = resolveModel('test-org/private', { ...quiet, endpoint: hub.url, cacheDir });
      await expect(err).rejects.toThrow(HubError);
      await expect(
        resolveModel('test-org/private', { ...quiet, endpoint: hub.url, cacheDir }),
      ).rejects.toThrow(
        'HTTP 401 (authentication required: set HF_TOKEN to a token with access): Invalid credentials',
      );
      process.env['HF_TOKEN'] = 'secret-token';
      const snap = await resolveModel('test-org/private', { ...quiet, endpoint: hub.url, cacheDir });
      expect(snap.endsWith(PRIVATE_SHA)).toBe(true);
      const authed = hub.requests.filter((r) => r.path.includes('test-org/private'));
      expect(authed.at(-1)!.authorization).toBe('Bearer secret-token');
    } finally {
      if (saved === undefined) delete process.env['HF_TOKEN'];
      else process.env['HF_TOKEN'] = saved;
    }
  });

  it('says clearly that a repository or revision does not exist', async () => {
    const opts = { ...quiet, endpoint: hub.url, cacheDir: tempDir() };
    await expect(resolveModel('test-org/nope', opts)).rejects.toThrow(
      `model test-org/nope@main not found at ${hub.url}: no such repository or revision (HTTP 404)`,
    );
    await expect(resolveModel('test-org/mpt-sharded@v9', opts)).rejects.toThrow(
      'test-org/mpt-sharded@v9 not found',
    );
  });

  it('draws a progress line per file on a non-TTY stream', async () => {
    const out = new PassThrough();
    let text = '';
    out.on('data', (d) => {
      text += d;
    });
    await resolveModel('test-org/mpt-sharded', {
      endpoint: hub.url,
      cacheDir: tempDir(),
      progress: out as unknown as NodeJS.WriteStream,
    });
    expect(text).toMatch(/^model-00001-of-00003\.safetensors \[#{24}\] 100% 0\.\d MB\/0\.\d MB/m);
    expect(text).not.toContain('\r');
  });

  it('returns a local directory as is and rejects malformed ids', async () => {
    expect(await resolveModel(shardedDir)).toBe(shardedDir);
    expect(() => parseModelSpec('not a repo')).toThrow('is neither a local directory nor a hub model id');
    expect(() => parseModelSpec('org/name@')).toThrow('empty or invalid revision');
    expect(parseModelSpec('mosaicml/mpt-1b-redpajama-200b@v1')).toEqual({
      repo: 'mosaicml/mpt-1b-redpajama-200b',
      revision: 'v1',
    });
  });

  it('picks one weight layout: safetensors over pytorch_model.bin', () => {
    const siblings = [
      'config.json',
      'pytorch_model.bin',
      'model.safetensors',
      'README.md',
      'tokenizer.json',
      'sub/x.json',
    ];
    expect(defaultModelFiles(siblings)).toEqual(['config.json', 'tokenizer.json', 'model.safetensors']);
    expect(
      defaultModelFiles(['config.json', 'pytorch_model-00001-of-00002.bin', 'pytorch_model.bin.index.json']),
    ).toEqual(['config.json', 'pytorch_model.bin.index.json', 'pytorch_model-00001-of-00002.bin']);
  });
});

describe('resolveModel in the face of trouble', () => {
  it('downloads each blob once when two calls race for it', async () => {
    const cacheDir = tempDir();
    const before = hub.requests.length;
    const opts = { ...quiet, endpoint: hub.url, cacheDir };
    const [a, b] = await Promise.all([
      resolveModel('test-org/mpt-sharded', opts),
      resolveModel('test-org/mpt-sharded', opts),
    ]);
    expect(a).toBe(b);
    const gets = hub.requests.slice(before).filter((r) => r.method === 'GET' && r.path.includes('/resolve/'));
    expect(gets.filter((r) => r.path.endsWith('model-00001-of-00003.safetensors'))).toHaveLength(1);
    const blobs = readdirSync(join(cacheDir, 'models--test-org--mpt-sharded', 'blobs'));
    expect(blobs.filter((f) => f.endsWith('.lock') || f.endsWith('.incomplete'))).toEqual([]);
  });

  it('takes over the lock of a download whose process died', async () => {
    const cacheDir = tempDir();
    const opts = { ...quiet, endpoint: hub.url, cacheDir };
    const snap = await resolveModel('test-org/mpt-sharded', opts);
    const blob = readlinkSync(join(snap, 'config.json')).split('/').at(-1)!;
    const blobs = join(cacheDir, 'models--test-org--mpt-sharded', 'blobs');
    rmSync(join(blobs, blob));
    rmSync(join(snap, 'config.json'));
    // A pid far above any live one on this host.
    writeFileSync(join(blobs, `${blob}.lock`), `${2 ** 22 + 12345}\n${hostname()}\n`);
    await resolveModel('test-org/mpt-sharded', opts);
    expect(
      readFileSync(join(snap, 'config.json')).equals(readFileSync(join(shardedDir, 'config.json'))),
    ).toBe(true);
  });

  it('falls back to the cached snapshot, with a warning, when the hub cannot be reached', async () => {
    const cacheDir = tempDir();
    const snap = await resolveModel('test-org/mpt-sharded', { ...quiet, endpoint: hub.url, cacheDir });
    const warnings: string[] = [];
    const warn = console.warn;
    console.warn = (m: string) => warnings.push(m);
    try {
      expect(
        await resolveModel('test-org/mpt-sharded', { ...quiet, endpoint: 'http://127.0.0.1:9', cacheDir }),
      ).toBe(snap);
    } finally {
      console.warn = warn;
    }
    expect(warnings[0]).toMatch(/hub unreachable .*; using the cached test-org\/mpt-sharded@main/);
    await expect(
      resolveModel('test-org/elsewhere', { ...quiet, endpoint: 'http://127.0.0.1:9', cacheDir }),
    ).rejects.toThrow('cannot reach http://127.0.0.1:9 for test-org/elsewhere');
  });
});
