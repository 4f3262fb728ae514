/**
 * WGSL of the recorded decode step, one token of one sequence in float32. Every kernel has 256 threads per
 * workgroup; shapes are compile-time constants, and the only per-token input is the `Step` uniform.
 * With `batchRows` set, a generator writes the batched step's kernel instead: up to that many rows (one token of
 * each of several sequences) whose count, cache slots, positions and tokens come from the `Batch` uniform; rows
 * past the count are skipped, so one recording serves every batch size.
 * - `embedShader`: `x = wte[token] (+ wpe[pos])`, the token read from the device (the previous step's choice).
 * - `gemvShader`: `y = W v` over a `[N, K]` (`outIn`) or `[K, N]` (`inOut`) matrix, optionally with the
 *   LayerNorm of `v` as its prologue and a bias, clip, GELU, scale or residual add as its epilogue.
 * - `attentionShader`: one workgroup per head: QK-LayerNorm, the new key and value written into the cache at
 *   `pos`, then ALiBi causal attention of the query over positions `0..pos`.
 * - `argmaxShaders`: greedy choice in two passes (chunk maxima, then the maximum of those).
 * - `sampleShader`: one workgroup (per row, batched): temperature, top-k, top-p and the host generator's draw.
 */
import { GELU_SNIPPET } from '@mptjs/kernels';

export const THREADS = 256;
/**
 * Threads that share one row of an `outIn` matrix-vector product: 32, or fewer for a short row (a power of two
 * with at least one vec4 or float each), so a workgroup covers 256 / lanes rows at a time.
 */
export function lanesPerRow(k: number): number {
  const elements = k % 4 === 0 ? k / 4 : k;
  let lanes = 32;
  while (lanes > 4 && lanes > elements) lanes /= 2;
  return lanes;
}
/** Outputs per workgroup of an `inOut` matrix-vector product. */
const INOUT_COLUMNS = 64;
/** Most workgroups of an `outIn` matrix-vector product: enough to fill a large GPU several times over. */
export const MAX_GEMV_WORKGROUPS = 1024;
/** Logits per workgroup of the first arg-max pass. */
export const ARGMAX_CHUNK = 1024;

/** A float as a WGSL literal of abstract-float type. */
export function f32Literal(x: number): string {
  if (!Number.isFinite(x)) throw new RangeError(`cannot write ${x} as a WGSL constant`);
  const s = String(x);
  return /[.eE]/.test(s) ? s : `${s}.0`;
}

/** The per-token uniform: 32 bytes, written with `writeStepUniform`. */
export const STEP_STRUCT = `
struct Step {
  pos : u32,
  counter : u32,
  seed : u32,
  topK : u32,
  temperature : f32,
  topP : f32,
  pad0 : u32,
  pad1 : u32,
}`;

/** Bytes of the batched step's uniform for `rows` rows. */
export function batchUniformBytes(rows: number): number {
  return 16 * (rows + 1);
}

/**
 * The batched step's uniform: the live row count, then per row (cache slot, position decoded, input token, 0).
 * A uniform (not storage) buffer, so loops bounded by the count may hold barriers.
 */
export function batchStruct(rows: number): string {
  return `
struct Batch {
  count : u32,
  pad0 : u32,
  pad1 : u32,
  pad2 : u32,
  rows : array<vec4<u32>, ${rows}>,
}`;
}

/**
 * WGSL: `fn name(lid, v) -> type`, a tree reduction of one value per thread through the workgroup array `scratch`
 * with `combine(a, b)`; the result is read back uniform so later barriers may depend on it.
 */
function workgroupReduce(
  name: string,
  scratch: string,
  type: string,
  combine: (a: string, b: string) => string,
) {
  return `
fn ${name}(lid : u32, v : ${type}) -> ${type} {
  ${scratch}[lid] = v;
  workgroupBarrier();
  for (var s = ${THREADS / 2}u; s > 0u; s = s >> 1u) {
    if (lid < s) { ${scratch}[lid] = ${combine(`${scratch}[lid]`, `${scratch}[lid + s]`)}; }
    workgroupBarrier();
  }
  let r = workgroupUniformLoad(&${scratch}[0]);
  workgroupBarrier();
  return r;
}`;
}

/** Workgroup sums and maxima of f32 values. */
const REDUCE_SNIPPET = `
var<workgroup> red : array<f32, ${THREADS}>;
${workgroupReduce('reduceSum', 'red', 'f32', (a, b) => `${a} + ${b}`)}
${workgroupReduce('reduceMax', 'red', 'f32', (a, b) => `max(${a}, ${b})`)}`;

export interface EmbedShape {
  dModel: number;
  learnedPosEmb: boolean;
  /** The batched step's rows (binding 0 is then the `Batch` uniform and the tokens come from it). */
  batchRows?: number;
}

/** Bindings: 0 step, 1 wte, 2 token, 3 x, (4 wpe). Batched: 0 batch, 1 wte, 3 x `[rows, d]`, (4 wpe). */
export function embedShader(s: EmbedShape): string {
  const d = s.dModel;
  if (s.batchRows !== undefined) {
    return `${batchStruct(s.batchRows)}
@group(0) @binding(0) var<uniform> batch : Batch;
@group(0) @binding(1) var<storage, read> wte : array<f32>;
@group(0) @binding(3) var<storage, read_write> x : array<f32>;
${s.learnedPosEmb ? '@group(0) @binding(4) var<storage, read> wpe : array<f32>;' : ''}

@compute @workgroup_size(${THREADS})
fn main(@builtin(global_invocation_id) gid : vec3<u32>) {
  let r = gid.x / ${d}u;
  let i = gid.x % ${d}u;
  if (r >= batch.count) { return; }
  let row = batch.rows[r];
  var v = wte[row.z * ${d}u + i];
  ${s.learnedPosEmb ? `v = v + wpe[row.y * ${d}u + i];` : ''}
  x[r * ${d}u + i] = v;
}`;
  }
  return `${STEP_STRUCT}
@group(0) @binding(0) var<uniform> step : Step;
@group(0) @binding(1) var<storage, read> wte : array<f32>;
@group(0) @binding(2) var<storage, read> token : array<u32>;
@group(0) @binding(3) var<storage, read_write> x : array<f32>;
${s.learnedPosEmb ? '@group(0) @binding(4) var<storage, read> wpe : array<f32>;' : ''}

@compute @workgroup_size(${THREADS})
fn main(@builtin(global_invocation_id) gid : vec3<u32>) {
  let i = gid.x;
  if (i >= ${d}u) { return; }
  var v = wte[token[0] * ${d}u + i];
  ${s.learnedPosEmb ? `v = v + wpe[step.pos * ${d}u + i];` : ''}
  x[i] = v;
}`;
}

