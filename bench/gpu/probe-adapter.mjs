// Raw WebGPU probe (no tfjs), run from bench/gpu after build.mjs: the adapter's features and subgroup-matrix
// configs with and without Dawn's unsafe APIs, float subgroup-matrix matmuls where offered, and f32 vs packed-f16
// GEMV bandwidth. Usage: node bench/gpu/probe-adapter.mjs [probe.json]
import { writeFileSync } from 'node:fs';
import { create, globals } from './dist/node_modules/webgpu/index.js';

Object.assign(globalThis, globals);
const out = { adapters: [], tests: [] };
const outFile = process.argv[2] ?? 'probe.json';
const save = () => writeFileSync(outFile, JSON.stringify(out, null, 1));
const log = (...a) => console.log(...a);
const push = (rec, key, value) => {
  rec[key] = rec[key] ?? [];
  rec[key].push(value);
};

function infoOf(adapter) {
  const i = adapter.info ?? {};
  const o = {};
  for (const k of [
    'vendor',
    'architecture',
    'device',
    'description',
    'subgroupMinSize',
    'subgroupMaxSize',
    'isFallbackAdapter',
  ])
    o[k] = i[k];
  try {
    o.subgroupMatrixConfigs = (i.subgroupMatrixConfigs ?? []).map((c) => ({
      componentType: c.componentType,
      resultComponentType: c.resultComponentType,
      M: c.M,
      N: c.N,
      K: c.K,
    }));
  } catch (e) {
    o.subgroupMatrixConfigsError = String(e);
  }
  return o;
}

let adapter;
for (const flags of [[], ['enable-dawn-features=allow_unsafe_apis']]) {
  const gpu = create(flags);
  const a = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!a) {
    out.adapters.push({ flags, none: true });
    continue;
  }
  const rec = { flags, info: infoOf(a), features: [...a.features].sort() };
  out.adapters.push(rec);
  log('adapter', JSON.stringify(rec));
  adapter = a;
}
save();
const want = ['shader-f16', 'subgroups', 'chromium-experimental-subgroup-matrix', 'timestamp-query'];
const requiredFeatures = want.filter((f) => adapter.features.has(f));
const L = adapter.limits;
const device = await adapter.requestDevice({
  requiredFeatures,
  requiredLimits: {
    maxComputeWorkgroupStorageSize: L.maxComputeWorkgroupStorageSize,
    maxStorageBufferBindingSize: L.maxStorageBufferBindingSize,
    maxBufferSize: L.maxBufferSize,
    maxComputeInvocationsPerWorkgroup: L.maxComputeInvocationsPerWorkgroup,
    maxComputeWorkgroupSizeX: L.maxComputeWorkgroupSizeX,
  },
});
out.device_features = [...device.features].sort();
log('device features', out.device_features.join(','));
const sgSize = adapter.info.subgroupMaxSize ?? 32;

