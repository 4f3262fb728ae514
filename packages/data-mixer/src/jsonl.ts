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

/** Why a record has no usable text field, or undefined when it has one. */
function textProblem(record: Record<string, unknown>, field: string): string | undefined {
  const text = record[field];
  if (typeof text === 'string') return undefined;
  return `${text === undefined ? 'missing' : 'non-string'} field ${JSON.stringify(field)}`;
}

/** Parses one JSON-lines record and returns its text field; errors name file and line. */
export function parseJsonlRecord(line: string, field: string, path: string, lineNo: number): string {
  const record = parseObject(line);
  if (typeof record === 'string') throw new Error(`${path}:${lineNo}: ${record}`);
  const problem = textProblem(record, field);
  if (problem) throw new Error(`${path}:${lineNo}: ${problem}`);
  return record[field] as string;
}

/**
 * What to do with a bad record (a line that is not valid JSON, not a JSON object, or has no string text field):
 * `fail` (default) throws `file:line: ...`; `skip` leaves it out (it is then not a record: indices count good
 * lines only) and reports it to `onSkip`.
 */
export interface BadRecordOptions {
  onBadRecord?: BadRecordPolicy;
  onSkip?: (where: string, reason: string) => void;
}

/** The text of a line under `skip`, or undefined (reported to onSkip) when the line is a bad record. */
function textOrSkip(line: string, field: string, where: string, bad: BadRecordOptions): string | undefined {
  const record = parseObject(line);
  const problem = typeof record === 'string' ? record : textProblem(record, field);
  if (problem === undefined) return (record as Record<string, unknown>)[field] as string;
  bad.onSkip?.(where, problem);
  return undefined;
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
    const text = textOrSkip(line, field, `${path}:${lineNo}`, bad);
    if (text === undefined) continue;
    if (index++ < from) continue;
    yield text;
  }
}

/** Number of records in a JSON-lines file: non-blank lines, less bad records under `onBadRecord: skip`. */
export async function countJsonlRecords(
  path: string,
  field: string,
  bad: BadRecordOptions = {},
): Promise<number> {
  let n = 0;
  for await (const { line, lineNo } of readLines(path)) {
    if (line.trim() === '') continue;
    if (bad.onBadRecord === 'skip' && textOrSkip(line, field, `${path}:${lineNo}`, bad) === undefined)
      continue;
    n++;
  }
  return n;
}
