import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot, sharedFile, TOKENIZER_JSON } from '@mptjs/test-fixtures';
import { afterAll, describe, expect, it } from 'vitest';

const cli = join(repoRoot, 'apps/train/dist/cli.js');
const tokenizer = sharedFile(TOKENIZER_JSON);
const sampleYaml = readFileSync(join(repoRoot, 'data/sample/redpajama-sample.yaml'), 'utf8');
const tmp = mkdtempSync(join(tmpdir(), 'train-data-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

if (!existsSync(cli)) console.warn(`[skip] ${cli} not built (pnpm --filter @mptjs/train build)`);

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(args: string[]): Promise<Run> {
  return new Promise((done) => {
    execFile('node', [cli, ...args], { cwd: repoRoot, timeout: 120_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      done({ code, stdout, stderr });
    });
  });
}

/** The bundled sample config with the tokenizer path of this machine. */
function sampleConfig(name: string, edit: (yaml: string) => string = (y) => y): string {
  const path = join(tmp, name);
  writeFileSync(path, edit(sampleYaml.replace(/tokenizer: \.\.\/shared\/\S+/, `tokenizer: ${tokenizer}`)));
  return path;
}

const target: Record<string, number> = {
  common_crawl: 0.67,
  c4: 0.15,
  github: 0.045,
  wikipedia: 0.045,
  books: 0.045,
  arxiv: 0.025,
  stackexchange: 0.02,
};

describe.skipIf(!tokenizer || !existsSync(cli))('mptjs-train data', () => {
  it('stats --json reports per-stream samples, tokens, realised fraction and target', async () => {
    const n = 400;
    const { code, stdout, stderr } = await run([
      'data',
      'stats',
      sampleConfig('a.yaml'),
      '--samples',
      String(n),
      '--json',
    ]);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const out = JSON.parse(stdout) as {
      streams: Record<string, { samples: number; tokens: number; fraction: number; target: number }>;
    };
    expect(Object.keys(out.streams)).toEqual(Object.keys(target));
    let total = 0;
    for (const [name, s] of Object.entries(out.streams)) {
      expect(s.target).toBe(target[name]);
      expect(s.tokens).toBe(s.samples * 128);
      expect(s.fraction).toBe(s.samples / n);
      expect(Math.abs(s.fraction - s.target)).toBeLessThan(4 * Math.sqrt((s.target * (1 - s.target)) / n));
      total += s.samples;
    }
    expect(total).toBe(n);
  });

  it('stats prints a table', async () => {
    const { code, stdout } = await run(['data', 'stats', sampleConfig('b.yaml'), '--samples', '20']);
    expect(code).toBe(0);
    expect(stdout).toMatch(
      /^20 samples of 128 tokens \(shuffle_seed 17, tokenizer \S+\)\nstream\s+samples\s+tokens\s+fraction\s+target\n/,
    );
    expect(stdout).toMatch(/\ncommon_crawl\s+\d+\s+\d+\s+0\.\d{4}\s+0\.6700\n/);
  });

  it('prepare writes one MDS dataset per stream, which stats then reads', async () => {
    const out = join(tmp, 'mds');
    const prep = await run(['data', 'prepare', sampleConfig('c.yaml'), '--out', out]);
    expect(prep.stderr).toBe('');
    expect(prep.code).toBe(0);
    expect(readdirSync(out).sort()).toEqual(Object.keys(target).sort());
    for (const name of Object.keys(target)) {
      const index = JSON.parse(readFileSync(join(out, name, 'index.json'), 'utf8'));
      expect(index.version).toBe(2);
      expect(index.shards[0].column_names).toEqual(['tokens']);
      expect(index.shards[0].column_encodings).toEqual(['ndarray:int32']);
      expect(existsSync(join(out, name, index.shards[0].zip_data.basename))).toBe(true);
      expect(prep.stdout).toContain(`${name}: `);
    }
    const mdsConfig = sampleConfig('d.yaml', (y) => y.replace('data_root: data/sample', `data_root: ${out}`));
    const stats = await run(['data', 'stats', mdsConfig, '--samples', '50', '--json']);
    expect(stats.code).toBe(0);
    expect(
      Object.values(JSON.parse(stats.stdout).streams).reduce(
        (a: number, s) => a + (s as { samples: number }).samples,
        0,
      ),
    ).toBe(50);
  });

  it('fails with a precise message on bad input', async () => {
    const typo = sampleConfig('f.yaml', (y) => y.replace('shuffle: true', 'shufle: true'));
    const noDir = sampleConfig('g.yaml', (y) =>
      y.replace('data_root: data/sample', `data_root: ${join(tmp, 'void')}`),
    );
    const [missing, badN, unknown, absent] = await Promise.all([
      run(['data', 'stats', join(tmp, 'nope.yaml'), '--samples', '5']),
      run(['data', 'stats', sampleConfig('e.yaml'), '--samples', 'many']),
      run(['data', 'stats', typo, '--samples', '5']),
      run(['data', 'stats', noDir, '--samples', '5']),
    ]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe(`mptjs-train: config not found: ${join(tmp, 'nope.yaml')}\n`);
    expect(badN.code).toBe(2);
    expect(badN.stderr).toContain('expected a positive integer, got many');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toBe('mptjs-train: unknown key train_loader.dataset.shufle\n');
    expect(absent.code).toBe(1);
    expect(absent.stderr).toBe(
      `mptjs-train: stream directory not found: ${join(tmp, 'void')}/common_crawl\n`,
    );
  });
});