export type GemvEpilogue = 'store' | 'gelu' | 'residual';

export interface GemvShape {
  /** Input length (columns of an `outIn` matrix). */
  k: number;
  /** Output length. */
  n: number;
  layout: 'outIn' | 'inOut';
  /** LayerNorm of the input as the prologue (`ln` with `lnBias`), with this epsilon. */
  layerNorm: { eps: number; bias: boolean } | null;
  bias: boolean;
  /** `store` writes, `gelu` writes the activation, `residual` adds to what `y` holds. */
  epilogue: GemvEpilogue;
  clip: number | null;
  scale: number | null;
  /** The batched step's rows: `v` is `[rows, k]`, `y` `[rows, n]`, and binding 7 is the `Batch` uniform. */
  batchRows?: number;
  /**
   * How the weights are stored (default f32); `f16` binds the packed words `packHalvesShader` writes; `int8` an
   * `outIn` matrix of `@mptjs/kernels`' int8 rows (`rowBytes` each, a multiple of 16) with per-row scales at
   * binding 8.
   */
  weights?: StepWeightFormat;
  /** Bytes per int8 row (with `weights: 'int8'`). */
  rowBytes?: number;
}

/**
 * Bindings: 0 w, 1 v (input), 2 y (output), then 3 bias, 4 LayerNorm weight, 5 LayerNorm bias when present, and
 * 6 the same w read as vec4 (`gemvReadsVec4`).
 */
/** Whether `gemvShader` reads the weights as vec4 (binding 6 instead of 0). */
export function gemvReadsVec4(s: Pick<GemvShape, 'k' | 'layout'>): boolean {
  return s.layout === 'outIn' && s.k % 4 === 0;
}

/** How a matrix-vector product's weights are stored: float32, or two float16 halves packed per u32 word. */
export type WeightFormat = 'f32' | 'f16';
export const WEIGHT_FORMATS: readonly WeightFormat[] = ['f32', 'f16'];
/** What a recorded step reads: a `WeightFormat`, or an int8-quantized model's own int8 weights. */
export type StepWeightFormat = WeightFormat | 'int8';

/** Bytes of `elements` weights in `format` (f16 halves are packed two per word, the last word padded). */
export function weightBytes(elements: number, format: WeightFormat): number {
  return format === 'f16' ? 4 * Math.ceil(elements / 2) : 4 * elements;
}

interface WeightAccess {
  decl: string;
  helpers: string;
  /** Indices of `at` / `at4` from one row of an `outIn` matrix to the next. */
  stride: number;
  at(i: string): string;
  at4(i: string): string;
}

/**
 * The WGSL declaration of a product's weights and expressions reading element `i` (`at`) or the `i`th vec4
 * (`at4`, when `gemvReadsVec4`) as f32. Packed halves are unpacked with the core builtin `unpack2x16float`, so
 * no `shader-f16` feature is needed and the sums stay in f32. A row of an `outIn` matrix whose length is a
 * multiple of 4 starts on a whole `vec2<u32>`, so a vec4 of weights is one 8-byte load.
 */
function weightAccess(s: GemvShape): WeightAccess {
  const vec4 = gemvReadsVec4(s);
  const format = s.weights ?? 'f32';
  const stride = vec4 ? s.k / 4 : s.k;
  if (format === 'f32') {
    return {
      decl: vec4
        ? '@group(0) @binding(6) var<storage, read> w4 : array<vec4<f32>>;'
        : '@group(0) @binding(0) var<storage, read> w : array<f32>;',
      helpers: '',
      stride,
      at: (i) => `w[${i}]`,
      at4: (i) => `w4[${i}]`,
    };
  }
  if (format === 'int8') {
    const rowBytes = s.rowBytes;
    if (s.layout !== 'outIn' || rowBytes === undefined || rowBytes % 4 !== 0 || rowBytes < s.k) {
      throw new RangeError('int8 weights need an outIn layout and whole-word rows of at least k bytes');
    }
    // Signed bytes by shifts (the byte to the top, then an arithmetic shift down): no language extension needed.
    return {
      decl: `@group(0) @binding(${vec4 ? 6 : 0}) var<storage, read> w : array<u32>;
@group(0) @binding(8) var<storage, read> scales : array<f32>;`,
      helpers: vec4
        ? `fn weight4At(i : u32) -> vec4<f32> {
  let p = bitcast<i32>(w[i]);
  return vec4<f32>(vec4<i32>(p << 24u, p << 16u, p << 8u, p) >> vec4<u32>(24u));
}`
        : `fn weightAt(i : u32) -> f32 {
  return f32(bitcast<i32>(w[i >> 2u] << (24u - 8u * (i & 3u))) >> 24u);
}`,
      stride: vec4 ? rowBytes / 4 : rowBytes,
      at: (i) => `weightAt(${i})`,
      at4: (i) => `weight4At(${i})`,
    };
  }
  return {
    decl: vec4
      ? '@group(0) @binding(6) var<storage, read> w4 : array<vec2<u32>>;'
      : '@group(0) @binding(0) var<storage, read> w : array<u32>;',
    helpers: vec4
      ? `fn weight4At(i : u32) -> vec4<f32> {
  let p = w4[i];
  return vec4<f32>(unpack2x16float(p.x), unpack2x16float(p.y));
}`
      : `fn weightAt(i : u32) -> f32 {
  return unpack2x16float(w[i >> 1u])[i & 1u];
}`,
    stride,
    at: (i) => `weightAt(${i})`,
    at4: (i) => `weight4At(${i})`,
  };
}

/** Most workgroups of a pack dispatch (WebGPU allows 65535 a dimension); each thread strides over the rest. */
export const PACK_MAX_WORKGROUPS = 4096;

/**
 * Bindings: 0 the f32 source (`elements` floats), 1 the packed destination (`ceil(elements / 2)` words): word
 * `i` holds element `2i` in its low half and `2i + 1` (0 past the end) in its high half, as `unpack2x16float`
 * reads them. Run once when a decoder is built; `pack2x16float` rounds each float to a nearby half.
 */
export function packHalvesShader(elements: number): { code: string; workgroups: number } {
  const words = Math.ceil(elements / 2);
  const workgroups = Math.min(PACK_MAX_WORKGROUPS, Math.ceil(words / THREADS));
  const code = `
@group(0) @binding(0) var<storage, read> src : array<f32>;
@group(0) @binding(1) var<storage, read_write> dst : array<u32>;

@compute @workgroup_size(${THREADS})
fn main(@builtin(global_invocation_id) gid : vec3<u32>) {
  for (var i = gid.x; i < ${words}u; i += ${workgroups * THREADS}u) {
    let lo = src[2u * i];
    var hi = 0.0;
    if (2u * i + 1u < ${elements}u) { hi = src[2u * i + 1u]; }
    dst[i] = pack2x16float(vec2<f32>(lo, hi));
  }
}`;
  return { code, workgroups };
}

