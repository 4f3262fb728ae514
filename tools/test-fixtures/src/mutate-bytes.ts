// Byte-level mutations for fuzz tests: each package's property tests draw lists of these (with fast-check) and
// apply them to a valid file, so inputs stay close to real ones and reach deep into the readers.

export type ByteMutation =
  | { kind: 'set'; at: number; value: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'delete'; at: number; length: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'copy'; from: number; to: number; length: number };

/** `bytes` with the mutations applied in order; positions wrap around the current length. */
export function mutateBytes(bytes: Uint8Array, mutations: readonly ByteMutation[]): Uint8Array {
  let out = Uint8Array.from(bytes);
  for (const m of mutations) {
    const n = out.length;
    if (m.kind === 'set') {
      if (n > 0) out[m.at % n] = m.value & 0xff;
    } else if (m.kind === 'insert') {
      const at = m.at % (n + 1);
      const next = new Uint8Array(n + m.bytes.length);
      next.set(out.subarray(0, at));
      next.set(m.bytes, at);
      next.set(out.subarray(at), at + m.bytes.length);
      out = next;
    } else if (m.kind === 'delete') {
      if (n === 0) continue;
      const at = m.at % n;
      const end = Math.min(n, at + m.length);
      const next = new Uint8Array(n - (end - at));
      next.set(out.subarray(0, at));
      next.set(out.subarray(end), at);
      out = next;
    } else if (m.kind === 'truncate') {
      out = out.slice(0, m.at % (n + 1));
    } else if (n > 0) {
      const from = m.from % n;
      const to = m.to % n;
      out.copyWithin(to, from, Math.min(n, from + m.length));
    }
  }
  return out;
}