function buf(data, usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST) {
  const b = device.createBuffer({ size: Math.max(16, data.byteLength), usage });
  device.queue.writeBuffer(b, 0, data);
  return b;
}
async function read(b, bytes) {
  const r = device.createBuffer({ size: bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const e = device.createCommandEncoder();
  e.copyBufferToBuffer(b, 0, r, 0, bytes);
  device.queue.submit([e.finish()]);
  await r.mapAsync(GPUMapMode.READ);
  const f = new Float32Array(r.getMappedRange().slice(0));
  r.unmap();
  r.destroy();
  return f;
}
async function pipeline(code, label) {
  device.pushErrorScope('validation');
  const module = device.createShaderModule({ code, label });
  const ci = await module.getCompilationInfo();
  const msgs = ci.messages
    .filter((m) => m.type === 'error')
    .map((m) => `${m.lineNum}:${m.linePos} ${m.message}`);
  let p;
  try {
    p = await device.createComputePipelineAsync({ layout: 'auto', compute: { module, entryPoint: 'main' } });
  } catch (e) {
    msgs.push(String(e.message ?? e));
  }
  const err = await device.popErrorScope();
  if (err) msgs.push(err.message);
  if (msgs.length) throw new Error(`${label}: ${msgs.join(' | ').slice(0, 1500)}`);
  return p;
}
async function time(p, bindings, grid, iters) {
  const bg = device.createBindGroup({
    layout: p.getBindGroupLayout(0),
    entries: bindings.map((b, i) => ({ binding: i, resource: { buffer: b } })),
  });
  const run = async (n) => {
    const e = device.createCommandEncoder();
    for (let i = 0; i < n; i++) {
      const pass = e.beginComputePass();
      pass.setPipeline(p);
      pass.setBindGroup(0, bg);
      pass.dispatchWorkgroups(...grid);
      pass.end();
    }
    device.queue.submit([e.finish()]);
    await device.queue.onSubmittedWorkDone();
  };
  await run(2);
  const t0 = performance.now();
  await run(iters);
  return (performance.now() - t0) / 1000 / iters;
}
function rand(n, seed) {
  const a = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (s * 1664525 + 1013904223) >>> 0;
    a[i] = (s / 2 ** 32) * 2 - 1;
  }
  return a;
}
function refMatmul(A, B, M, N, K) {
  const C = new Float64Array(M * N);
  for (let i = 0; i < M; i++)
    for (let k = 0; k < K; k++) {
      const a = A[i * K + k];
      for (let j = 0; j < N; j++) C[i * N + j] += a * B[k * N + j];
    }
  return C;
}

// --- subgroup-matrix matmul: C[M,N] = A[M,K] B[K,N], f32 in memory, f16 (or f32) multiply, f32 accumulate.
function smmShader(cfg, t, useBuiltinSgId) {
  const { M: m, N: n, K: k } = cfg;
  const ct = cfg.componentType; // 'f16' | 'f32'
  const rt = cfg.resultComponentType;
  const WG = t.SGM * t.SGN * sgSize;
  const SM = t.BM / t.SGM,
    SN = t.BN / t.SGN;
  const TM = SM / m,
    TN = SN / n;
  const lines = [];
  if (ct === 'f16' || rt === 'f16') lines.push('enable f16;');
  lines.push('enable chromium_experimental_subgroup_matrix;');
  lines.push(`
@group(0) @binding(0) var<storage, read> A: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> B: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> C: array<${rt}>;
@group(0) @binding(3) var<uniform> dims: vec4<u32>;
var<workgroup> tA: array<${ct}, ${t.BM * t.BK}>;
var<workgroup> tB: array<${ct}, ${t.BK * t.BN}>;
@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wg: vec3<u32>${useBuiltinSgId ? ', @builtin(subgroup_id) sgid: u32' : ''}) {
  let M = dims.x; let N = dims.y; let K = dims.z;
  let sg = ${useBuiltinSgId ? 'sgid' : `li / ${sgSize}u`};
  let row0 = wg.y * ${t.BM}u; let col0 = wg.x * ${t.BN}u;
  let sgRow = (sg / ${t.SGN}u) * ${SM}u; let sgCol = (sg % ${t.SGN}u) * ${SN}u;`);
  for (let i = 0; i < TM; i++)
    for (let j = 0; j < TN; j++) lines.push(`  var acc${i}_${j}: subgroup_matrix_result<${rt}, ${n}, ${m}>;`);
  lines.push(`
  for (var k0 = 0u; k0 < K; k0 += ${t.BK}u) {
    for (var i = li; i < ${(t.BM * t.BK) / 4}u; i += ${WG}u) {
      let r = i / ${t.BK / 4}u; let c = (i % ${t.BK / 4}u) * 4u;
      let v = A[((row0 + r) * K + k0 + c) / 4u];
      let o = r * ${t.BK}u + c;
      tA[o] = ${ct}(v.x); tA[o + 1u] = ${ct}(v.y); tA[o + 2u] = ${ct}(v.z); tA[o + 3u] = ${ct}(v.w);
    }
    for (var i = li; i < ${(t.BK * t.BN) / 4}u; i += ${WG}u) {
      let r = i / ${t.BN / 4}u; let c = (i % ${t.BN / 4}u) * 4u;
      let v = B[((k0 + r) * N + col0 + c) / 4u];
      let o = r * ${t.BN}u + c;
      tB[o] = ${ct}(v.x); tB[o + 1u] = ${ct}(v.y); tB[o + 2u] = ${ct}(v.z); tB[o + 3u] = ${ct}(v.w);
    }
    workgroupBarrier();`);
  for (let kk = 0; kk < t.BK; kk += k) {
    for (let i = 0; i < TM; i++)
      lines.push(
        `    let l${i}_${kk} = subgroupMatrixLoad<subgroup_matrix_left<${ct}, ${k}, ${m}>>(&tA, (sgRow + ${i * m}u) * ${t.BK}u + ${kk}u, false, ${t.BK}u);`,
      );
    for (let j = 0; j < TN; j++)
      lines.push(
        `    let r${j}_${kk} = subgroupMatrixLoad<subgroup_matrix_right<${ct}, ${n}, ${k}>>(&tB, ${kk}u * ${t.BN}u + sgCol + ${j * n}u, false, ${t.BN}u);`,
      );
    for (let i = 0; i < TM; i++)
      for (let j = 0; j < TN; j++)
        lines.push(
          `    acc${i}_${j} = subgroupMatrixMultiplyAccumulate(l${i}_${kk}, r${j}_${kk}, acc${i}_${j});`,
        );
  }
  lines.push('    workgroupBarrier();\n  }');
  for (let i = 0; i < TM; i++)
    for (let j = 0; j < TN; j++)
      lines.push(
        `  subgroupMatrixStore(&C, (row0 + sgRow + ${i * m}u) * N + col0 + sgCol + ${j * n}u, acc${i}_${j}, false, N);`,
      );
  lines.push('}');
  return { code: lines.join('\n'), WG };
}

async function testSmm(cfg, t) {
  const name = `smm ${cfg.componentType}->${cfg.resultComponentType} ${cfg.M}x${cfg.N}x${cfg.K} tile ${t.BM}x${t.BN}x${t.BK} sg ${t.SGM}x${t.SGN}`;
  const rec = { name, cfg, tile: t };
  out.tests.push(rec);
  try {
    let p, sh;
    for (const builtin of [false, true]) {
      sh = smmShader(cfg, t, builtin);
      try {
        p = await pipeline(sh.code, name);
        rec.sg_id = builtin ? 'builtin' : 'li/sgSize';
        break;
      } catch (e) {
        push(rec, 'compile_errors', String(e.message).slice(0, 1500));
      }
    }
    if (!p) {
      rec.status = 'compile_failed';
      rec.code = sh.code.slice(0, 3000);
      return;
    }
    // correctness at 256 (and a non-square 256x512x384)
    for (const [M, N, K] of [
      [256, 256, 256],
      [256, 512, 384],
    ]) {
      const A = rand(M * K, 1),
        B = rand(K * N, 2);
      const bA = buf(A),
        bB = buf(B),
        bC = buf(new Float32Array(M * N)),
        bD = buf(new Uint32Array([M, N, K, 0]), GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
      const bg = device.createBindGroup({
        layout: p.getBindGroupLayout(0),
        entries: [bA, bB, bC, bD].map((b, i) => ({ binding: i, resource: { buffer: b } })),
      });
      const e = device.createCommandEncoder();
      const pass = e.beginComputePass();
      pass.setPipeline(p);
      pass.setBindGroup(0, bg);
      pass.dispatchWorkgroups(N / t.BN, M / t.BM);
      pass.end();
      device.queue.submit([e.finish()]);
      const got = await read(bC, M * N * 4);
      const ref = refMatmul(A, B, M, N, K);
      let maxErr = 0,
        maxRef = 0;
      for (let i = 0; i < ref.length; i++) {
        maxErr = Math.max(maxErr, Math.abs(got[i] - ref[i]));
        maxRef = Math.max(maxRef, Math.abs(ref[i]));
      }
      push(rec, 'check', { M, N, K, max_abs_err: maxErr, max_abs_ref: maxRef, rel: maxErr / maxRef });
      [bA, bB, bC, bD].forEach((b) => {
        b.destroy();
      });
    }
    for (const n of [2048, 4096, 8192]) {
      const A = rand(n * n, 3),
        B = rand(n * n, 4);
      const bA = buf(A),
        bB = buf(B),
        bC = buf(new Float32Array(n * n)),
        bD = buf(new Uint32Array([n, n, n, 0]), GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
      const s = await time(p, [bA, bB, bC, bD], [n / t.BN, n / t.BM, 1], n >= 8192 ? 5 : 20);
      push(rec, 'perf', { n, ms: s * 1e3, tflops: (2 * n ** 3) / s / 1e12 });
      [bA, bB, bC, bD].forEach((b) => {
        b.destroy();
      });
    }
    rec.status = 'ok';
  } catch (e) {
    rec.status = 'failed';
    rec.error = String(e.message ?? e).slice(0, 2000);
  }
  log(JSON.stringify(rec).slice(0, 1500));
  save();
}

// --- GEMV y[N] = x[K] W[K,N]: f32 weights vs packed f16 weights (two halves per u32, unpack2x16float: core WGSL).
function gemvShader(packed) {
  return `
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> W: array<${packed ? 'vec2<u32>' : 'vec4<f32>'}>;
@group(0) @binding(2) var<storage, read_write> y: array<vec4<f32>>;
@group(0) @binding(3) var<uniform> dims: vec4<u32>;
var<workgroup> part: array<vec4<f32>, 256>;
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wg: vec3<u32>) {
  let N4 = dims.y / 4u; let K = dims.z;
  let c = wg.x * 64u + (li % 64u);
  let slice = li / 64u;
  var acc = vec4<f32>(0.0);
  if (c < N4) {
    for (var k = slice; k < K; k += 4u) {
      ${packed ? 'let w = W[k * N4 + c]; let v = vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y));' : 'let v = W[k * N4 + c];'}
      acc += x[k] * v;
    }
  }
  part[li] = acc;
  workgroupBarrier();
  if (slice == 0u && c < N4) { y[c] = part[li] + part[li + 64u] + part[li + 128u] + part[li + 192u]; }
}`;
}
function packF16(W) {
  const u16 = new Uint16Array(W.length);
  const f = new Float32Array(1),
    u = new Uint32Array(f.buffer);
  for (let i = 0; i < W.length; i++) {
    f[0] = W[i];
    const b = u[0];
    const s = (b >>> 16) & 0x8000;
    const e = ((b >>> 23) & 0xff) - 127 + 15;
    const mnt = b & 0x7fffff;
    if (e <= 0) u16[i] = s;
    else if (e >= 31) u16[i] = s | 0x7c00;
    else {
      let h = s | (e << 10) | (mnt >>> 13);
      const rem = mnt & 0x1fff;
      if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++;
      u16[i] = h;
    }
  }
  return new Uint32Array(u16.buffer);
}
async function testGemv() {
  for (const packed of [false, true]) {
    const rec = { name: `gemv ${packed ? 'f16-packed' : 'f32'}` };
    out.tests.push(rec);
    try {
      const p = await pipeline(gemvShader(packed), rec.name);
      for (const [K, N] of [
        [2048, 8192],
        [2048, 50432],
        [8192, 2048],
      ]) {
        const x = rand(K, 5),
          W = rand(K * N, 6);
        const Wb = packed ? packF16(W) : W;
        const bx = buf(x),
          bW = buf(Wb),
          by = buf(new Float32Array(N)),
          bD = buf(new Uint32Array([1, N, K, 0]), GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
        const grid = [Math.ceil(N / 4 / 64), 1, 1];
        const s = await time(p, [bx, bW, by, bD], grid, 50);
        const got = await read(by, N * 4);
        let maxErr = 0;
        for (let j = 0; j < Math.min(N, 512); j++) {
          let r = 0;
          for (let k = 0; k < K; k++) r += x[k] * W[k * N + j];
          maxErr = Math.max(maxErr, Math.abs(r - got[j]));
        }
        push(rec, 'perf', {
          K,
          N,
          us: s * 1e6,
          gbps: Wb.byteLength / s / 1e9,
          max_abs_err_first512: maxErr,
        });
        [bx, bW, by, bD].forEach((b) => {
          b.destroy();
        });
      }
      rec.status = 'ok';
    } catch (e) {
      rec.status = 'failed';
      rec.error = String(e.message ?? e).slice(0, 2000);
    }
    log(JSON.stringify(rec));
    save();
  }
}

await testGemv();
const cfgs = (adapter.info.subgroupMatrixConfigs ?? []).map((c) => ({
  componentType: c.componentType,
  resultComponentType: c.resultComponentType,
  M: c.M,
  N: c.N,
  K: c.K,
}));
const picks = [];
for (const c of cfgs)
  if (c.resultComponentType === 'f32' && (c.componentType === 'f16' || c.componentType === 'f32'))
    picks.push(c);
for (const c of picks.slice(0, 3)) {
  const tiles = [
    { BM: 64, BN: 64, BK: 32, SGM: 2, SGN: 2 },
    { BM: 128, BN: 128, BK: 32, SGM: 2, SGN: 4 },
  ].filter((t) => (t.BM / t.SGM) % c.M === 0 && (t.BN / t.SGN) % c.N === 0 && t.BK % c.K === 0);
  for (const t of tiles) await testSmm(c, t);
}
out.done = true;
save();
log('probe done');