/** WGSL: the epilogue of a matrix-vector product, writing output `at` from `acc` (`bias[row]` added). */
function gemvWrite(s: GemvShape, at: string): string {
  const acc = s.weights === 'int8' ? 'acc * scales[row]' : 'acc';
  let value = s.bias ? `${acc} + bias[row]` : acc;
  if (s.clip !== null) value = `clamp(${value}, ${f32Literal(-s.clip)}, ${f32Literal(s.clip)})`;
  if (s.scale !== null) value = `(${value}) * ${f32Literal(s.scale)}`;
  if (s.epilogue === 'gelu') return `y[${at}] = gelu(${value});`;
  if (s.epilogue === 'residual') return `y[${at}] = y[${at}] + ${value};`;
  return `y[${at}] = ${value};`;
}

/**
 * WGSL: a product's module: its bindings (`v` and the LayerNorm weights as `vec4` with `vec4Inputs`; the batched
 * step's `Batch` at binding 7), the workgroup reductions, `workgroupVars`, GELU if used, and `main` running `body`
 * (after `count`, the live rows, when batched).
 */
function gemvModule(
  s: GemvShape,
  weights: WeightAccess,
  o: { vec4Inputs: boolean; workgroupVars: string; body: string },
): string {
  const input = o.vec4Inputs ? 'vec4<f32>' : 'f32';
  const batched = s.batchRows !== undefined;
  const decls = [
    ...(batched ? [batchStruct(s.batchRows as number)] : []),
    weights.decl,
    `@group(0) @binding(1) var<storage, read> v : array<${input}>;`,
    '@group(0) @binding(2) var<storage, read_write> y : array<f32>;',
    ...(batched ? ['@group(0) @binding(7) var<uniform> batch : Batch;'] : []),
  ];
  if (s.bias) decls.push('@group(0) @binding(3) var<storage, read> bias : array<f32>;');
  if (weights.helpers) decls.push(weights.helpers);
  if (s.layerNorm) decls.push(`@group(0) @binding(4) var<storage, read> lnWeight : array<${input}>;`);
  if (s.layerNorm?.bias) decls.push(`@group(0) @binding(5) var<storage, read> lnBias : array<${input}>;`);
  return `${decls.join('\n')}
${REDUCE_SNIPPET}
${o.workgroupVars}
${s.epilogue === 'gelu' ? GELU_SNIPPET : ''}

@compute @workgroup_size(${THREADS})
fn main(@builtin(local_invocation_index) lid : u32, @builtin(workgroup_id) wg : vec3<u32>) {${batched ? '\n  let count = batch.count;' : ''}
${o.body}
}`;
}

/**
 * WGSL: `mean` and `rstd` of `k` inputs (two-pass mean and biased variance, as the tfjs LayerNorm kernel), each
 * thread taking every ${THREADS}th of `reads` reads: `addSum` adds read `i` to `s1`, `addSquares` its squared
 * deviation from `mean` to `s2`.
 */
function layerNormStats(k: number, eps: number, reads: number, addSum: string, addSquares: string): string {
  return `var s1 = 0.0;
    for (var i = lid; i < ${reads}u; i += ${THREADS}u) { ${addSum} }
    let mean = reduceSum(lid, s1) / f32(${k});
    var s2 = 0.0;
    for (var i = lid; i < ${reads}u; i += ${THREADS}u) { ${addSquares} }
    let rstd = inverseSqrt(reduceSum(lid, s2) / f32(${k}) + ${f32Literal(eps)});`;
}

/**
 * WGSL: the batched prologue: each live row's LayerNorm mean and reciprocal deviation into `lnMean` and `lnRstd`
 * (inputs read as vec4 with `vec4Inputs`).
 */
function batchLayerNormStats(k: number, eps: number, vec4Inputs: boolean): string {
  const reads = vec4Inputs ? k / 4 : k;
  const x = `v[b * ${reads}u + i]`;
  const stats = vec4Inputs
    ? layerNormStats(
        k,
        eps,
        reads,
        `s1 += dot(${x}, vec4<f32>(1.0));`,
        `let c = ${x} - vec4<f32>(mean); s2 += dot(c, c);`,
      )
    : layerNormStats(k, eps, reads, `s1 += ${x};`, `let c = ${x} - mean; s2 += c * c;`);
  return `
  for (var b = 0u; b < count; b++) {
    ${stats}
    if (lid == 0u) { lnMean[b] = mean; lnRstd[b] = rstd; }
  }
  workgroupBarrier();`;
}

/** The batched prologue's workgroup arrays. */
function batchLayerNormVars(s: GemvShape, rows: number): string {
  return s.layerNorm
    ? `var<workgroup> lnMean : array<f32, ${rows}>;\nvar<workgroup> lnRstd : array<f32, ${rows}>;`
    : '';
}

/**
 * WGSL: the loop over an `outIn` matrix's rows: one row per group of `lanesPerRow(k)` threads (consecutive threads
 * read consecutive weights of the row, see `rowWeights`); a workgroup takes every `gemvWorkgroups`th block of
 * rows, so a long matrix repeats the prologue less. `body` runs for `row` (which may be past the end).
 */
function outInRows(s: GemvShape, body: string): string {
  const lanes = lanesPerRow(s.k);
  const perBlock = THREADS / lanes;
  return `
  let lane = lid % ${lanes}u;
  for (var block = wg.x; block < ${Math.ceil(s.n / perBlock)}u; block += ${gemvWorkgroups(s.n, s.layout, s.k)}u) {
    let row = block * ${perBlock}u + lid / ${lanes}u;
${body}
  }`;
}

/** WGSL: `use` for each of the thread's weights `wv` of row `row` (vec4s `i`, when `gemvReadsVec4`, else floats). */
function rowWeights(s: GemvShape, weights: WeightAccess, use: string): string {
  const vec4 = gemvReadsVec4(s);
  return `let base = row * ${weights.stride}u;
      for (var i = lane; i < ${vec4 ? s.k / 4 : s.k}u; i += ${lanesPerRow(s.k)}u) {
        let wv = ${vec4 ? weights.at4('base + i') : weights.at('base + i')};
        ${use}
      }`;
}

/**
 * WGSL: the row's first thread sums its group's partial sums `part` (through `red`: two barriers per block rather
 * than a tree of them) and writes the output with `write`.
 */
