/**
 * WGSL pieces the f16 attention programs share: staging float32 rows as f16 tiles, and one subgroup's product
 * `C (+)= A B` over tiles in workgroup memory, written for either engine: on subgroup matrices (`matrix`) or as
 * scalar multiply-adds of f16-rounded values by `SCALAR_LANES` threads (`scalar`), with the same operands,
 * offsets and strides, so the scalar engine exercises the matrix engine's indexing.
 */
import type { FlashEngineConfig } from './f16-flash-block.js';

/** An operand tile in workgroup memory: element (r, c) at `base + r * stride + c` (row-major) or `+ c * stride + r`. */
export interface TileOperand {
  ptr: string;
  /** WGSL expression: the offset of element (0, 0). */
  base: string;
  stride: number;
  major: 'row' | 'col';
  /** Whether the matrix engine holds it as f16 (else f32; the scalar engine holds everything in f32). */
  f16: boolean;
}

export interface SubgroupProduct {
  /** Result rows: the matrices' M. Result columns: a multiple of N. Depth: a multiple of K. */
  cols: number;
  depth: number;
  left: TileOperand;
  /** Matrix engine only: A's left matrices held in `${heldLeft}${i}` for depth step i (loaded once). */
  heldLeft?: string;
  right: TileOperand;
  /** The f32 result tile (row-major), with its (0, 0) offset. */
  out: { ptr: string; base: string; stride: number };
  /** Add to the result tile's values (else overwrite them). */
  accumulate: boolean;
}

function element(o: TileOperand, r: string, c: string): string {
  return o.major === 'row'
    ? `${o.ptr}[${o.base} + (${r}) * ${o.stride} + ${c}]`
    : `${o.ptr}[${o.base} + (${c}) * ${o.stride} + ${r}]`;
}

function offset(o: TileOperand, r: string, c: string): string {
  return o.major === 'row'
    ? `${o.base} + (${r}) * ${o.stride} + ${c}`
    : `${o.base} + (${c}) * ${o.stride} + ${r}`;
}

/** The WGSL generator for one engine configuration. */
export class F16TileCode {
  readonly matrix: boolean;
  readonly lanes: number;
  private readonly config: FlashEngineConfig;

  constructor(config: FlashEngineConfig, lanes: number) {
    this.config = config;
    this.matrix = config.engine === 'matrix';
    this.lanes = lanes;
  }

  get elem(): string {
    return this.matrix ? 'f16' : 'f32';
  }

  /** WGSL: `v` rounded to f16, as the tiles hold it. */
  toHalf(v: string): string {
    return this.matrix ? `f16(${v})` : `roundToF16(${v})`;
  }

  /** WGSL: `v` (already f16-representable) as the tiles hold it. */
  store16(v: string): string {
    return this.matrix ? `f16(${v})` : v;
  }

  /** WGSL: the module header: the extensions, or the scalar engine's f16 rounding. */
  header(): string {
    return this.matrix
      ? `enable f16;
      enable chromium_experimental_subgroup_matrix;
      diagnostic(off, chromium.subgroup_matrix_uniformity);`
      : `fn roundToF16(v : f32) -> f32 {
        // Past f16's range the conversion overflows to infinity (pack2x16float leaves it undefined).
        if (abs(v) >= 65520.0) {
          return v * 3.0e38;
        }
        return unpack2x16float(pack2x16float(vec2<f32>(v, 0.0))).x;
      }`;
  }

  /** A subgroup-matrix load in the GEMM layout's spelling (f16 arrays' offsets in its f16 units). */
  load(type: string, ptr: string, at: string, major: 'row' | 'col', stride: number, f16: boolean): string {
    const layout = this.config.layout;
    const unit = f16 ? (layout.f16Unit ?? 1) : 1;
    const where = unit === 1 ? `u32(${at})` : `u32(${at}) / ${unit}u`;
    const step = `${stride / unit}u`;
    return layout.spelling === 'templated'
      ? `subgroupMatrixLoad<${type}, ${major}_major>(&${ptr}, ${where}, ${step})`
      : `subgroupMatrixLoad<${type}>(&${ptr}, ${where}, ${major === 'col'}, ${step})`;
  }

  /** A row-major store of an f32 result matrix. */
  store(ptr: string, at: string, value: string, stride: number): string {
    return this.config.layout.spelling === 'templated'
      ? `subgroupMatrixStore<row_major>(&${ptr}, u32(${at}), ${value}, ${stride}u);`
      : `subgroupMatrixStore(&${ptr}, u32(${at}), ${value}, false, ${stride}u);`;
  }

