// The GPU measurement kit's entry point (bundled by build.mjs, started by run.sh): webgpu through Dawn, the
// adapter's description, matmul TFLOP/s, training tokens/s and MFU and decode tokens/s for the mpt-125m and
// mpt-1b shapes, fused vs plain attention, a sweep of the tfjs webgpu flags and a memory stability run, all
// within a time budget, written as JSON after every section.
// Usage: node mptjs-gpu-kit.mjs [--out result.json] [--tiny] [--budget-s 480] [--deadline-ms EPOCH_MS]
//   [--sections matmul,f16,models,profile,int8,attention,serve,flags,memory,learning]
import { existsSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { releaseWebGpuDevice, selectBackend } from '@mptjs/kernels';
import * as tf from '@tensorflow/tfjs-core';
import { describeGpu } from './adapter.mjs';
import { measureF16 } from './f16.mjs';
import { runFlagSweep } from './flag-sweep.mjs';
import { measureInt8 } from './int8.mjs';
import { measureAttention, measureMatmul } from './kernels.mjs';
import { runMemoryStability } from './memory-stability.mjs';
import { planLayers, runModelStage } from './model-stage.mjs';
import { profileTrainStep } from './profile.mjs';
import { printSummary } from './report.mjs';
import { runSameLearning } from './same-learning.mjs';
import { readSampleTokens } from './sample-tokens.mjs';
import { measureServe } from './serve-stage.mjs';
import { kitShapes } from './shapes.mjs';
import { Budget } from './timing.mjs';

/** The groups `--sections` can pick, in the order they run. */
const SECTION_GROUPS = [
  'matmul',
  'f16',
  'models',
  'profile',
  'int8',
  'attention',
  'serve',
  'flags',
  'memory',
  'learning',
];

const { values } = parseArgs({
  options: {
    out: { type: 'string', default: 'gpu-kit-result.json' },
    tiny: { type: 'boolean', default: false },
    'budget-s': { type: 'string', default: '480' },
    // Set by run.sh: the wall-clock end of the budget, counted from when the script itself started.
    'deadline-ms': { type: 'string' },
    sections: { type: 'string', default: SECTION_GROUPS.join(',') },
  },
});
const chosen = new Set(
  values.sections
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean),
);
for (const name of chosen) {
  if (!SECTION_GROUPS.includes(name))
    throw new RangeError(`--sections: unknown section "${name}" (known: ${SECTION_GROUPS.join(', ')})`);
}
const budgetS = Number(values['budget-s']);
if (!(budgetS > 0))
  throw new RangeError(`--budget-s must be a positive number of seconds, got ${values['budget-s']}`);
// Writing the result and tearing down Dawn take a few seconds after the last section.
const endMs = values['deadline-ms'] ? Number(values['deadline-ms']) : Date.now() + budgetS * 1000;
const budget = new Budget((endMs - Date.now()) / 1000 - 10);
const shapes = kitShapes(values.tiny);
const log = (line) => console.log(`[gpu-kit] ${line}`);

/** Thrown by a section that decides not to run; it is recorded as skipped, not failed. */
class Skip extends Error {}

const doc = {
  kit: 'mptjs-gpu-kit',
  mode: values.tiny ? 'tiny' : 'full',
  started_at: new Date().toISOString(),
  budget_s: budgetS,
  environment: {
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    memory_gib: Math.round(os.totalmem() / 2 ** 30),
    vulkan_icd: process.env.VK_ICD_FILENAMES ?? process.env.VK_DRIVER_FILES ?? null,
    vulkan_loader: process.env.MPTJS_KIT_VULKAN_LOADER ?? null,
  },
  adapter: null,
  sections: [],
  complete: false,
};
const startMs = Date.now();

function save() {
  doc.elapsed_s = (Date.now() - startMs) / 1000;
  doc.within_budget = doc.elapsed_s <= budgetS;
  writeFileSync(values.out, `${JSON.stringify(doc, null, 2)}\n`);
}