function outInRowSum(s: GemvShape, part: string, write: string): string {
  return `red[lid] = ${part};
    workgroupBarrier();
    if (lane == 0u && row < ${s.n}u) {
      var acc = 0.0;
      for (var j = 0u; j < ${lanesPerRow(s.k)}u; j++) { acc += red[lid + j]; }
      ${write}
    }
    workgroupBarrier();`;
}

/**
 * WGSL for an `inOut` matrix: ${INOUT_COLUMNS} outputs per workgroup, each summed by ${THREADS / INOUT_COLUMNS}
 * threads over interleaved inputs (consecutive threads read consecutive weights of one input row). `setup` starts
 * the thread's partial sums, `use` adds each of its weights `wv` (input `i`), and `finish` sums and writes them
 * (see `inOutColumnSum`).
 */
function inOutColumns(
  s: GemvShape,
  weights: WeightAccess,
  setup: string,
  use: string,
  finish: string,
): string {
  return `
  let column = lid % ${INOUT_COLUMNS}u;
  let slice = lid / ${INOUT_COLUMNS}u;
  let row = wg.x * ${INOUT_COLUMNS}u + column;
  ${setup}
  if (row < ${s.n}u) {
    for (var i = slice; i < ${s.k}u; i += ${THREADS / INOUT_COLUMNS}u) {
      let wv = ${weights.at(`i * ${s.n}u + row`)};
      ${use}
    }
  }
  ${finish}`;
}

/** WGSL: the column's first thread sums the partial sums `part` of its column and writes the output with `write`. */
function inOutColumnSum(s: GemvShape, part: string, write: string): string {
  return `red[lid] = ${part};
    workgroupBarrier();
    if (slice == 0u && row < ${s.n}u) {
      var acc = 0.0;
      for (var j = 0u; j < ${THREADS / INOUT_COLUMNS}u; j++) { acc += red[j * ${INOUT_COLUMNS}u + column]; }
      ${write}
    }`;
}

export function gemvShader(s: GemvShape): string {
  if (s.batchRows !== undefined) return gemvBatchShader(s, s.batchRows);
  const { k } = s;
  const weights = weightAccess(s);
  const ln = s.layerNorm;
  // The prologue normalizes the whole input into workgroup memory: every workgroup repeats it, which costs d reads
  // against its share of the weights.
  const prologue = ln
    ? `
  ${layerNormStats(k, ln.eps, k, 'let a = v[i]; xs[i] = a; s1 += a;', 'let c = xs[i] - mean; s2 += c * c;')}
  for (var i = lid; i < ${k}u; i += ${THREADS}u) {
    xs[i] = (xs[i] - mean) * rstd * lnWeight[i]${ln.bias ? ' + lnBias[i]' : ''};
  }
  workgroupBarrier();`
    : '';
  const input = (i: string) => (ln ? `xs[${i}]` : `v[${i}]`);
  const write = gemvWrite(s, 'row');
  const dot = gemvReadsVec4(s)
    ? 'let a = 4u * i;\n        ' +
      `part += dot(wv, vec4<f32>(${input('a')}, ${input('a + 1u')}, ${input('a + 2u')}, ${input('a + 3u')}));`
    : `part += wv * ${input('i')};`;
  const body =
    s.layout === 'outIn'
      ? outInRows(
          s,
          `    var part = 0.0;
    if (row < ${s.n}u) {
      ${rowWeights(s, weights, dot)}
    }
    ${outInRowSum(s, 'part', write)}`,
        )
      : inOutColumns(
          s,
          weights,
          'var part = 0.0;',
          `part += wv * ${input('i')};`,
          inOutColumnSum(s, 'part', write),
        );
  return gemvModule(s, weights, {
    vec4Inputs: false,
    workgroupVars: ln ? `var<workgroup> xs : array<f32, ${k}>;` : '',
    body: `${prologue}\n${body}`,
  });
}

/**
 * The batched matrix-vector product: each weight is read once and multiplied with every live row's input, so a
 * step of B rows costs about one row's weight traffic. The LayerNorm prologue keeps only each row's mean and
 * reciprocal deviation in workgroup memory (B rows of `d_model` would not fit) and normalizes inputs as it reads
 * them; the partial sums of each output are summed per row through the same workgroup array.
 */
function gemvBatchShader(s: GemvShape, rows: number): string {
  if (gemvReadsVec4(s)) return gemvBatchVec4Shader(s, rows);
  const { k, n } = s;
  const weights = weightAccess(s);
  const ln = s.layerNorm;
  const prologue = ln ? batchLayerNormStats(k, ln.eps, false) : '';
  const input = (i: string) =>
    ln
      ? `((v[b * ${k}u + ${i}] - lnMean[b]) * lnRstd[b] * lnWeight[${i}]${ln.bias ? ` + lnBias[${i}]` : ''})`
      : `v[b * ${k}u + ${i}]`;
  const write = gemvWrite(s, `b * ${n}u + row`);
  const use = `for (var b = 0u; b < count; b++) { part[b] += wv * ${input('i')}; }`;
  const body =
    s.layout === 'outIn'
      ? outInRows(
          s,
          `    // Zeroed explicitly for every block: a declaration in a loop body is hoisted when compiled.
    var part : array<f32, ${rows}>;
    for (var b = 0u; b < ${rows}u; b++) { part[b] = 0.0; }
    if (row < ${n}u) {
      ${rowWeights(s, weights, use)}
    }
    for (var b = 0u; b < count; b++) {
      ${outInRowSum(s, 'part[b]', write)}
    }`,
        )
      : inOutColumns(
          s,
          weights,
          `var part : array<f32, ${rows}>;`,
          use,
          `for (var b = 0u; b < count; b++) {
    ${inOutColumnSum(s, 'part[b]', write)}
    workgroupBarrier();
  }`,
        );
  return gemvModule(s, weights, {
    vec4Inputs: false,
    workgroupVars: batchLayerNormVars(s, rows),
    body: `${prologue}\n${body}`,
  });
}

/**
 * The batched product over an `outIn` matrix with `k % 4 == 0` (the usual layout): inputs, LayerNorm weights and
 * weights all read as vec4, each row's partial sum in its own register (the rows unrolled, each guarded by the live
 * count), and a LayerNorm weight and bias read once per weight vec4 for all rows.
 */
