// JSON-lines documents, read line by line (never a whole file in memory): `.jsonl`, `.jsonl.gz`, `.jsonl.zst`.
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Readable, Transform } from 'node:stream';
import { createGunzip } from 'node:zlib';
import type { BadRecordPolicy } from './config.js';
import { zstdDecompressStream } from './zstd.js';

// `.json.gz` too: C4's released files are JSON lines under that name.
export const JSONL_SUFFIXES = [
  '.jsonl',
  '.jsonl.gz',
  '.jsonl.zst',
  '.jsonl.zstd',
  '.json.gz',
  '.json.zst',
] as const;

export function isJsonlFile(name: string): boolean {
  return JSONL_SUFFIXES.some((suffix) => name.endsWith(suffix));
}

function openDecoded(path: string): Readable {
  const raw = createReadStream(path);
  let decoder: Transform | undefined;
  if (path.endsWith('.gz')) decoder = createGunzip();
  else if (path.endsWith('.zst') || path.endsWith('.zstd')) decoder = zstdDecompressStream(path);
  if (!decoder) return raw;
  const out = decoder;
  raw.on('error', (err) => out.destroy(err));
  return raw.pipe(out);
}

/** Lines of a (possibly compressed) text file with 1-based line numbers. Read and decode errors name the file. */
export async function* readLines(path: string): AsyncGenerator<{ line: string; lineNo: number }> {
  const input = openDecoded(path);
  // readline's iterator does not see errors of its input stream: race each read against them.
  const failed = new Promise<never>((_, reject) => {
    input.on('error', (err: Error) =>
      reject(err.message.includes(path) ? err : new Error(`${path}: ${err.message}`)),
    );
  });
  failed.catch(() => {});
  const lines = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
  const it = lines[Symbol.asyncIterator]();
  let lineNo = 0;
  try {
    while (true) {
      const next = await Promise.race([it.next(), failed]);
      if (next.done) break;
      lineNo++;
      yield { line: next.value, lineNo };
    }
    // A decode error can land after the last complete line was read.
    await Promise.race([failed, new Promise((resolve) => setImmediate(resolve))]);
  } finally {
    lines.close();
    input.destroy();
  }
}

/** The JSON object on one line, or why the line is not one (a malformed record). */
function parseObject(line: string): Record<string, unknown> | string {
  let record: unknown;
  try {
    record = JSON.parse(line);
  } catch (err) {
    return `invalid JSON (${(err as Error).message})`;
  }
  if (typeof record !== 'object' || record === null || Array.isArray(record)) {
    return `expected a JSON object, got ${Array.isArray(record) ? 'an array' : typeof record}`;
  }
  return record as Record<string, unknown>;
}

function textOf(record: Record<string, unknown>, field: string, path: string, lineNo: number): string {
  const text = record[field];
  if (typeof text !== 'string') {
    throw new Error(
      `${path}:${lineNo}: ${text === undefined ? 'missing' : 'non-string'} field ${JSON.stringify(field)}`,
    );
  }
  return text;
}

/** Parses one JSON-lines record and returns its text field; errors name file and line. */
export function parseJsonlRecord(line: string, field: string, path: string, lineNo: number): string {
  const record = parseObject(line);
  if (typeof record === 'string') throw new Error(`${path}:${lineNo}: ${record}`);
  return textOf(record, field, path, lineNo);
}

/**
 * What to do with a malformed line (not valid JSON, or not a JSON object): `fail` (default) throws
 * `file:line: invalid JSON (...)`; `skip` leaves it out (it is then not a record: indices count valid lines
 * only) and reports it to `onSkip`. A missing or non-string text field fails either way.
 */
export interface BadRecordOptions {
  onBadRecord?: BadRecordPolicy;
  onSkip?: (where: string, reason: string) => void;
}

/** Documents of a JSON-lines file from record `from` on (blank lines are not records). */
export async function* readJsonlDocuments(
  path: string,
  field: string,
  from = 0,
  bad: BadRecordOptions = {},
): AsyncGenerator<string> {
  const skip = bad.onBadRecord === 'skip';
  let index = 0;
  for await (const { line, lineNo } of readLines(path)) {
    if (line.trim() === '') continue;
    if (!skip) {
      if (index++ < from) continue;
      yield parseJsonlRecord(line, field, path, lineNo);
      continue;
    }
    const record = parseObject(line);
    if (typeof record === 'string') {
      bad.onSkip?.(`${path}:${lineNo}`, record);
      continue;
    }
    if (index++ < from) continue;
    yield textOf(record, field, path, lineNo);
  }
}

/** Number of records in a JSON-lines file: non-blank lines, less malformed ones under `onBadRecord: skip`. */
export async function countJsonlRecords(path: string, bad: BadRecordOptions = {}): Promise<number> {
  let n = 0;
  for await (const { line, lineNo } of readLines(path)) {
    if (line.trim() === '') continue;
    if (bad.onBadRecord === 'skip') {
      const record = parseObject(line);
      if (typeof record === 'string') {
        bad.onSkip?.(`${path}:${lineNo}`, record);
        continue;
      }
    }
    n++;
  }
  return n;
}
