// verifySame: every rank hashes a canonical JSON of its value and the hashes are all-gathered; only when they
// differ are the texts themselves gathered, so that every rank can name the ranks and keys that differ.
import { createHash } from 'node:crypto';
import { CollectiveMismatchError } from './errors.js';
import type { CollectiveOptions, ProcessGroup } from './process-group.js';

const HASH_WORDS = 8;

export async function verifySameValue(
  pg: ProcessGroup,
  value: unknown,
  label: string,
  options?: CollectiveOptions,
): Promise<void> {
  const text = canonicalJson(value);
  const digest = createHash('sha256').update(text).digest();
  // 16-bit words are exact in float32, so the hash survives the float collective bit for bit.
  const mine = new Float32Array(HASH_WORDS);
  for (let i = 0; i < HASH_WORDS; i++) mine[i] = digest.readUInt16LE(2 * i);
  const all = await pg.allGather(mine, undefined, options);
  const hashOf = (r: number) => Array.from(all.subarray(r * HASH_WORDS, (r + 1) * HASH_WORDS)).join(',');
  const differing: number[] = [];
  for (let r = 1; r < pg.worldSize; r++) if (hashOf(r) !== hashOf(0)) differing.push(r);
  if (differing.length === 0) return;

  const texts = await gatherTexts(pg, text, options);
  const reference = JSON.parse(texts[0]!) as unknown;
  const details = differing.map((r) => {
    const paths = diffPaths(reference, JSON.parse(texts[r]!) as unknown, '').slice(0, 5);
    return `rank ${r} differs from rank 0 at ${paths.join(', ')}`;
  });
  throw new CollectiveMismatchError(
    `verifySame(${label}) failed on rank ${pg.rank}: ${details.join('; ')}`,
    'verifySame',
    differing[0]!,
  );
}

async function gatherTexts(pg: ProcessGroup, text: string, options?: CollectiveOptions): Promise<string[]> {
  const lengths = await pg.allGather(new Float32Array([text.length]), undefined, options);
  const max = Math.max(...lengths);
  const units = new Float32Array(max);
  for (let i = 0; i < text.length; i++) units[i] = text.charCodeAt(i);
  const all = await pg.allGather(units, undefined, options);
  const texts: string[] = [];
  for (let r = 0; r < pg.worldSize; r++) {
    const codes = all.subarray(r * max, r * max + lengths[r]!);
    let s = '';
    for (const c of codes) s += String.fromCharCode(c);
    texts.push(s);
  }
  return texts;
}

/** JSON with object keys sorted, so equal values give equal text on every rank. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      const sorted: Record<string, unknown> = {};
      for (const k of Object.keys(v).sort()) sorted[k] = (v as Record<string, unknown>)[k];
      return sorted;
    }
    return v;
  });
}

/** Dotted paths where two JSON values differ (`lr`, `fsdp.strategy`, `shapes[2]`). */
function diffPaths(a: unknown, b: unknown, path: string): string[] {
  const isObj = (x: unknown): x is Record<string, unknown> => !!x && typeof x === 'object';
  if (isObj(a) && isObj(b) && Array.isArray(a) === Array.isArray(b)) {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    const out: string[] = [];
    for (const k of keys) {
      const sub = Array.isArray(a) ? `${path}[${k}]` : path ? `${path}.${k}` : k;
      out.push(...diffPaths(a[k], b[k], sub));
    }
    return out;
  }
  const same = JSON.stringify(a) === JSON.stringify(b);
  return same ? [] : [`${path || '(root)'} (${JSON.stringify(a)} vs ${JSON.stringify(b)})`];
}