function gemvBatchVec4Shader(s: GemvShape, rows: number): string {
  const { k, n } = s;
  const k4 = k / 4;
  const ln = s.layerNorm;
  const weights = weightAccess(s);
  const prologue = ln ? batchLayerNormStats(k, ln.eps, true) : '';
  const input = (b: number) =>
    ln
      ? `(v[${b * k4}u + i] - vec4<f32>(lnMean[${b}])) * lnRstd[${b}] * lw${ln.bias ? ' + lb' : ''}`
      : `v[${b * k4}u + i]`;
  const each = (f: (b: number) => string) => Array.from({ length: rows }, (_, b) => f(b)).join('\n');
  const use = `${ln ? 'let lw = lnWeight[i];' : ''}
        ${ln?.bias ? 'let lb = lnBias[i];' : ''}
${each((b) => `        if (${b}u < count) { p${b} += dot(wv, ${input(b)}); }`)}`;
  const body = outInRows(
    s,
    `${each((b) => `    var p${b} = 0.0;`)}
    if (row < ${n}u) {
      ${rowWeights(s, weights, use)}
    }
${each(
  (b) => `    if (${b}u < count) {
      ${outInRowSum(s, `p${b}`, gemvWrite(s, `${b * n}u + row`))}
    }`,
)}`,
  );
  return gemvModule(s, weights, {
    vec4Inputs: true,
    workgroupVars: batchLayerNormVars(s, rows),
    body: `${prologue}\n${body}`,
  });
}

/** Workgroups of a matrix-vector product with `n` outputs (the vocabulary-sized head loops over blocks). */
export function gemvWorkgroups(n: number, layout: 'outIn' | 'inOut', k: number): number {
  if (layout === 'inOut') return Math.ceil(n / INOUT_COLUMNS);
  return Math.min(Math.ceil(n / (THREADS / lanesPerRow(k))), MAX_GEMV_WORKGROUPS);
}

export interface AttentionShape {
  dModel: number;
  nHeads: number;
  maxSeqLen: number;
  scale: number;
  alibi: boolean;
  /** QK-LayerNorm over the whole `d_model` query and key, with or without bias. */
  qkLn: { eps: number; bias: boolean } | null;
  /**
   * The batched step's rows: binding 0 is the `Batch` uniform, one workgroup per (row, head), qkv `[rows, 3d]`,
   * the caches `[slots, H, maxSeqLen, Dh]` (each row reads and writes its own slot), scores `[rows, H,
   * maxSeqLen]` and output `[rows, d]`.
   */
  batchRows?: number;
}

/**
 * Bindings: 0 step, 1 qkv `[3d]`, 2 key cache, 3 value cache (`[H, maxSeqLen, Dh]` each), 4 scores scratch
 * `[H, maxSeqLen]`, 5 output `[d]`, 6 slopes `[H]` (ALiBi), 7-10 q_ln weight, k_ln weight, q_ln bias, k_ln bias.
 */
export function attentionShader(s: AttentionShape): string {
  const d = s.dModel;
  const dh = d / s.nHeads;
  const len = s.maxSeqLen;
  const slices = Math.floor(THREADS / dh);
  const qk = s.qkLn;
  const batched = s.batchRows !== undefined;
  const decls = [
    batched
      ? '@group(0) @binding(0) var<uniform> batch : Batch;'
      : '@group(0) @binding(0) var<uniform> step : Step;',
    '@group(0) @binding(1) var<storage, read> qkv : array<f32>;',
    '@group(0) @binding(2) var<storage, read_write> kc : array<f32>;',
    '@group(0) @binding(3) var<storage, read_write> vc : array<f32>;',
    '@group(0) @binding(4) var<storage, read_write> sc : array<f32>;',
    '@group(0) @binding(5) var<storage, read_write> out : array<f32>;',
  ];
  if (s.alibi) decls.push('@group(0) @binding(6) var<storage, read> slopes : array<f32>;');
  if (qk) {
    decls.push('@group(0) @binding(7) var<storage, read> qLnWeight : array<f32>;');
    decls.push('@group(0) @binding(8) var<storage, read> kLnWeight : array<f32>;');
  }
  if (qk?.bias) {
    decls.push('@group(0) @binding(9) var<storage, read> qLnBias : array<f32>;');
    decls.push('@group(0) @binding(10) var<storage, read> kLnBias : array<f32>;');
  }
  const stats = (name: string, offset: number) => `
  var ${name}s1 = 0.0;
  for (var i = lid; i < ${d}u; i += ${THREADS}u) { ${name}s1 += qkv[qb + ${offset}u + i]; }
  let ${name}Mean = reduceSum(lid, ${name}s1) / f32(${d});
  var ${name}s2 = 0.0;
  for (var i = lid; i < ${d}u; i += ${THREADS}u) { let c = qkv[qb + ${offset}u + i] - ${name}Mean; ${name}s2 += c * c; }
  let ${name}Rstd = inverseSqrt(reduceSum(lid, ${name}s2) / f32(${d}) + ${f32Literal(qk?.eps ?? 0)});`;
  // Offsets of the row's qkv, its slot's caches, its scores and its output (all 0 for one sequence).
  const locate = batched
    ? `let h = wg.x % ${s.nHeads}u;
  let r = wg.x / ${s.nHeads}u;
  if (r >= batch.count) { return; }
  let pos = batch.rows[r].y;
  let qb = r * ${3 * d}u;
  let cb = batch.rows[r].x * ${s.nHeads * len * dh}u;
  let sb = r * ${s.nHeads * len}u;
  let ob = r * ${d}u;`
    : `let h = wg.x;
  let pos = step.pos;
  let qb = 0u;
  let cb = 0u;
  let sb = 0u;
  let ob = 0u;`;
  return `${batched ? batchStruct(s.batchRows!) : STEP_STRUCT}
${decls.join('\n')}
${REDUCE_SNIPPET}
var<workgroup> qh : array<f32, ${dh}>;
var<workgroup> partial : array<f32, ${THREADS}>;

@compute @workgroup_size(${THREADS})
fn main(@builtin(local_invocation_index) lid : u32, @builtin(workgroup_id) wg : vec3<u32>) {
  ${locate}
  let count = pos + 1u;
  ${qk ? stats('q', 0) + stats('k', d) : ''}
  for (var j = lid; j < ${dh}u; j += ${THREADS}u) {
    let i = h * ${dh}u + j;
    var q = qkv[qb + i];
    var k = qkv[qb + ${d}u + i];
    ${qk ? `q = (q - qMean) * qRstd * qLnWeight[i]${qk.bias ? ' + qLnBias[i]' : ''};` : ''}
    ${qk ? `k = (k - kMean) * kRstd * kLnWeight[i]${qk.bias ? ' + kLnBias[i]' : ''};` : ''}
    qh[j] = q;
    let at = cb + (h * ${len}u + pos) * ${dh}u + j;
    kc[at] = k;
    vc[at] = qkv[qb + ${2 * d}u + i];
  }
  storageBarrier();
  workgroupBarrier();
  let srow = sb + h * ${len}u;
  let crow = cb + h * ${len}u * ${dh}u;
  var best = -3.4028234e38;
  for (var t = lid; t < count; t += ${THREADS}u) {
    let base = crow + t * ${dh}u;
    var dot = 0.0;
    for (var j = 0u; j < ${dh}u; j++) { dot += qh[j] * kc[base + j]; }
    var score = dot * ${f32Literal(s.scale)};
    ${s.alibi ? 'score = score + slopes[h] * (f32(t) - f32(pos));' : ''}
    sc[srow + t] = score;
    best = max(best, score);
  }
  let m = reduceMax(lid, best);
  var total = 0.0;
  for (var t = lid; t < count; t += ${THREADS}u) {
    let p = exp(sc[srow + t] - m);
    sc[srow + t] = p;
    total += p;
  }
  let z = reduceSum(lid, total);
  storageBarrier();
  workgroupBarrier();
  // ${slices} slices of positions, each thread one output element of one slice, then the slices summed.
  let j = lid % ${dh}u;
  let slice = lid / ${dh}u;
  var acc = 0.0;
  if (slice < ${slices}u) {
    for (var t = slice; t < count; t += ${slices}u) { acc += sc[srow + t] * vc[crow + t * ${dh}u + j]; }
  }
  partial[lid] = acc;
  workgroupBarrier();
  if (lid < ${dh}u) {
    var o = 0.0;
    for (var r = 0u; r < ${slices}u; r++) { o += partial[r * ${dh}u + lid]; }
    out[ob + h * ${dh}u + lid] = o / z;
  }
}`;
}

