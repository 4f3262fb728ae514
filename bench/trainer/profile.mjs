// Where a step spends its time, per tfjs kernel: tf.profile around one call of `step`, kernel times summed by
// kernel name and by name + input shapes. Kernel times on wasm are wall times of each synchronous kernel.
import * as tf from '@tensorflow/tfjs-core';

export async function profileStep(step, { top = 15 } = {}) {
  await step(); // warm up: first calls compile wasm and build XNNPACK operators
  const t0 = performance.now();
  const info = await tf.profile(step);
  const wall = (performance.now() - t0) / 1000;
  const byName = new Map();
  const byShape = new Map();
  for (const k of info.kernels) {
    const ms = await k.kernelTimeMs;
    const add = (map, key) => {
      const e = map.get(key) ?? { ms: 0, calls: 0 };
      e.ms += typeof ms === 'number' ? ms : 0;
      e.calls += 1;
      map.set(key, e);
    };
    add(byName, k.name);
    add(byShape, `${k.name} ${k.inputShapes.map((s) => `[${s}]`).join(' ')}`);
  }
  const total = [...byName.values()].reduce((s, e) => s + e.ms, 0);
  const print = (title, map) => {
    console.log(`${title} (kernel total ${(total / 1000).toFixed(2)} s of ${wall.toFixed(2)} s wall):`);
    const sorted = [...map].sort((a, b) => b[1].ms - a[1].ms).slice(0, top);
    for (const [key, e] of sorted) {
      console.log(
        `  ${((100 * e.ms) / total).toFixed(1).padStart(5)}%  ${(e.ms / 1000).toFixed(3)} s  ${String(e.calls).padStart(5)} calls  ${key}`,
      );
    }
  };
  print('time by kernel', byName);
  print('time by kernel and input shapes', byShape);
}
