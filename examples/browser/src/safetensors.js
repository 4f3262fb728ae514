// A browser-side safetensors reader: @mptjs/hf-loader's readers are file-based (node:fs), so the page parses the
// fetched bytes itself. Format: u64 little-endian header length N, N bytes of JSON header
// ({ name: { dtype, shape, data_offsets: [begin, end] }, __metadata__? }), then the raw little-endian data.
// Floats (F32, F16, BF16) become Float32Array, as hf-loader gives them.

const F16_TABLE = (() => {
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const s = h & 0x8000 ? -1 : 1;
    const e = (h >> 10) & 0x1f;
    const m = h & 0x3ff;
    t[h] =
      e === 0
        ? s * 2 ** -14 * (m / 1024)
        : e === 31
          ? m
            ? Number.NaN
            : s * Infinity
          : s * 2 ** (e - 15) * (1 + m / 1024);
  }
  return t;
})();

/** @returns {Map<string, { shape: number[], data: Float32Array }>} */
export function parseSafetensors(buffer) {
  const view = new DataView(buffer);
  const headerLen = Number(view.getBigUint64(0, true));
  if (8 + headerLen > buffer.byteLength)
    throw new Error(`safetensors header length ${headerLen} exceeds the file`);
  const header = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, 8, headerLen)));
  const base = 8 + headerLen;
  const out = new Map();
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const [begin, end] = entry.data_offsets;
    const count = entry.shape.reduce((a, b) => a * b, 1);
    const bytes = buffer.slice(base + begin, base + end); // a copy: aligned for the typed array
    let data;
    if (entry.dtype === 'F32') data = new Float32Array(bytes);
    else if (entry.dtype === 'F16') data = Float32Array.from(new Uint16Array(bytes), (h) => F16_TABLE[h]);
    else if (entry.dtype === 'BF16') {
      const src = new Uint16Array(bytes);
      data = new Float32Array(src.length);
      new Uint32Array(data.buffer).set(Uint32Array.from(src, (b) => b << 16));
    } else continue; // integer buffers (none in MPT weights)
    if (data.length !== count) throw new Error(`${name}: ${data.length} values for shape [${entry.shape}]`);
    out.set(name, { shape: entry.shape, data });
  }
  return out;
}