/** Runs one section unless too little time is left; records ok / skipped / failed and saves the JSON. */
async function section(name, kind, minSeconds, fn, group = kind) {
  const entry = { name, kind, status: 'ok' };
  const left = budget.remaining();
  if (!chosen.has(group)) {
    entry.status = 'skipped';
    entry.note = `not among --sections`;
  } else if (left < minSeconds) {
    entry.status = 'skipped';
    entry.note = `out of time budget (${left.toFixed(0)} s left, needs ${minSeconds} s)`;
  } else {
    const t0 = performance.now();
    log(`${name} ...`);
    try {
      entry.result = await fn();
    } catch (err) {
      if (err instanceof Skip) {
        entry.status = 'skipped';
        entry.note = err.message;
      } else {
        entry.status = 'failed';
        entry.error = err instanceof Error ? err.message : String(err);
      }
    }
    entry.seconds = (performance.now() - t0) / 1000;
  }
  log(
    `${name}: ${entry.status}${entry.error ? ` (${entry.error})` : ''}${entry.note ? ` (${entry.note})` : ''}`,
  );
  doc.sections.push(entry);
  save();
  return entry;
}

try {
  const info = await selectBackend('webgpu', { log: false });
  doc.adapter = await describeGpu(info);
  doc.environment.tfjs = tf.version_core;
  // The flags selectBackend set (mptjs's webgpu defaults and any MPTJS_TFJS_FLAGS overrides).
  doc.environment.tfjs_flags = info.flags ?? {};
} catch (err) {
  doc.error = `webgpu backend unavailable: ${err instanceof Error ? err.message : String(err)}`;
  save();
  console.error(`[gpu-kit] ${doc.error}`);
  process.exit(1);
}
log(`adapter: ${doc.adapter.summary}`);
log(`features: ${doc.adapter.features.join(', ') || 'none'}`);
log(
  `tfjs flags: ${Object.entries(doc.environment.tfjs_flags)
    .map(([k, v]) => `${k}=${v}`)
    .join(',')}`,
);
if (doc.adapter.is_software && !values.tiny) {
  doc.warning =
    'the adapter is a CPU emulation (no GPU driver found?): expect skipped sections and tiny figures';
  log(`WARNING: ${doc.warning}`);
}
save();

const run = {
  budget,
  reserveS: 0,
  repeats: shapes.repeats,
  decode: shapes.decode,
  decodeBatch: shapes.decodeBatch,
  peakTflops: null,
};
run.nominalTflops = doc.adapter.nominal_fp32_peak?.tflops ?? null;

const matmul = await section('matmul', 'matmul', shapes.minSeconds.matmul, () =>
  measureMatmul(shapes.matmul, run),
);
run.peakTflops = matmul.result?.peak_tflops ?? null;

// The f16 GEMM's plan and tile sweep; where it passes, the model stages time amp_fp16 steps too.
await section('f16 gemm', 'f16', shapes.minSeconds.f16, () => measureF16(shapes.f16, run, values.tiny));

// The attention comparison, the flag sweep and the memory run come after the model stages, which leave the
// first its minimum time and the other two their most.
// Only the sections chosen to run are reserved for.
const wanted = (group, seconds) => (chosen.has(group) ? seconds : 0);
const laterS =
  wanted('flags', shapes.maxSeconds.sweep) +
  wanted('memory', shapes.maxSeconds.memory) +
  wanted('learning', shapes.maxSeconds.learning);
run.reserveS =
  wanted('profile', shapes.minSeconds.profile) +
  wanted('int8', shapes.minSeconds.int8) +
  wanted('attention', shapes.minSeconds.attention) +
  wanted('serve', shapes.minSeconds.serve) +
  laterS;
