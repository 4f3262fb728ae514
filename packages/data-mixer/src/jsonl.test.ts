import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { readJsonlDocuments } from './jsonl.js';
import { openSource } from './source.js';
import { tempDir } from './testing/fixtures.js';
import { zstdCompress } from './zstd.js';

const tmp = tempDir();
afterAll(tmp.cleanup);

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

const docs = Array.from(
  { length: 300 },
  (_, i) => `document ${i}: ${'ünïcode text '.repeat(i % 17)}\nline two`,
);
const body = `${docs.map((text, i) => JSON.stringify({ text, meta: { i } })).join('\n')}\n`;

describe('JSON-lines sources', () => {
  it('reads .jsonl, .jsonl.gz and .jsonl.zst (zstd CLI and our compressor) to the same documents', async () => {
    const plain = join(tmp.dir, 'a.jsonl');
    writeFileSync(plain, body);
    writeFileSync(join(tmp.dir, 'b.jsonl.gz'), gzipSync(body));
    execFileSync('zstd', ['-q', '-f', plain, '-o', join(tmp.dir, 'c.jsonl.zst')]);
    writeFileSync(join(tmp.dir, 'd.jsonl.zst'), await zstdCompress(new TextEncoder().encode(body), 5));
    for (const f of ['a.jsonl', 'b.jsonl.gz', 'c.jsonl.zst', 'd.jsonl.zst']) {
      expect(await collect(readJsonlDocuments(join(tmp.dir, f), 'text'))).toEqual(docs);
    }
    expect(await collect(readJsonlDocuments(join(tmp.dir, 'c.jsonl.zst'), 'text', 295))).toEqual(
      docs.slice(295),
    );
  });

  it('reads multi-frame zstd written by the CLI from a pipe (no content size in the frame header)', async () => {
    const file = join(tmp.dir, 'multi.jsonl.zst');
    const half = docs.length / 2;
    const part = (from: number, to: number) =>
      execFileSync('zstd', ['-q', '-c'], {
        input: `${docs
          .slice(from, to)
          .map((text) => JSON.stringify({ text }))
          .join('\n')}\n`,
      });
    writeFileSync(file, Buffer.concat([part(0, half), part(half, docs.length)]));
    expect(await collect(readJsonlDocuments(file, 'text'))).toEqual(docs);
  });

  it('reads a configurable field and skips blank lines', async () => {
    const file = join(tmp.dir, 'field.jsonl');
    writeFileSync(file, '{"content": "x"}\n\n   \n{"content": "y"}');
    expect(await collect(readJsonlDocuments(file, 'content'))).toEqual(['x', 'y']);
  });

  it('names file and line for a bad JSON line and a missing field', async () => {
    const bad = join(tmp.dir, 'bad.jsonl');
    writeFileSync(bad, '{"text": "ok"}\n\n{"text": "broken"\n');
    await expect(collect(readJsonlDocuments(bad, 'text'))).rejects.toThrow(`${bad}:3: invalid JSON`);
    const missing = join(tmp.dir, 'missing.jsonl');
    writeFileSync(missing, '{"text": "ok"}\n{"body": "no text"}\n');
    await expect(collect(readJsonlDocuments(missing, 'text'))).rejects.toThrow(
      `${missing}:2: missing field "text"`,
    );
    const number = join(tmp.dir, 'number.jsonl');
    writeFileSync(number, '{"text": 5}\n');
    await expect(collect(readJsonlDocuments(number, 'text'))).rejects.toThrow(
      `${number}:1: non-string field "text"`,
    );
    const array = join(tmp.dir, 'array.jsonl');
    writeFileSync(array, '["text"]\n');
    await expect(collect(readJsonlDocuments(array, 'text'))).rejects.toThrow(
      `${array}:1: expected a JSON object, got an array`,
    );
  });

  it('on_bad_record: skip leaves malformed lines out with one warning each; fail keeps the error', async () => {
    const { dir, cleanup } = tempDir();
    try {
      const file = join(dir, 'mixed.jsonl');
      writeFileSync(file, '{"text": "a"}\n{"text": oops}\n\n[1]\n{"text": "b"}\n{"text": "c"}\n');
      const warnings: string[] = [];
      const source = await openSource(dir, 'text', { onBadRecord: 'skip', warn: (m) => warnings.push(m) });
      expect(await source.countRecords()).toBe(3);
      expect(await collect(source.read(0, 0))).toEqual(['a', 'b', 'c']);
      expect(await collect(source.read(0, 1))).toEqual(['b', 'c']); // record indices count valid lines only
      expect(warnings).toHaveLength(2); // once per line, however often it is read
      expect(warnings[0]).toMatch(
        new RegExp(
          `^${file}:2: invalid JSON \\(.*\\): skipped \\(on_bad_record: skip; 1 skipped in ${dir} so far\\)$`,
        ),
      );
      expect(warnings[1]).toBe(
        `${file}:4: expected a JSON object, got an array: skipped (on_bad_record: skip; 2 skipped in ${dir} so far)`,
      );
      expect(source.skipped).toBe(2);
      writeFileSync(file, '{"text": "a"}\n{"text": oops}\n');
      const failing = await openSource(dir);
      await expect(collect(failing.read(0, 0))).rejects.toThrow(`${file}:2: invalid JSON`);
    } finally {
      cleanup();
    }
  });

  it('on_bad_record: skip also skips a missing or non-string text field, and counts each bad line once', async () => {
    const { dir, cleanup } = tempDir();
    try {
      const file = join(dir, 'fields.jsonl');
      writeFileSync(
        file,
        '{"text": "a"}\n{"body": "b"}\n{"text": 5}\n{"text": null}\n{"text": "c"}\n{"text": oops\n{"text": "d"}\n',
      );
      const warnings: string[] = [];
      const source = await openSource(dir, 'text', { onBadRecord: 'skip', warn: (m) => warnings.push(m) });
      expect(await source.countRecords()).toBe(3);
      expect(await collect(source.read(0, 0))).toEqual(['a', 'c', 'd']);
      expect(await collect(source.read(0, 2))).toEqual(['d']);
      expect(source.skipped).toBe(4);
      expect(warnings).toEqual([
        `${file}:2: missing field "text": skipped (on_bad_record: skip; 1 skipped in ${dir} so far)`,
        `${file}:3: non-string field "text": skipped (on_bad_record: skip; 2 skipped in ${dir} so far)`,
        `${file}:4: non-string field "text": skipped (on_bad_record: skip; 3 skipped in ${dir} so far)`,
        expect.stringMatching(
          /:6: invalid JSON \(.*\): skipped \(on_bad_record: skip; 4 skipped in .* so far\)$/,
        ),
      ]);
      // Under fail (the default) each of them stops the read, naming file and line.
      const failing = await openSource(dir);
      await expect(collect(failing.read(0, 0))).rejects.toThrow(`${file}:2: missing field "text"`);
      writeFileSync(file, '{"text": "a"}\n{"text": ["x"]}\n');
      await expect(collect((await openSource(dir)).read(0, 0))).rejects.toThrow(
        `${file}:2: non-string field "text"`,
      );
    } finally {
      cleanup();
    }
  });

  it('fails on truncated zstd and gzip input, naming the file', async () => {
    const full = await zstdCompress(new TextEncoder().encode(body));
    const zst = join(tmp.dir, 'trunc.jsonl.zst');
    writeFileSync(zst, full.subarray(0, Math.floor(full.length / 2)));
    await expect(collect(readJsonlDocuments(zst, 'text'))).rejects.toThrow(`${zst}: truncated zstd data`);
    const gz = join(tmp.dir, 'trunc.jsonl.gz');
    const zipped = gzipSync(body);
    writeFileSync(gz, zipped.subarray(0, zipped.length - 20));
    await expect(collect(readJsonlDocuments(gz, 'text'))).rejects.toThrow(gz);
  });

  it('opens a directory of JSON-lines files in sorted order and counts records', async () => {
    const { dir, cleanup } = tempDir();
    try {
      writeFileSync(join(dir, 'b.jsonl'), '{"text": "b0"}\n');
      writeFileSync(join(dir, 'a.jsonl.gz'), gzipSync('{"text": "a0"}\n{"text": "a1"}\n'));
      writeFileSync(join(dir, 'notes.txt'), 'ignored');
      const source = await openSource(dir);
      expect(source.kind).toBe('jsonl');
      expect(source.units).toEqual(['a.jsonl.gz', 'b.jsonl']);
      expect(await source.countRecords()).toBe(3);
      expect(await collect(source.read(0, 1))).toEqual(['a1']);
      await expect(openSource(join(dir, 'nope'))).rejects.toThrow(
        `stream directory not found: ${join(dir, 'nope')}`,
      );
    } finally {
      cleanup();
    }
  });
});
