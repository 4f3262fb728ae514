// Property tests: random and mutated input to the safetensors reader, the pickle reader and the zip container.
// Each input either reads correctly or fails with a CheckpointError that has a message; never a crash from a
// typed array or an undefined value, never a hang, and memory stays bounded. Run counts are fixed (and small), so
// each property finishes in seconds.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type ByteMutation, mutateBytes, sharedFile, TINY_MOSAIC_DIR } from '@mptjs/test-fixtures';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CheckpointError } from './errors.js';
import { readSafetensors, validateHeader, writeSafetensors } from './safetensors.js';
import { tempDir, zipEntries } from './testing/checkpoint-files.js';
import { stateDictPickle } from './testing/pickle-writer.js';
import { buildZip } from './testing/zip-writer.js';
import { readTorchStateDict } from './torch-bin.js';
import { parseTorchStateDict } from './torch-state-dict.js';

const dir = tempDir('hf-loader-fuzz-');

const mutation: fc.Arbitrary<ByteMutation> = fc.oneof(
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ maxLength: 12 }) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 12 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({
    kind: fc.constant('copy' as const),
    from: fc.nat(),
    to: fc.nat(),
    length: fc.integer({ min: 1, max: 16 }),
  }),
);
const mutations = fc.array(mutation, { minLength: 1, maxLength: 6 });

/** Runs `f`; a thrown error must be a CheckpointError with a one-line message. */
async function cleanly<T>(f: () => Promise<T> | T): Promise<T | undefined> {
  try {
    return await f();
  } catch (e) {
    if (!(e instanceof CheckpointError)) throw e;
    expect(e.message.length).toBeGreaterThan(0);
    expect(e.message).not.toContain('\n');
    return undefined;
  }
}

/** Resident memory growth over the property, sampled between runs: a reader that buffers what a file claims shows. */
function memoryGuard(): { check: () => void } {
  const before = process.memoryUsage().rss;
  return {
    check: () => {
      const growth = (process.memoryUsage().rss - before) / 2 ** 20;
      expect(growth, 'resident memory growth (MiB)').toBeLessThan(512);
    },
  };
}