/** Ties of the arg-max go to the lower id, as `argMax` on the host and torch. */
const ARGMAX_REDUCE = `
var<workgroup> bestValue : array<f32, ${THREADS}>;
var<workgroup> bestIndex : array<u32, ${THREADS}>;

fn better(v : f32, i : u32, w : f32, j : u32) -> bool {
  return v > w || (v == w && i < j);
}

fn reduceArgmax(lid : u32, v : f32, i : u32) {
  bestValue[lid] = v;
  bestIndex[lid] = i;
  workgroupBarrier();
  for (var s = ${THREADS / 2}u; s > 0u; s = s >> 1u) {
    if (lid < s && better(bestValue[lid + s], bestIndex[lid + s], bestValue[lid], bestIndex[lid])) {
      bestValue[lid] = bestValue[lid + s];
      bestIndex[lid] = bestIndex[lid + s];
    }
    workgroupBarrier();
  }
}`;

/**
 * Pass 1 bindings: 0 logits, 1 partial values, 2 partial indices. Pass 2 bindings: 0 partial values, 1 partial
 * indices, 2 token (read by the next step's embedding), 3 result (copied to the host).
 * Batched (`batchRows`): pass 1 runs `workgroups` x rows workgroups over logits `[rows, vocab]`, pass 2 one
 * workgroup per row writing `result[row]` (there is no token buffer: the host gives each step its tokens), and
 * both read the `Batch` uniform at binding 4 to skip rows past its count.
 */
export function argmaxShaders(
  vocab: number,
  batchRows?: number,
): { chunks: string; final: string; workgroups: number } {
  const workgroups = Math.ceil(vocab / ARGMAX_CHUNK);
  if (batchRows !== undefined) return batchArgmaxShaders(vocab, batchRows, workgroups);
  const chunks = `
@group(0) @binding(0) var<storage, read> logits : array<f32>;
@group(0) @binding(1) var<storage, read_write> partValue : array<f32>;
@group(0) @binding(2) var<storage, read_write> partIndex : array<u32>;
${ARGMAX_REDUCE}

@compute @workgroup_size(${THREADS})
fn main(@builtin(local_invocation_index) lid : u32, @builtin(workgroup_id) wg : vec3<u32>) {
  var v = -3.4028234e38;
  var at = 0xffffffffu;
  let end = min((wg.x + 1u) * ${ARGMAX_CHUNK}u, ${vocab}u);
  for (var i = wg.x * ${ARGMAX_CHUNK}u + lid; i < end; i += ${THREADS}u) {
    let l = logits[i];
    if (better(l, i, v, at)) { v = l; at = i; }
  }
  reduceArgmax(lid, v, at);
  if (lid == 0u) {
    partValue[wg.x] = bestValue[0];
    partIndex[wg.x] = bestIndex[0];
  }
}`;
  const final = `
@group(0) @binding(0) var<storage, read> partValue : array<f32>;
@group(0) @binding(1) var<storage, read> partIndex : array<u32>;
@group(0) @binding(2) var<storage, read_write> token : array<u32>;
@group(0) @binding(3) var<storage, read_write> result : array<u32>;
${ARGMAX_REDUCE}

@compute @workgroup_size(${THREADS})
fn main(@builtin(local_invocation_index) lid : u32) {
  var v = -3.4028234e38;
  var at = 0xffffffffu;
  for (var i = lid; i < ${workgroups}u; i += ${THREADS}u) {
    if (better(partValue[i], partIndex[i], v, at)) { v = partValue[i]; at = partIndex[i]; }
  }
  reduceArgmax(lid, v, at);
  if (lid == 0u) {
    // All logits NaN: fall back to id 0 rather than an id outside the vocabulary.
    let chosen = select(bestIndex[0], 0u, bestIndex[0] >= ${vocab}u);
    token[0] = chosen;
    result[0] = chosen;
  }
}`;
  return { chunks, final, workgroups };
}

function batchArgmaxShaders(
  vocab: number,
  rows: number,
  workgroups: number,
): { chunks: string; final: string; workgroups: number } {
  const chunks = `${batchStruct(rows)}
@group(0) @binding(0) var<storage, read> logits : array<f32>;
@group(0) @binding(1) var<storage, read_write> partValue : array<f32>;
@group(0) @binding(2) var<storage, read_write> partIndex : array<u32>;
@group(0) @binding(4) var<uniform> batch : Batch;
${ARGMAX_REDUCE}

@compute @workgroup_size(${THREADS})
fn main(@builtin(local_invocation_index) lid : u32, @builtin(workgroup_id) wg : vec3<u32>) {
  if (wg.y >= batch.count) { return; }
  let base = wg.y * ${vocab}u;
  var v = -3.4028234e38;
  var at = 0xffffffffu;
  let end = min((wg.x + 1u) * ${ARGMAX_CHUNK}u, ${vocab}u);
  for (var i = wg.x * ${ARGMAX_CHUNK}u + lid; i < end; i += ${THREADS}u) {
    let l = logits[base + i];
    if (better(l, i, v, at)) { v = l; at = i; }
  }
  reduceArgmax(lid, v, at);
  if (lid == 0u) {
    partValue[wg.y * ${workgroups}u + wg.x] = bestValue[0];
    partIndex[wg.y * ${workgroups}u + wg.x] = bestIndex[0];
  }
}`;
  const final = `${batchStruct(rows)}
@group(0) @binding(0) var<storage, read> partValue : array<f32>;
@group(0) @binding(1) var<storage, read> partIndex : array<u32>;
@group(0) @binding(3) var<storage, read_write> result : array<u32>;
@group(0) @binding(4) var<uniform> batch : Batch;
${ARGMAX_REDUCE}

@compute @workgroup_size(${THREADS})
fn main(@builtin(local_invocation_index) lid : u32, @builtin(workgroup_id) wg : vec3<u32>) {
  let r = wg.x;
  if (r >= batch.count) { return; }
  var v = -3.4028234e38;
  var at = 0xffffffffu;
  for (var i = lid; i < ${workgroups}u; i += ${THREADS}u) {
    let j = r * ${workgroups}u + i;
    if (better(partValue[j], partIndex[j], v, at)) { v = partValue[j]; at = partIndex[j]; }
  }
  reduceArgmax(lid, v, at);
  if (lid == 0u) {
    // All logits NaN: fall back to id 0 rather than an id outside the vocabulary.
    result[r] = select(bestIndex[0], 0u, bestIndex[0] >= ${vocab}u);
  }
}`;
  return { chunks, final, workgroups };
}

