// Host memory bandwidth probe: streams a buffer much larger than the caches, as weight reads during decode do.

/** Read (sum) and copy bandwidth in GB/s over a `mib`-MiB Float32Array, best of `repeats`. */
export function measureBandwidth({ mib = 512, repeats = 5 } = {}) {
  const n = (mib * 2 ** 20) / 4;
  const src = new Float32Array(n).fill(1);
  const dst = new Float32Array(n);
  let best = Number.POSITIVE_INFINITY;
  let sink = 0;
  for (let r = 0; r < repeats; r++) {
    const t0 = performance.now();
    let s0 = 0;
    let s1 = 0;
    let s2 = 0;
    let s3 = 0;
    for (let i = 0; i < n; i += 4) {
      s0 += src[i];
      s1 += src[i + 1];
      s2 += src[i + 2];
      s3 += src[i + 3];
    }
    sink += s0 + s1 + s2 + s3;
    best = Math.min(best, (performance.now() - t0) / 1000);
  }
  let bestCopy = Number.POSITIVE_INFINITY;
  for (let r = 0; r < repeats; r++) {
    const t0 = performance.now();
    dst.set(src);
    bestCopy = Math.min(bestCopy, (performance.now() - t0) / 1000);
  }
  if (sink === -1) console.log(sink);
  const bytes = n * 4;
  // A copy reads and writes every byte.
  return { readGBs: bytes / best / 1e9, copyGBs: (2 * bytes) / bestCopy / 1e9 };
}
