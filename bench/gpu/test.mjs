// The GPU kit's own test: builds the kit into a temporary directory outside the repository (so nothing but the
// kit itself can be resolved), runs its run.sh --tiny on whatever adapter Vulkan offers (SwiftShader here) with
// the bundled Vulkan loader, and checks the JSON. Prints one "ok ..." or "FAIL ..." line per check.
// Usage: node bench/gpu/test.mjs [--keep]   (needs `pnpm build` first)
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { nominalPeak } from './adapter.mjs';
import { pickBest, SWEEP_CONFIGS } from './flag-sweep.mjs';
import { isFlat, summarizeSamples } from './memory-stability.mjs';
import { planLayers } from './model-stage.mjs';
import { addPytorchRatios, mergePytorch, pytorchSection } from './pytorch-section.mjs';
import { kitShapes } from './shapes.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const SWIFTSHADER = '/usr/lib/chromium/vk_swiftshader_icd.json';
// Sections stop early when done; the budget only has to leave the model stages room beside the reserves of the
// later sections on a slow, shared machine.
const BUDGET_S = 720;
let failures = 0;

function check(name, pass, detail = '') {
  if (pass) console.log(`ok ${name}`);
  else {
    failures++;
    console.log(`FAIL ${name}${detail ? `: ${detail}` : ''}`);
  }
  return pass;
}

const positive = (v) => typeof v === 'number' && Number.isFinite(v) && v > 0;