/** Bytes of one row's token choice in the batched step's choice buffer (`CHOICE_STRUCT`). */
export const CHOICE_BYTES = 32;

/**
 * One row's token choice in the batched step: `sample` 0 takes the arg-max (the sampling kernel leaves the row
 * alone), 1 draws with the rest; the fields after it mean what the `Step` uniform's do.
 */
export const CHOICE_STRUCT = `
struct Choice {
  sample : u32,
  counter : u32,
  seed : u32,
  topK : u32,
  temperature : f32,
  topP : f32,
  pad0 : u32,
  pad1 : u32,
}`;

/**
 * Sampling in one workgroup per row, as mpt-model's host sampler (`chooseToken`, `sampleToken`) chooses: in Hugging
 * Face's order temperature, top-k, top-p, then a draw, every step walking the ids by larger logit first and lower
 * id first among equal logits. Each thread owns a contiguous range of ids, so "lower id first" among equal logits is
 * a prefix over threads. Thresholds are found by bisection over the bits of an order-preserving u32 key of the
 * logits: the k-th largest key (top-k), the largest key whose kept mass at or above it still reaches `p z` (top-p),
 * and the largest key whose kept mass at or above it exceeds the draw `r` (the drawn token, found among the ids of
 * that key). `r` is the host generator's draw number `counter` (`SeededRandom(seed)`, two 32-bit words per draw)
 * times the kept mass, so the device draws the host's token for the same logits, seed and counter, except where `r`
 * or `p z` lands within float32 rounding of a running sum.
 * Bindings: 0 step, 1 logits, 2 token, 3 result. Batched (`batchRows`): 0 the rows' `Choice`s (storage), 1 logits
 * `[rows, vocab]`, 3 result `[rows]`, 4 the `Batch` uniform; a workgroup per row, and rows past the count or
 * taking the arg-max return at once.
 */