describe('fuzzing the safetensors reader', () => {
  const tensorJson = fc.record(
    {
      dtype: fc.oneof(
        fc.constantFrom('F32', 'F16', 'BF16', 'I64', 'I32', 'U8', 'F8_E4M3', 'BOOL'),
        fc.jsonValue(),
      ),
      shape: fc.oneof(fc.array(fc.oneof(fc.nat(8), fc.integer(), fc.double(), fc.string())), fc.jsonValue()),
      data_offsets: fc.oneof(
        fc.tuple(fc.nat(64), fc.nat(64)),
        fc.array(fc.oneof(fc.integer(), fc.double(), fc.constant(2 ** 60))),
        fc.jsonValue(),
      ),
    },
    { requiredKeys: [] },
  );

  it('validates any header object into entries inside the data, or refuses it', () => {
    fc.assert(
      fc.property(
        fc.dictionary(fc.string({ maxLength: 8 }), fc.oneof(tensorJson, fc.jsonValue())),
        fc.nat(256),
        (header, dataBytes) => {
          const out = (() => {
            try {
              return validateHeader('x.safetensors', header, dataBytes);
            } catch (e) {
              if (!(e instanceof CheckpointError)) throw e;
              return undefined;
            }
          })();
          if (!out) return;
          // Accepted entries tile the data exactly and match their shapes.
          let cursor = 0;
          for (const e of out.tensors.values()) {
            expect(e.begin).toBe(cursor);
            expect(Number.isSafeInteger(e.end)).toBe(true);
            cursor = e.end;
          }
          expect(cursor).toBe(dataBytes);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('reads a mutated file correctly or refuses it with a CheckpointError', async () => {
    const path = join(dir, 'valid.safetensors');
    await writeSafetensors(path, {
      a: { shape: [2, 3], data: new Float32Array([1, 2, 3, 4, 5, 6]) },
      b: { shape: [4], data: new Float32Array([7, 8, 9, 10]), dtype: 'BF16' },
      c: { shape: [2], data: new Int32Array([11, 12]) },
    });
    const valid = new Uint8Array(readFileSync(path));
    const memory = memoryGuard();
    const target = join(dir, 'mutated.safetensors');
    await fc.assert(
      fc.asyncProperty(mutations, async (ms) => {
        writeFileSync(target, mutateBytes(valid, ms));
        const got = await cleanly(() => readSafetensors(target));
        for (const t of got?.values() ?? []) {
          expect(t.data.length).toBe(t.shape.reduce((a, b) => a * b, 1));
        }
      }),
      { numRuns: 1000 },
    );
    memory.check();
  });
});

/** The pickles to mutate: one built here, and the shared fixture's data.pkl when it is present. */
async function seedPickles(): Promise<Uint8Array[]> {
  const built = stateDictPickle({
    w: { storage: ['FloatStorage', '0', 6], offset: 0, size: [2, 3], stride: [3, 1] },
    t: { storage: ['FloatStorage', '0', 6], offset: 1, size: [3, 2], stride: [1, 3] },
    h: { storage: ['HalfStorage', '1', 4], offset: 0, size: [4], stride: [1] },
  });
  const out = [built];
  const bin = sharedFile(`${TINY_MOSAIC_DIR}/pytorch_model.bin`);
  if (bin) {
    const pkl = (await zipEntries(bin)).find((e) => e.name.endsWith('data.pkl'));
    out.push(pkl!.data);
  }
  return out;
}

describe('fuzzing the pickle reader', () => {
  it('decodes a mutated state-dict pickle into in-range tensor views or refuses it', async () => {
    const seeds = await seedPickles();
    const memory = memoryGuard();
    await fc.assert(
      fc.asyncProperty(fc.nat(seeds.length - 1), mutations, async (which, ms) => {
        const t0 = performance.now();
        const got = await cleanly(() => parseTorchStateDict(mutateBytes(seeds[which]!, ms), 'data.pkl'));
        expect(performance.now() - t0).toBeLessThan(1000);
        for (const ref of got?.tensors.values() ?? []) {
          expect(Number.isSafeInteger(ref.offset) && ref.offset >= 0).toBe(true);
          const n = ref.shape.reduce((a, b) => a * b, 1);
          if (n === 0) continue;
          let last = ref.offset;
          ref.shape.forEach((d, i) => {
            last += (d - 1) * ref.stride[i]!;
          });
          expect(last).toBeLessThan(ref.storage.numel);
        }
      }),
      { numRuns: 10_000 },
    );
    memory.check();
  });

  it('refuses random bytes cleanly', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        try {
          parseTorchStateDict(bytes, 'data.pkl');
        } catch (e) {
          if (!(e instanceof CheckpointError)) throw e;
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe('fuzzing pytorch_model.bin (zip container and pickle together)', () => {
  it('reads a mutated archive correctly or refuses it with a CheckpointError', async () => {
    const pkl = stateDictPickle({
      w: { storage: ['FloatStorage', '0', 6], offset: 0, size: [2, 3], stride: [3, 1] },
      t: { storage: ['FloatStorage', '0', 6], offset: 1, size: [3, 2], stride: [1, 3] },
    });
    const valid = buildZip([
      { name: 'archive/data.pkl', data: pkl },
      { name: 'archive/byteorder', data: Buffer.from('little') },
      { name: 'archive/data/0', data: new Uint8Array(new Float32Array([1, 2, 3, 4, 5, 6]).buffer) },
    ]);
    const target = join(dir, 'mutated.bin');
    const memory = memoryGuard();
    await fc.assert(
      fc.asyncProperty(mutations, async (ms) => {
        writeFileSync(target, mutateBytes(valid, ms));
        const got = await cleanly(() => readTorchStateDict(target));
        for (const t of got?.values() ?? []) {
          expect(t.data.length).toBe(t.shape.reduce((a, b) => a * b, 1));
        }
      }),
      { numRuns: 1500 },
    );
    memory.check();
  });
});