// The python run.sh would find with torch: $PYTHON, python3 on PATH, the system's; null when none imports it.
function pythonWithTorch() {
  for (const py of [process.env.PYTHON, 'python3', '/usr/bin/python3'].filter(Boolean)) {
    if (spawnSync(py, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0) return py;
  }
  return null;
}
const torchPython = pythonWithTorch();

const tmp = mkdtempSync(join(os.tmpdir(), 'mptjs-gpu-kit-'));
const kit = join(tmp, 'kit');

/** `run.sh --tiny` with `args`, writing `outName` in the temporary directory: the process and the JSON (or null). */
function runTinyKit(outName, args, runEnv, timeoutS) {
  const outFile = join(tmp, outName);
  const run = spawnSync(
    'bash',
    [join(kit, 'run.sh'), '--tiny', '--node', process.execPath, '--out', outFile, ...args],
    { encoding: 'utf8', env: runEnv, cwd: tmp, timeout: timeoutS * 1000 },
  );
  return { run, doc: existsSync(outFile) ? JSON.parse(readFileSync(outFile, 'utf8')) : null };
}
const out = join(tmp, 'result.json');
const env = { ...process.env };
if (!env.VK_ICD_FILENAMES && existsSync(SWIFTSHADER)) env.VK_ICD_FILENAMES = SWIFTSHADER;
// Exercise the path a GPU box without a Vulkan loader takes.
env.MPTJS_KIT_BUNDLED_VULKAN = '1';
// An override reaches the bundled selectBackend through run.sh, beside mptjs's webgpu defaults.
env.MPTJS_TFJS_FLAGS = 'WEBGPU_CPU_FORWARD=true';

// The parts a SwiftShader run cannot reach: datasheet peaks by adapter name, and measuring fewer mpt-1b layers
// when the full depth does not fit the time left.
check('nominal peak: H100 SXM', nominalPeak('nvidia hopper NVIDIA H100 80GB HBM3')?.tflops === 67);
check('nominal peak: H100 PCIe', nominalPeak('NVIDIA H100 PCIe')?.tflops === 51);
check('nominal peak: H200', nominalPeak('NVIDIA H200')?.tflops === 67);
check('nominal peak: unknown adapter', nominalPeak('google swiftshader') === null);
{
  const mpt1b = kitShapes(false).models[1];
  // 2 TFLOP/s of model FLOPs, 50M params/s of init, 1 ns of decode per parameter.
  const rates = { modelFlopsPerS: 2e12, initParamsPerS: 5e7, decodeSecondsPerParam: 1e-9 };
  const roomy = planLayers(mpt1b, rates, { secondsLeft: 3600, repeats: 3 });
  check('1b plan: all 24 layers when time allows', roomy.layers === 24, JSON.stringify(roomy));
  const tight = planLayers(mpt1b, rates, { secondsLeft: 60, repeats: 3 });
  check(
    '1b plan: fewer layers when time is short',
    tight.layers < 24 && tight.layers >= 1 && 1.5 * tight.estimate_s <= 60,
    JSON.stringify(tight),
  );
  check(
    '1b plan: all layers without rates',
    planLayers(mpt1b, null, { secondsLeft: 1, repeats: 3 }).layers === 24,
  );
}
{
  // The sweep's ranking: per workload, and overall by the geometric mean of both speedups.
  const f = (name, train, decode) => ({
    name,
    flags: { WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE: train },
    train_tokens_per_s: train,
    decode_tokens_per_s: decode,
  });
  const best = pickBest([
    f('base', 100, 10),
    f('fast train', 150, 9),
    f('fast decode', 95, 20),
    { name: 'x', error: 'e' },
  ]);
  check(
    'sweep: best per workload and overall',
    best?.train === 'fast train' &&
      best.decode === 'fast decode' &&
      best.overall === 'fast decode' &&
      Math.abs(best.overall_speedup - Math.sqrt(0.95 * 2)) < 1e-9 &&
      best.mptjs_tfjs_flags === 'WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE=95',
    JSON.stringify(best),
  );
  check('sweep: nothing to rank', pickBest([{ name: 'x', skipped: 'out of time' }]) === null);
  // Memory: flat from the check step on, or not; one tensor more at step 15 makes it unstable.
  const sample = (step, numTensors) => ({ step, numTensors, numBytes: 4 * numTensors, numBytesInGPU: null });
  const flat = Array.from({ length: 20 }, (_, i) => sample(i + 1, i < 2 ? 10 + i : 50));
  const leak = flat.map((x) => (x.step >= 15 ? sample(x.step, 51) : x));
  const ok = summarizeSamples(flat, 10);
  const bad = summarizeSamples(leak, 10);
  check(
    'memory: flat after the first steps is stable',
    ok.stable === true && ok.growth_since_check.numTensors === 0 && ok.gpu_bytes_in_use_flat === null,
    JSON.stringify(ok),
  );
  check(
    'memory: one more tensor is not',
    bad.stable === false && bad.first_change_step.numTensors === 15 && bad.growth_since_check.numBytes === 4,
    JSON.stringify(bad),
  );
  check('memory: too few samples to judge', isFlat(flat.slice(0, 10), 'numTensors', 10) === null);
}

{
  // The PyTorch section: ratios per shape, precision and decode batch; the full-depth estimate when the kit
  // measured fewer layers; a stopped run keeps what it measured; no JSON is a failure; a skip says why.
  const e = (shape, precision, batch, tokens_per_s, status = 'ok') => ({
    shape,
    precision,
    batch,
    tokens_per_s,
    status,
  });
  const reference = {
    torch: '2.x',
    result: {
      train: [e('mpt-125m', 'fp32', 4, 400), e('mpt-125m', 'bf16', 4, 2000), e('mpt-1b', 'fp32', 2, 50)],
      decode: [e('mpt-125m', 'fp32', 1, 200), e('mpt-125m', 'bf16', 1, 250), e('mpt-125m', 'fp32', 16, 3000)],
    },
  };
  reference.result.train.push({ shape: 'mpt-1b', precision: 'bf16', batch: 2, status: 'skipped', note: 'x' });
  const trainSection = (name, tokens, layers, estimate) => ({
    name,
    kind: 'train',
    status: 'ok',
    result: {
      shape: { n_layers: layers, n_layers_full: 24, batch: name.endsWith('1b') ? 2 : 4 },
      tokens_per_s: tokens,
      tokens_per_s_full_estimate: estimate,
    },
  });
  const doc = {
    complete: true,
    sections: [
      trainSection('train mpt-125m', 100, 24),
      { name: 'decode mpt-125m', kind: 'decode', status: 'ok', result: { decode_tokens_per_s: 50 } },
      trainSection('train mpt-1b', 40, 12, 25),
      { name: 'decode mpt-1b', kind: 'decode', status: 'skipped', note: 'out of time budget' },
    ],
  };
  const section = pytorchSection({ reference, rc: 0, seconds: 12 });
  mergePytorch(doc, section);
  const [t125, d125, t1b] = doc.sections.map((s) => s.result);
  check(
    'pytorch: ratios per shape and precision',
    section.status === 'ok' &&
      t125.vs_pytorch_fp32 === 0.25 &&
      t125.vs_pytorch_bf16 === 0.05 &&
      d125.vs_pytorch_fp32 === 0.25 &&
      d125.vs_pytorch_bf16 === 0.2,
    JSON.stringify([t125, d125]),
  );
  check(
    'pytorch: fewer layers compare through the full-depth estimate; a skipped figure gives null',
    t1b.vs_pytorch_fp32 === 0.5 && t1b.vs_pytorch_bf16 === null && /estimate/.test(t1b.vs_pytorch_basis),
    JSON.stringify(t1b),
  );
  check(
    'pytorch: section added, skipped figures noted, complete follows the sections',
    doc.sections.at(-1).name === 'pytorch' &&
      /1 of 7 measurements skipped/.test(section.note) &&
      doc.complete === false,
    JSON.stringify({ note: section.note, complete: doc.complete }),
  );
  const decode16 = {
    name: 'decode mpt-125m batch 16',
    kind: 'decode',
    status: 'ok',
    result: { decode_tokens_per_s: 600, decode_tokens_per_s_recorded: 1500, batch: 16 },
  };
  addPytorchRatios([decode16], reference.result);
  check(
    'pytorch: decode compares the same shape and batch, the recorded step too',
    decode16.result.vs_pytorch_fp32 === 0.2 &&
      decode16.result.vs_pytorch_bf16 === null &&
      decode16.result.vs_pytorch_fp32_recorded === 0.5 &&
      decode16.result.vs_pytorch_bf16_recorded === null,
    JSON.stringify(decode16.result),
  );
  const stopped = pytorchSection({ reference, rc: 124 });
  const crashed = pytorchSection({ reference: null, rc: 1, logTail: 'a\nRuntimeError: CUDA error' });
  const skipped = pytorchSection({ skip: 'torch does not import' });
  check(
    'pytorch: stopped at its budget keeps its figures; no result is a failure; a skip says why',
    stopped.status === 'ok' &&
      /stopped at its budget/.test(stopped.note) &&
      crashed.status === 'failed' &&
      /status 1 without a result: a\nRuntimeError: CUDA error/.test(crashed.error) &&
      skipped.status === 'skipped' &&
      skipped.note === 'torch does not import',
    JSON.stringify([stopped.note, crashed.error, skipped]),
  );
  // The reference's shapes are the kit's.
  if (torchPython) {
    const printed = spawnSync(torchPython, [join(here, 'pytorch_reference.py'), '--print-shapes'], {
      encoding: 'utf8',
    });
    let shapes = null;
    try {
      shapes = JSON.parse(printed.stdout);
    } catch {
      // Reported by the check below.
    }
    const same = (mode, tiny) => {
      const kit = kitShapes(tiny);
      const py = shapes?.[mode];
      return (
        py?.decode.prompt === kit.decode.prompt &&
        py.decode.new_tokens === kit.decode.newTokens &&
        JSON.stringify(py.models) ===
          JSON.stringify(
            kit.models.map((m) => ({
              name: m.name,
              d_model: m.dModel,
              n_layers: m.nLayers,
              n_heads: m.nHeads,
              vocab: m.vocab,
              seq: m.seq,
              batch: m.batch,
            })),
          )
      );
    };
    check(
      'pytorch reference uses the kit shapes',
      same('full', false) && same('tiny', true),
      `${printed.stdout}${printed.stderr}`.slice(0, 2000),
    );
  } else {
    console.log('# no python3 with torch here: the PyTorch section is only checked as skipped');
  }
}

try {
  const build = spawnSync(process.execPath, [join(here, 'build.mjs'), '--out', kit], { encoding: 'utf8' });
  const built = check('kit builds', build.status === 0, `${build.stderr}${build.stdout}`.trim().slice(-2000));
  for (const f of [
    'mptjs-gpu-kit.mjs',
    'run.sh',
    'node_modules/webgpu/dist/linux-x64/dawn.node',
    'lib/libvulkan.so.1',
    'pytorch_reference.py',
    'pytorch-merge.mjs',
  ]) {
    check(`kit holds ${f}`, existsSync(join(kit, f)));
  }
  if (!built) throw new Error('no kit to run');

  const bad = spawnSync('bash', [join(kit, 'run.sh'), '--budget-s', 'soon'], { encoding: 'utf8', env });
  check(
    'run.sh rejects a bad budget',
    bad.status === 2 && /whole number of seconds/.test(bad.stderr),
    bad.stderr,
  );

  const badPt = spawnSync('bash', [join(kit, 'run.sh'), '--pytorch-budget-s', '1m'], {
    encoding: 'utf8',
    env,
  });
  check(
    'run.sh rejects a bad PyTorch budget',
    badPt.status === 2 && /--pytorch-budget-s must be a whole number/.test(badPt.stderr),
    badPt.stderr,
  );
  // Without a python the section is skipped with the reason, and the WebGPU sections still run.
  const { run: noPy, doc: noPyDoc } = runTinyKit(
    'no-python.json',
    ['--sections', 'pytorch,matmul', '--python', join(tmp, 'no-such-python3')],
    env,
    300,
  );
  const noPySection = noPyDoc?.sections.find((s) => s.name === 'pytorch');
  check(
    'pytorch: skipped with the reason when there is no python',
    noPy.status === 0 &&
      noPySection?.status === 'skipped' &&
      /no python at/.test(noPySection.note) &&
      noPyDoc.sections.find((s) => s.name === 'matmul')?.status === 'ok' &&
      noPyDoc.complete === false,
    `${noPy.stdout}${noPy.stderr}`.slice(-2000),
  );

  const t0 = performance.now();
  const run = spawnSync(
    'bash',
    [
      join(kit, 'run.sh'),
      '--tiny',
      '--node',
      process.execPath,
      '--out',
      out,
      '--budget-s',
      String(BUDGET_S),
      // The same-learning run needs an f16 GEMM, which SwiftShader has only as the scalar engine: its own run below.
      '--sections',
      'pytorch,matmul,f16,models,profile,int8,attention,serve,flags,memory',
      ...(torchPython ? ['--python', torchPython] : []),
    ],
    { encoding: 'utf8', env, cwd: tmp, timeout: (BUDGET_S + 60) * 1000 },
  );
  const wallS = (performance.now() - t0) / 1000;
  const log = `${run.stdout}${run.stderr}`;
  // The kit's own table, kept out of the ok/FAIL count.
  for (const line of run.stdout.split('\n').filter((l) => l.startsWith('[gpu-kit]')))
    console.log(`# ${line}`);
  check('run.sh --tiny exits 0', run.status === 0, `status ${run.status}\n${log.slice(-3000)}`);
  check(
    'run.sh uses the bundled Vulkan loader',
    log.includes('(bundled; none installed here)'),
    log.slice(0, 500),
  );
  check(
    'run.sh prints the adapter and a summary',
    /adapter: \S/.test(log) && /elapsed [\d.]+ s of a/.test(log),
  );
  check(`finished within the ${BUDGET_S} s budget`, wallS < BUDGET_S, `${wallS.toFixed(0)} s`);

  const doc = existsSync(out) ? JSON.parse(readFileSync(out, 'utf8')) : null;
  if (!check('run.sh writes the JSON result', doc !== null)) throw new Error('no result');
  // Without torch the PyTorch section is skipped, so the run is not complete.
  check(
    'result is complete and within budget',
    doc.complete === (torchPython !== null) && doc.within_budget === true,
    JSON.stringify({ complete: doc.complete, within_budget: doc.within_budget }),
  );
  const a = doc.adapter ?? {};
  check(
    'adapter described',
    typeof a.vendor === 'string' && typeof a.description === 'string' && (a.vendor || a.description) !== '',
  );
  check('adapter features and limits', Array.isArray(a.features) && positive(a.limits?.maxBufferSize));
  check('ICD recorded', typeof doc.environment?.vulkan_icd === 'string');

  const byName = new Map(doc.sections.map((s) => [s.name, s]));
  const expected = {
    matmul: (r) => [r.peak_tflops, ...r.results.map((m) => m.tflops)],
    'train mpt-125m': (r) => [
      r.tokens_per_s,
      r.model_tflops,
      r.mfu_vs_measured_matmul,
      r.step.median_s,
      r.dispatches_per_step,
    ],
    'decode mpt-125m': (r) => [
      r.decode_tokens_per_s,
      r.prefill_tokens_per_s,
      r.ms_per_token,
      r.decode_tokens_per_s_recorded,
      r.recorded_host_ms_per_token,
      r.decode_tokens_per_s_recorded_f16,
      r.recorded_weight_bytes_per_token.f16,
    ],
    'train mpt-1b': (r) => [r.tokens_per_s, r.model_tflops, r.mfu_vs_measured_matmul, r.step.median_s],
    'decode mpt-1b': (r) => [r.decode_tokens_per_s, r.prefill_tokens_per_s, r.ms_per_token],
    'decode mpt-125m batch 16': (r) => [
      r.decode_tokens_per_s,
      r.batch1_tokens_per_s,
      r.speedup_over_batch1,
      r.speedup_over_single_sequence_step,
      r.dispatches_per_step,
    ],
    serve: (r) => [
      r.one_stream.tokens_per_s,
      r.many_streams.tokens_per_s,
      r.speedup,
      r.many_streams.ttft_p50_ms,
      r.mean_rows_per_step,
    ],
    attention: (r) => [r.fused.ms, r.plain.ms, r.speedup_fused_over_plain],
    profile: (r) => [r.gpu_kernel_ms_total, r.timed_calls, r.by_kernel[0].ms],
    int8: (r) => [
      ...r.linear.flatMap((l) => l.results.map((v) => v.ms)),
      ...r.decode.runs.map((d) => d.decode_tokens_per_s),
    ],
  };
  for (const [name, figures] of Object.entries(expected)) {
    const s = byName.get(name);
    if (!check(`section ${name} ran`, s?.status === 'ok', s ? (s.error ?? s.note) : 'missing')) continue;
    const values = figures(s.result);
    check(`section ${name} figures > 0`, values.every(positive), JSON.stringify(values));
  }
  const f16 = byName.get('f16 gemm')?.result;
  if (f16?.plan) {
    const flash = f16.flash_attention;
    // The probabilities are rounded to f16 (relative 2^-11) before P V: O stays well within 5e-3 of float32.
    check(
      'f16 flash attention: self-check passed with the GEMM engine, forward and backward timed, close to float32',
      flash?.engine === f16.plan.engine &&
        positive(flash.f16?.ms) &&
        positive(flash.f32?.ms) &&
        positive(flash.f16_with_backward?.ms) &&
        positive(flash.f32_with_backward?.ms) &&
        flash.rel_error_vs_f32 < 5e-3,
      JSON.stringify(flash),
    );
  }
  const decode = byName.get('decode mpt-125m')?.result;
  if (decode) {
    const d = decode.dispatches_per_token;
    check(
      'decode: the recorded step takes fewer dispatches and gives the tfjs greedy tokens',
      d?.recorded < d?.tfjs && decode.recorded_tokens_matching_tfjs === decode.new_tokens,
      JSON.stringify({ d, matching: decode.recorded_tokens_matching_tfjs }),
    );
  }
  const int8 = byName.get('int8')?.result;
  if (int8) {
    const errors = int8.linear.flatMap((l) => l.results.map((v) => v.max_rel_error));
    // int8 weights are off by half a step (1/254 of each row's max); W8A8 adds the activations' rounding.
    check(
      'int8 products match the float32 product',
      errors.every((e) => e < 0.05),
      JSON.stringify(errors),
    );
    check(
      'int8 decode ran float32 and int8 weights',
      int8.decode.runs
        .map((d) => d.weights)
        .join(',')
        .startsWith('float32,int8'),
      JSON.stringify(int8.decode.runs),
    );
  }
  const pytorch = byName.get('pytorch');
  if (torchPython) {
    if (check('section pytorch ran', pytorch?.status === 'ok', JSON.stringify(pytorch)?.slice(0, 2000))) {
      const r = pytorch.result;
      const keys = (list) => list.map((x) => `${x.shape} ${x.precision} ${x.batch}`).join(',');
      check(
        'pytorch: training of both shapes in fp32 and bf16',
        keys(r.train) === 'mpt-125m fp32 2,mpt-125m bf16 2,mpt-1b fp32 2,mpt-1b bf16 2' &&
          r.train.every((x) => positive(x.tokens_per_s) && positive(x.step_ms) && x.seq === 32),
        JSON.stringify(r.train),
      );
      check(
        'pytorch: decoding at batch 1 and 16 in fp32 and bf16',
        r.decode.length === 8 &&
          [1, 16].every((b) => r.decode.filter((x) => x.batch === b).length === 4) &&
          r.decode.every(
            (x) => positive(x.tokens_per_s) && x.new_tokens === kitShapes(true).decode.newTokens,
          ),
        JSON.stringify(r.decode),
      );
      check('pytorch: the tiny run takes under 30 s', pytorch.seconds < 30, String(pytorch.seconds));
      for (const name of ['train mpt-125m', 'decode mpt-125m', 'train mpt-1b', 'decode mpt-1b']) {
        const s = byName.get(name)?.result;
        check(
          `${name}: ratios to PyTorch fp32 and bf16`,
          positive(s?.vs_pytorch_fp32) && positive(s?.vs_pytorch_bf16),
          JSON.stringify([s?.vs_pytorch_fp32, s?.vs_pytorch_bf16]),
        );
      }
      check('pytorch: ratios printed', /train mpt-1b vs PyTorch fp32 +\d/.test(log));
    }
  } else {
    check(
      'section pytorch skipped without torch',
      pytorch?.status === 'skipped' && /torch does not import|no python/.test(pytorch.note),
      JSON.stringify(pytorch),
    );
  }
  const attn = byName.get('attention')?.result;
  if (attn) check('fused attention matches plain ops', attn.max_abs_diff < 1e-3, String(attn.max_abs_diff));

  const flags = doc.environment?.tfjs_flags ?? {};
  check(
    'mptjs webgpu defaults and MPTJS_TFJS_FLAGS applied',
    flags.WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE === 30 &&
      flags.WEBGPU_CPU_FORWARD === true &&
      log.includes('tfjs flags: WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE=30,WEBGPU_CPU_FORWARD=true'),
    JSON.stringify(flags),
  );
  const sweep = byName.get('webgpu flags');
  if (
    check('section webgpu flags ran', sweep?.status === 'ok', sweep ? (sweep.error ?? sweep.note) : 'missing')
  ) {
    const r = sweep.result;
    const measured = r.configs.filter(
      (c) => positive(c.train_tokens_per_s) && positive(c.decode_tokens_per_s),
    );
    check(
      'sweep: every configuration measured',
      r.configs.length === SWEEP_CONFIGS.length && measured.length === SWEEP_CONFIGS.length,
      JSON.stringify(
        r.configs.map((c) => [c.name, c.train_tokens_per_s, c.decode_tokens_per_s, c.error ?? c.skipped]),
      ),
    );
    // Each configuration ran with its own flags, and the sweep put the defaults back.
    const byConfig = new Map(r.configs.map((c) => [c.name, c.flags]));
    check(
      'sweep: flags set per configuration',
      byConfig.get('mptjs defaults')?.WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE === 30 &&
        byConfig.get('submit every 60')?.WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE === 60 &&
        byConfig.get('no cpu forward')?.WEBGPU_CPU_FORWARD === false &&
        byConfig.get('packed matmul only')?.WEBGPU_MATMUL_PROGRAM_TYPE === 3 &&
        byConfig.get('more matmul workgroups')?.WEBGPU_THRESHOLD_TO_INCREASE_WORKGROUPS_FOR_MATMUL === 64,
      JSON.stringify([...byConfig]),
    );
    check(
      'sweep: best configuration named with its flags',
      typeof r.best?.overall === 'string' &&
        /WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE=\d+/.test(r.best.mptjs_tfjs_flags),
      JSON.stringify(r.best),
    );
    check('sweep: printed', /flags: best overall/.test(log));
  }
  const memory = byName.get('memory stability');
  if (
    check(
      'section memory stability ran',
      memory?.status === 'ok',
      memory ? (memory.error ?? memory.note) : 'missing',
    )
  ) {
    const r = memory.result;
    check(
      `memory: stable over ${kitShapes(true).memory.steps} steps`,
      r.stable === true && r.steps_run === kitShapes(true).memory.steps,
      JSON.stringify({ ...r, samples: undefined }),
    );
    check(
      'memory: webgpu buffer counters sampled',
      r.samples.every(
        (x) => positive(x.numBytesInGPU) && positive(x.numBytesAllocatedInGPU) && positive(x.usedBuffers),
      ),
      JSON.stringify(r.samples),
    );
  }
  // fp32 against amp_fp16 on the kit's sample tokens, with the f16 GEMM's scalar engine (f16 rounding emulated).
  const { run: learningRun, doc: learningDoc } = runTinyKit(
    'learning.json',
    ['--sections', 'learning'],
    { ...env, MPTJS_F16_GEMM_ENGINE: 'scalar' },
    600,
  );
  const learning = learningDoc?.sections.find((s) => s.name === 'same learning');
  if (
    check(
      'section same learning ran',
      learningRun.status === 0 && learning?.status === 'ok',
      learning
        ? (learning.error ?? learning.note)
        : `status ${learningRun.status} ${learningRun.stderr.slice(-1000)}`,
    )
  ) {
    const r = learning.result;
    const spec = kitShapes(true).learning;
    check(
      `same learning: fp32 and amp_fp16 each trained ${spec.steps} steps on the sample tokens`,
      r.steps === spec.steps && r.fp32.steps === spec.steps && r.amp_fp16.steps === spec.steps,
      JSON.stringify({ steps: r.steps, note: r.note }),
    );
    check(
      'same learning: the loss fell and the two final losses are within 1%',
      r.fp32.final_loss < r.fp32.first_loss && r.within_1_percent === true,
      JSON.stringify({ fp32: r.fp32.final_loss, amp: r.amp_fp16.final_loss, rel: r.relative_difference }),
    );
  }
} catch (err) {
  check('GPU kit test', false, err instanceof Error ? err.message : String(err));
} finally {
  if (process.argv.includes('--keep')) console.log(`kept ${tmp}`);
  else rmSync(tmp, { recursive: true, force: true });
}
process.exit(failures === 0 ? 0 : 1);