  get leftType(): string {
    const { M, K } = this.config.shape;
    return `subgroup_matrix_left<f16, ${K}, ${M}>`;
  }

  get rightType(): string {
    const { N, K } = this.config.shape;
    return `subgroup_matrix_right<f16, ${N}, ${K}>`;
  }

  get resultType(): string {
    const { M, N } = this.config.shape;
    return `subgroup_matrix_result<f32, ${N}, ${M}>`;
  }

  /** WGSL: `let ${name}${i} = ` the left matrices of `rows` M x K blocks along `depth` (matrix engine). */
  holdLeft(name: string, o: TileOperand, depth: number): string {
    const { K } = this.config.shape;
    return Array.from(
      { length: depth / K },
      (_, i) =>
        `let ${name}${i} = ${this.load(this.leftType, o.ptr, offset(o, '0', `${i * K}`), o.major, o.stride, o.f16)};`,
    ).join('\n        ');
  }

  /**
   * WGSL: rows `first …` (of `count`) of a float32 input of `dh`-wide rows, position j's row being `rowOf(j)`
   * (the layout's, see `AttentionLayout`), as rows of `stride` from `target[at]`, `cols` wide, zeros past `count`
   * and `dh`. Each thread writes 4 neighbours: whole 32-bit words of f16 (writes of 16-bit neighbours from
   * different threads are not reliable on every driver).
   */
  stage(o: {
    source: string;
    rowOf: (j: string) => string;
    first: string;
    count: string;
    rows: number;
    dh: number;
    cols: number;
    target: string;
    at: string;
    stride: number;
    threads: number;
  }): string {
    return `
        for (var q = i32(localIndex); q < ${(o.rows * o.cols) / 4}; q += ${o.threads}) {
          let r = q / ${o.cols / 4};
          let c0 = (q % ${o.cols / 4}) * 4;
          let j = ${o.first} + r;
${[0, 1, 2, 3]
  .map(
    (i) => `          {
            var v = 0.0;
            if (j < ${o.count} && c0 + ${i} < ${o.dh}) {
              v = ${o.source}[${o.rowOf('j')} * ${o.dh} + c0 + ${i}];
            }
            ${o.target}[${o.at} + r * ${o.stride} + c0 + ${i}] = ${this.toHalf('v')};
          }`,
  )
  .join('\n')}
        }`;
  }

  /** WGSL: one subgroup's `C (+)= A B` (M rows; `sgRow` is folded into the operands' bases). */
  product(p: SubgroupProduct): string {
    const { M, N, K } = this.config.shape;
    if (!this.matrix) {
      const left = element(p.left, 'r', 'kk');
      const right = element(p.right, 'kk', 'c');
      return `for (var e = lane; e < ${M * p.cols}; e += ${this.lanes}) {
          let r = e / ${p.cols};
          let c = e % ${p.cols};
          let at = ${p.out.base} + r * ${p.out.stride} + c;
          var acc = ${p.accumulate ? `${p.out.ptr}[at]` : '0.0'};
          for (var kk = 0; kk < ${p.depth}; kk++) {
            acc = fma(${left}, ${right}, acc);
          }
          ${p.out.ptr}[at] = acc;
        }`;
    }
    const outAt = `${p.out.base} + j * ${N}`;
    const init = p.accumulate
      ? `var acc = ${this.load(this.resultType, p.out.ptr, outAt, 'row', p.out.stride, false)};`
      : `var acc : ${this.resultType};`;
    const rightAt = (kk: string) => offset(p.right, kk, `j * ${N}`);
    const right = (kk: string) =>
      this.load(this.rightType, p.right.ptr, rightAt(kk), p.right.major, p.right.stride, p.right.f16);
    const steps = p.heldLeft
      ? Array.from(
          { length: p.depth / K },
          (_, i) => `acc = subgroupMatrixMultiplyAccumulate(${p.heldLeft}${i}, ${right(`${i * K}`)}, acc);`,
        ).join('\n          ')
      : `for (var kk = 0; kk < ${p.depth}; kk += ${K}) {
            let a = ${this.load(this.leftType, p.left.ptr, offset(p.left, '0', 'kk'), p.left.major, p.left.stride, p.left.f16)};
            acc = subgroupMatrixMultiplyAccumulate(a, ${right('kk')}, acc);
          }`;
    return `for (var j = 0; j < ${p.cols / N}; j++) {
          ${init}
          ${steps}
          ${this.store(p.out.ptr, outAt, 'acc', p.out.stride)}
        }`;
  }
}
