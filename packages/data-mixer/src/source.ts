// A stream's directory as a list of units (files or shards), each a sequence of records read in order.
import { existsSync, statSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { BadRecordPolicy } from './config.js';
import { type BadRecordOptions, countJsonlRecords, isJsonlFile, readJsonlDocuments } from './jsonl.js';
import {
  decodeMdsRecord,
  documentColumn,
  type MdsIndex,
  type MdsRecord,
  readMdsIndex,
  readMdsShard,
} from './mds.js';
import { hashSeed } from './random.js';

/** A document: text (tokenised by the mixer, EOS appended) or token ids (used as they are). */
export type Document = MdsRecord;

/**
 * A record as the shuffler holds it: a document, or a function that decodes it on first use (MDS); that function
 * returns null for a sample that does not decode under `on_bad_record: skip` (reported and counted already).
 */
export type LazyDocument = Document | (() => Document | null);

export interface StreamSource {
  readonly dir: string;
  readonly kind: 'jsonl' | 'mds';
  /** Unit names (file names or shard basenames), in a fixed sorted order. */
  readonly units: readonly string[];
  /** Records of one unit from record `from` on. */
  read(unit: number, from: number): AsyncGenerator<Document>;
  /** The same records, MDS ones left undecoded until used (a shuffle window then costs no decoding). */
  records(unit: number, from: number): AsyncGenerator<LazyDocument>;
  /** Total records over all units. */
  countRecords(): Promise<number>;
  /** Changes when the stream's files do (names and sizes, or shard sample counts): guards resumption. */
  readonly fingerprint: string;
  /** Bad records skipped so far under `on_bad_record: skip` (each counted once, however often it is read). */
  readonly skipped: number;
}

async function listJsonl(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (sub: string): Promise<void> => {
    const entries = await readdir(join(dir, sub), { withFileTypes: true });
    for (const e of entries) {
      const rel = sub ? `${sub}/${e.name}` : e.name;
      if (e.isDirectory()) await walk(rel);
      else if (isJsonlFile(e.name)) out.push(rel);
    }
  };
  await walk('');
  return out.sort();
}

export interface SourceOptions {
  /** Malformed JSON-lines lines: `fail` (default) or `skip` with a warning. */
  onBadRecord?: BadRecordPolicy;
  /** Default `console.warn`. */
  warn?: (message: string) => void;
}

/** The skip policy of one stream: reports each bad record once, with a running count. */
function badRecords(dir: string, options: SourceOptions): BadRecordOptions & { seen: Set<string> } {
  const seen = new Set<string>();
  const warn = options.warn ?? console.warn;
  return {
    seen,
    onBadRecord: options.onBadRecord ?? 'fail',
    onSkip: (where, reason) => {
      if (seen.has(where)) return;
      seen.add(where);
      warn(`${where}: ${reason}: skipped (on_bad_record: skip; ${seen.size} skipped in ${dir} so far)`);
    },
  };
}

/** Opens a stream directory: an MDS dataset if it has index.json, else the JSON-lines files under it. */
export async function openSource(
  dir: string,
  textField = 'text',
  options: SourceOptions = {},
): Promise<StreamSource> {
  if (!existsSync(dir)) throw new Error(`stream directory not found: ${dir}`);
  const bad = badRecords(dir, options);
  if (existsSync(join(dir, 'index.json'))) return mdsSource(dir, await readMdsIndex(dir), bad);
  const files = await listJsonl(dir);
  if (files.length === 0) throw new Error(`${dir}: no index.json and no .jsonl/.jsonl.gz/.jsonl.zst files`);
  const sizes = files.map((f) => statSync(join(dir, f)).size);
  return {
    dir,
    kind: 'jsonl',
    units: files,
    fingerprint: `${files.length}:${hashSeed(...files, ...sizes).toString(16)}`,
    get skipped() {
      return bad.seen.size;
    },
    read: (unit, from) => readJsonlDocuments(join(dir, files[unit]!), textField, from, bad),
    records: (unit, from) => readJsonlDocuments(join(dir, files[unit]!), textField, from, bad),
    countRecords: async () => {
      let n = 0;
      for (const f of files) n += await countJsonlRecords(join(dir, f), textField, bad);
      return n;
    },
  };
}

function mdsSource(
  dir: string,
  index: MdsIndex,
  bad: BadRecordOptions & { seen: Set<string> },
): StreamSource {
  const units = index.shards.map((s) => s.raw_data.basename);
  const skip = bad.onBadRecord === 'skip';
  return {
    dir,
    kind: 'mds',
    units,
    fingerprint: `${units.length}:${hashSeed(...units, ...index.shards.map((s) => s.samples)).toString(16)}`,
    get skipped() {
      return bad.seen.size;
    },
    async *records(unit, from) {
      const shard = index.shards[unit]!;
      const path = join(dir, shard.zip_data?.basename ?? shard.raw_data.basename);
      const column = documentColumn(shard, path);
      const data = await readMdsShard(dir, shard);
      for (let i = from; i < shard.samples; i++) {
        // A sample's position is its index in the shard whether or not it decodes, so skipping needs no recount.
        yield () => {
          if (!skip) return decodeMdsRecord(data, shard, column, i, path);
          try {
            return decodeMdsRecord(data, shard, column, i, path);
          } catch (err) {
            const message = (err as Error).message;
            const where = `${path}: sample ${i}`;
            bad.onSkip?.(
              where,
              message.startsWith(`${where}`) ? message.slice(where.length).replace(/^:? */, '') : message,
            );
            return null;
          }
        };
      }
    },
    async *read(unit, from) {
      for await (const record of this.records(unit, from)) {
        const doc = typeof record === 'function' ? record() : record;
        if (doc !== null) yield doc;
      }
    },
    countRecords: async () => index.shards.reduce((a, s) => a + s.samples, 0),
  };
}