let rates = null;
for (const shape of shapes.models) {
  const plan = planLayers(shape, rates, {
    secondsLeft: budget.remaining() - run.reserveS,
    repeats: run.repeats,
  });
  let stage = null;
  if (!chosen.has('models')) break;
  const train = await section(
    `train ${shape.name}`,
    'train',
    shapes.minSeconds.model,
    async () => {
      const notes = [];
      if (plan.layers < shape.nLayers) {
        notes.push(
          `the full depth was estimated at ${plan.estimate_s.toFixed(0)} s (init, ${run.repeats + 1} steps, decode), more than the budget left`,
        );
      }
      let layers = plan.layers;
      for (;;) {
        try {
          stage = await runModelStage(shape, layers, run);
          break;
        } catch (err) {
          // Out of GPU memory: half the layers, while that is possible and there is time to try.
          const oom = /out of memory/i.test(err instanceof Error ? err.message : String(err));
          if (!oom || layers === 1 || budget.remaining() - run.reserveS < shapes.minSeconds.model) throw err;
          notes.push(`${layers} layers ran out of GPU memory`);
          layers = Math.max(1, Math.floor(layers / 2));
          log(`${shape.name}: out of GPU memory, retrying with ${layers} layers`);
        }
      }
      if (layers < shape.nLayers)
        stage.train.note = `${layers} of ${shape.nLayers} layers measured: ${notes.join('; ')}`;
      return stage.train;
    },
    'models',
  );
  if (stage) rates = stage.rates;
  await section(
    `decode ${shape.name}`,
    'decode',
    0,
    async () => {
      if (train.status !== 'ok')
        throw new Skip(`the training stage ${train.status}, so no model to decode with`);
      if (!stage.decode) throw new Skip('out of time budget after the training step');
      return stage.decode;
    },
    'models',
  );
  await section(
    `decode ${shape.name} batch ${run.decodeBatch}`,
    'decode',
    0,
    async () => {
      if (!stage?.batched) throw new Skip('no batched decoding measured (no model, or out of time budget)');
      return stage.batched;
    },
    'models',
  );
}

await section('profile', 'profile', shapes.minSeconds.profile, () => profileTrainStep(shapes.models[0]));
await section('int8', 'int8', shapes.minSeconds.int8, () => measureInt8(shapes.int8, run));

run.reserveS =
  wanted('attention', shapes.minSeconds.attention) + wanted('serve', shapes.minSeconds.serve) + laterS;
await section('attention', 'attention', shapes.minSeconds.attention, () =>
  measureAttention(shapes.attention, run),
);
await section('serve', 'serve', shapes.minSeconds.serve, () => {
  const tokenizer = join(dirname(fileURLToPath(import.meta.url)), 'tokenizer.json');
  if (!existsSync(tokenizer)) throw new Skip('the kit was built without a tokenizer (see BUILD.json notes)');
  return measureServe(shapes.serve, tokenizer);
});

// Each takes at most its share, and whatever an earlier section left unused.
run.reserveS = 0;
const learningMinS = wanted('learning', shapes.minSeconds.learning);
await section('webgpu flags', 'flags', shapes.minSeconds.sweep, () =>
  runFlagSweep(
    shapes.models[0],
    shapes.sweep,
    run,
    Math.min(shapes.maxSeconds.sweep, budget.remaining() - shapes.minSeconds.memory - learningMinS),
  ),
);
await section('memory stability', 'memory', shapes.minSeconds.memory, () =>
  runMemoryStability(
    shapes.memory,
    run,
    Math.min(shapes.maxSeconds.memory, budget.remaining() - learningMinS),
  ),
);
await section('same learning', 'learning', shapes.minSeconds.learning, () => {
  const tokens = readSampleTokens(dirname(fileURLToPath(import.meta.url)));
  if (!tokens) throw new Skip('the kit was built without sample tokens (see BUILD.json notes)');
  return runSameLearning(
    shapes.learning,
    tokens,
    run,
    Math.min(shapes.maxSeconds.learning, budget.remaining()),
    Skip,
  );
});

doc.complete = doc.sections.every((s) => s.status === 'ok' || s.note === 'not among --sections');
doc.finished_at = new Date().toISOString();
save();
printSummary(doc, log);
log(`results: ${values.out}`);
try {
  await releaseWebGpuDevice();
} catch (e) {
  log(`releasing the device failed: ${e instanceof Error ? e.message : String(e)}`);
}
process.exit(doc.sections.some((s) => s.status === 'failed') ? 1 : 0);