export function sampleShader(vocab: number, batchRows?: number): string {
  const per = Math.ceil(vocab / THREADS);
  const batched = batchRows !== undefined;
  const bindings = batched
    ? `${batchStruct(batchRows)}
${CHOICE_STRUCT}
@group(0) @binding(0) var<storage, read> choices : array<Choice, ${batchRows}>;
@group(0) @binding(1) var<storage, read> logits : array<f32>;
@group(0) @binding(3) var<storage, read_write> result : array<u32>;
@group(0) @binding(4) var<uniform> batch : Batch;`
    : `${STEP_STRUCT}
@group(0) @binding(0) var<uniform> step : Step;
@group(0) @binding(1) var<storage, read> logits : array<f32>;
@group(0) @binding(2) var<storage, read_write> token : array<u32>;
@group(0) @binding(3) var<storage, read_write> result : array<u32>;`;
  // The row's choice, and where its logits start.
  const prologue = batched
    ? `  if (wg.x >= batch.count) { return; }
  let params = choices[wg.x];
  if (params.sample == 0u) { return; }
  base = wg.x * ${vocab}u;`
    : `  let params = step;
  base = 0u;`;
  const store = batched ? 'result[wg.x] = pick;' : 'token[0] = pick;\n    result[0] = pick;';
  return `${bindings}
${REDUCE_SNIPPET}
var<workgroup> counts : array<u32, ${THREADS}>;
var<workgroup> chosen : atomic<u32>;
var<workgroup> lastKey : atomic<u32>;
var<workgroup> lastId : atomic<u32>;

// Where this row's logits start, and the thresholds every pass tests against (set once per row).
var<private> base : u32;
var<private> m : f32;
var<private> invT : f32;
var<private> useK : bool;
var<private> kKey : u32;
var<private> kEqualKept : u32;
var<private> kEqualBefore : u32;
var<private> useP : bool;
var<private> pKey : u32;
var<private> pGreaterMass : f32;
var<private> pEqualBefore : f32;
var<private> nucleusMass : f32;

fn orderKey(v : f32) -> u32 {
  let b = bitcast<u32>(v);
  return select(b | 0x80000000u, ~b, (b & 0x80000000u) != 0u);
}

fn logit(i : u32) -> f32 {
  return logits[base + i];
}

${workgroupReduce('countSum', 'counts', 'u32', (a, b) => `${a} + ${b}`)}

/** Sum of the values of threads before \`lid\` (each thread's range precedes the next one's). */
fn exclusiveCount(lid : u32, c : u32) -> u32 {
  workgroupBarrier();
  counts[lid] = c;
  workgroupBarrier();
  var before = 0u;
  for (var t = 0u; t < lid; t++) { before += counts[t]; }
  workgroupBarrier();
  return before;
}

fn exclusiveMass(lid : u32, v : f32) -> f32 {
  workgroupBarrier();
  red[lid] = v;
  workgroupBarrier();
  var before = 0.0;
  for (var t = 0u; t < lid; t++) { before += red[t]; }
  workgroupBarrier();
  return before;
}

/**
 * Whether the next id of this thread's range (in id order), of key \`key\` and weight \`p\`, survives top-k (and
 * top-p, when \`nucleus\`); \`seen\` counts the ids of the top-k key and \`eqMass\` the kept mass of the top-p key
 * before it, both from this thread's start.
 */
fn isKept(key : u32, p : f32, nucleus : bool, seen : ptr<function, u32>, eqMass : ptr<function, f32>) -> bool {
  var kept = !useK || key > kKey || (key == kKey && *seen < kEqualKept);
  if (useK && key == kKey) { *seen += 1u; }
  if (kept && nucleus && useP) {
    if (key < pKey) { kept = false; }
    if (key == pKey) { kept = pGreaterMass + *eqMass < nucleusMass; *eqMass += p; }
  }
  return kept;
}

/** Mass of this thread's ids kept by top-k (and top-p, when \`nucleus\`) whose keys lie in [lo, hi]. */
fn keptMass(begin : u32, end : u32, lo : u32, hi : u32, nucleus : bool) -> f32 {
  var mass = 0.0;
  var seen = kEqualBefore;
  var eqMass = pEqualBefore;
  for (var i = begin; i < end; i++) {
    let key = orderKey(logit(i));
    let p = exp((logit(i) - m) * invT);
    if (isKept(key, p, nucleus, &seen, &eqMass) && key >= lo && key <= hi) { mass += p; }
  }
  return mass;
}

/** The same split of SplitMix32 as mpt-model's \`SeededRandom.nextUint32\`. */
fn mix(state : u32) -> u32 {
  var z = state;
  z = (z ^ (z >> 16u)) * 0x85ebca6bu;
  z = (z ^ (z >> 13u)) * 0xc2b2ae35u;
  return z ^ (z >> 16u);
}

@compute @workgroup_size(${THREADS})
fn main(@builtin(local_invocation_index) lid : u32, @builtin(workgroup_id) wg : vec3<u32>) {
${prologue}
  let begin = min(lid * ${per}u, ${vocab}u);
  let end = min(begin + ${per}u, ${vocab}u);
  var localMax = -3.4028234e38;
  for (var i = begin; i < end; i++) { localMax = max(localMax, logit(i)); }
  m = reduceMax(lid, localMax);
  invT = 1.0 / params.temperature;

  // Top-k: the k-th largest key, and how many of the ids equal to it (lowest first) are kept.
  let withK = params.topK > 0u && params.topK < ${vocab}u;
  useK = withK;
  kKey = 0u;
  kEqualKept = 0xffffffffu;
  kEqualBefore = 0u;
  if (withK) {
    for (var b = 0u; b < 32u; b++) {
      let candidate = kKey | (0x80000000u >> b);
      var c = 0u;
      for (var i = begin; i < end; i++) { if (orderKey(logit(i)) >= candidate) { c++; } }
      if (countSum(lid, c) >= params.topK) { kKey = candidate; }
    }
    var greater = 0u;
    var equal = 0u;
    for (var i = begin; i < end; i++) {
      let key = orderKey(logit(i));
      if (key > kKey) { greater++; }
      if (key == kKey) { equal++; }
    }
    kEqualKept = params.topK - countSum(lid, greater);
    kEqualBefore = exclusiveCount(lid, equal);
  }

  // Top-p over the top-k set: the largest key whose kept mass at or above it reaches p z; ids equal to it are
  // kept (lowest first) while the mass before them is still below p z.
  let withP = params.topP < 1.0;
  useP = withP;
  pKey = 0u;
  pGreaterMass = 0.0;
  pEqualBefore = 0.0;
  if (withP) {
    nucleusMass = params.topP * reduceSum(lid, keptMass(begin, end, 0u, 0xffffffffu, false));
    for (var b = 0u; b < 32u; b++) {
      let candidate = pKey | (0x80000000u >> b);
      if (reduceSum(lid, keptMass(begin, end, candidate, 0xffffffffu, false)) >= nucleusMass) { pKey = candidate; }
    }
    pGreaterMass = select(0.0, reduceSum(lid, keptMass(begin, end, pKey + 1u, 0xffffffffu, false)), pKey != 0xffffffffu);
    pEqualBefore = exclusiveMass(lid, keptMass(begin, end, pKey, pKey, false));
  }

  // The draw: the host generator's word pair number \`counter\`, its high 24 bits as a float in [0, 1).
  let hi = mix(params.seed + (2u * params.counter + 1u) * 0x9e3779b9u) >> 5u;
  let u = f32(hi >> 3u) / 16777216.0;
  let keptTotal = reduceSum(lid, keptMass(begin, end, 0u, 0xffffffffu, true));
  let r = u * keptTotal;
  // The drawn key: the largest whose kept mass at or above it exceeds r.
  var dKey = 0u;
  for (var b = 0u; b < 32u; b++) {
    let candidate = dKey | (0x80000000u >> b);
    if (reduceSum(lid, keptMass(begin, end, candidate, 0xffffffffu, true)) > r) { dKey = candidate; }
  }
  let above = select(0.0, reduceSum(lid, keptMass(begin, end, dKey + 1u, 0xffffffffu, true)), dKey != 0xffffffffu);
  let ownEqual = keptMass(begin, end, dKey, dKey, true);
  let equalBefore = above + exclusiveMass(lid, ownEqual);
  if (lid == 0u) {
    atomicStore(&chosen, 0xffffffffu);
    atomicStore(&lastKey, 0xffffffffu);
    atomicStore(&lastId, 0u);
  }
  workgroupBarrier();
  // The ids of the drawn key, lowest first: the first whose running mass exceeds r.
  if (r >= equalBefore && r < equalBefore + ownEqual) {
    var acc = equalBefore;
    var last = 0xffffffffu;
    var seen = kEqualBefore;
    var eqMass = pEqualBefore;
    for (var i = begin; i < end; i++) {
      let key = orderKey(logit(i));
      let p = exp((logit(i) - m) * invT);
      let kept = isKept(key, p, true, &seen, &eqMass);
      if (kept && key == dKey) {
        acc += p;
        last = i;
        if (r < acc) { break; }
      }
    }
    // Rounding left r at or past this range's sum: its last id of the key.
    atomicMin(&chosen, last);
  }
  // r at or past the whole kept mass (rounding): the last kept id in the host's order, as the host takes.
  {
    var seen = kEqualBefore;
    var eqMass = pEqualBefore;
    for (var i = begin; i < end; i++) {
      let key = orderKey(logit(i));
      let p = exp((logit(i) - m) * invT);
      let kept = isKept(key, p, true, &seen, &eqMass);
      if (kept) { atomicMin(&lastKey, key); }
    }
  }
  workgroupBarrier();
  let lowest = atomicLoad(&lastKey);
  {
    var seen = kEqualBefore;
    var eqMass = pEqualBefore;
    for (var i = begin; i < end; i++) {
      let key = orderKey(logit(i));
      let p = exp((logit(i) - m) * invT);
      let kept = isKept(key, p, true, &seen, &eqMass);
      if (kept && key == lowest) { atomicMax(&lastId, i); }
    }
  }
  workgroupBarrier();
  if (lid == 0u) {
    var pick = atomicLoad(&chosen);
    if (pick == 0xffffffffu) { pick = atomicLoad(&lastId); }
    ${store}
  }
}`;
}
