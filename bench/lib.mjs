// Shared helpers for bench scripts: machine description, robust timing, a ratio table and JSON results.
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export function machine() {
  const cpus = os.cpus();
  return {
    node: process.version,
    cpu: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    memory_gib: Math.round(os.totalmem() / 2 ** 30),
    platform: `${process.platform}-${process.arch}`,
  };
}

/** Median seconds of `fn` over `repeats` runs after `warmup` runs (`fn` may be async). */
export async function timeit(fn, { repeats = 5, warmup = 1 } = {}) {
  for (let i = 0; i < warmup; i++) await fn();
  const times = [];
  for (let i = 0; i < repeats; i++) {
    const t0 = performance.now();
    await fn();
    times.push((performance.now() - t0) / 1000);
  }
  times.sort((a, b) => a - b);
  return {
    median_s: times[Math.floor(times.length / 2)],
    min_s: times[0],
    max_s: times[times.length - 1],
    runs: times.length,
  };
}

/**
 * Prints a table of rows `{ name, value, unit, ...}` with each value's ratio to the row named `baseline`, and
 * writes `bench/results/<bench>.json`.
 */
export function report(bench, { rows, baseline, notes = {} }) {
  const base = rows.find((r) => r.name === baseline);
  const info = machine();
  console.log(`machine: ${info.cpu} x${info.cores}, ${info.memory_gib} GiB, node ${info.node}`);
  for (const [k, v] of Object.entries(notes)) console.log(`${k}: ${v}`);
  const width = Math.max(...rows.map((r) => r.name.length), 4);
  console.log(`${'name'.padEnd(width)}  ${'value'.padStart(12)}  unit          ratio`);
  for (const r of rows) {
    const ratio = base ? r.value / base.value : Number.NaN;
    r.ratio = Number.isFinite(ratio) ? Number(ratio.toFixed(3)) : null;
    console.log(
      `${r.name.padEnd(width)}  ${formatNumber(r.value).padStart(12)}  ${String(r.unit).padEnd(12)}  ${r.ratio === null ? '-' : `${r.ratio.toFixed(2)}x`}`,
    );
  }
  const dir = fileURLToPath(new URL('./results/', import.meta.url));
  mkdirSync(dir, { recursive: true });
  const out = join(dir, `${bench}.json`);
  writeFileSync(
    out,
    JSON.stringify({ bench, date: new Date().toISOString(), machine: info, baseline, notes, rows }, null, 2),
  );
  console.log(`results: ${out}`);
}

function formatNumber(v) {
  if (!Number.isFinite(v)) return String(v);
  if (Math.abs(v) >= 1000) return v.toFixed(0);
  return v.toPrecision(4);
}
