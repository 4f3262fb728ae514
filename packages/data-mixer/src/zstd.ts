// zstd: Node 20's zlib has none. Reading uses fzstd (pure JS, streaming); writing uses the reference C library
// compiled to wasm (@bokuweb/zstd-wasm), so nothing native is downloaded at install time.
import { Transform, type TransformCallback } from 'node:stream';
import { Decompress, decompress } from 'fzstd';

/** Decompresses a whole zstd buffer; `what` names it in errors. */
export function zstdDecompress(data: Uint8Array, what: string): Uint8Array {
  try {
    return decompress(data);
  } catch (err) {
    throw new Error(`${what}: corrupt or truncated zstd data (${(err as Error).message})`);
  }
}

/** A Transform stream that decompresses zstd; a truncated input fails with an error naming `what`. */
export function zstdDecompressStream(what: string): Transform {
  let decoder: Decompress;
  const transform = new Transform({
    transform(chunk: Buffer, _enc, done: TransformCallback) {
      try {
        decoder.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
        done();
      } catch (err) {
        done(new Error(`${what}: corrupt zstd data (${(err as Error).message})`));
      }
    },
    flush(done: TransformCallback) {
      try {
        decoder.push(new Uint8Array(0), true);
        done();
      } catch (err) {
        done(new Error(`${what}: truncated zstd data (${(err as Error).message})`));
      }
    },
  });
  decoder = new Decompress((data) => {
    if (data.length > 0) transform.push(Buffer.from(data)); // copy: the decoder may reuse its window
  });
  return transform;
}

type ZstdWasm = { init(): Promise<void>; compress(data: Uint8Array, level: number): Uint8Array };
let wasm: Promise<ZstdWasm> | undefined;

async function zstdWasm(): Promise<ZstdWasm> {
  wasm ??= (async () => {
    const mod = (await import('@bokuweb/zstd-wasm')) as unknown as ZstdWasm;
    await mod.init();
    return mod;
  })();
  return wasm;
}

/** Compresses with the reference zstd library (wasm build). */
export async function zstdCompress(data: Uint8Array, level = 3): Promise<Uint8Array> {
  return (await zstdWasm()).compress(data, level);
}
