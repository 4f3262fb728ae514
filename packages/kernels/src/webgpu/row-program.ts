/**
 * What the fused kernels share beyond the program type (`program-like.ts`): workgroup sizing and WGSL snippets
 * for row-per-workgroup reductions. tfjs wraps `getUserCode()` with the
 * buffer bindings (`result`, one array per variable name), the `uniforms` struct (every input's shape, the
 * output shape, `size` when asked for, and the program's own uniforms) and the `_start` entry point, which
 * fills the `workgroupId`, `numWorkgroups` and `localIndex` globals before calling `main`.
 */
import type { WebGpuProgramLike } from './program-like.js';

/** Threads of the one-thread-per-element programs. */
export const ELEMENTWISE_WORKGROUP = 64;

/** Workgroups for `threads` threads of `ELEMENTWISE_WORKGROUP`; tfjs folds a dispatch over 65535 into 2D/3D. */
export function elementwiseDispatch(threads: number): [number, number, number] {
  return [Math.max(1, Math.ceil(threads / ELEMENTWISE_WORKGROUP)), 1, 1];
}

/**
 * Threads per row for row-per-workgroup programs: a power of two up to 64. Rows are many in training (batch x
 * sequence), so 64 threads per row keep a GPU busy, and larger workgroups make every barrier of the reduction
 * dearer (8x for 256 threads on SwiftShader).
 */
export function rowWorkgroupSize(rowLength: number): number {
  return rowLength <= 32 ? 32 : 64;
}

/**
 * Consecutive elements of one row each thread of an elementwise program handles: 4 when the row length allows
 * it, which divides the per-thread index arithmetic (an integer division) by 4.
 */
export function elementsPerThread(rowLength: number): number {
  return rowLength % 4 === 0 ? 4 : 1;
}

/**
 * A program with one workgroup per row of a `[rows, rowLength]` input (`rowWorkgroupSize` threads); subclasses
 * name their inputs and write `getUserCode` around `rowReductionSnippet`, `rowPrologue` and `rowSum`.
 */
export abstract class RowProgram implements WebGpuProgramLike {
  abstract readonly variableNames: string[];
  readonly outputShape: number[];
  readonly shaderKey: string;
  readonly dispatchLayout = { x: [0] };
  readonly dispatch: [number, number, number];
  readonly workgroupSize: [number, number, number];

  constructor(name: string, rows: number, rowLength: number, outputShape: number[]) {
    const wg = rowWorkgroupSize(rowLength);
    this.outputShape = outputShape;
    this.workgroupSize = [wg, 1, 1];
    this.dispatch = [rows, 1, 1];
    this.shaderKey = `${name}_${wg}`;
  }

  abstract getUserCode(): string;
}

/**
 * WGSL for row-per-workgroup programs: `rowIndex()` (the flat workgroup index, also right when tfjs folded a
 * long dispatch into 2D or 3D) and `reduceSum(value)` over `T` (`f32` or `vec2<f32>`), a tree reduction in
 * workgroup memory that every thread of the workgroup must call (it contains barriers) and that returns the
 * total to all of them.
 */
export function rowReductionSnippet(workgroupSize: number, type: 'f32' | 'vec2<f32>'): string {
  return `
      const WG : i32 = ${workgroupSize};
      var<workgroup> partial : array<${type}, ${workgroupSize}>;

      fn rowIndex() -> i32 {
        return i32(workgroupId.z * numWorkgroups.x * numWorkgroups.y + workgroupId.y * numWorkgroups.x +
          workgroupId.x);
      }

      fn reduceSum(value : ${type}) -> ${type} {
        let lane = i32(localIndex);
        partial[lane] = value;
        workgroupBarrier();
        for (var stride = WG / 2; stride > 0; stride = stride / 2) {
          if (lane < stride) {
            partial[lane] = partial[lane] + partial[lane + stride];
          }
          workgroupBarrier();
        }
        let total = partial[0];
        // The next reduction overwrites partial: every thread must have read the total first.
        workgroupBarrier();
        return total;
      }
  `;
}

/**
 * WGSL, at the top of a row program's `main`: `rows` and the row length `width` (from `input`'s shape), `row`,
 * `safeRow` (workgroups past the last row, from a folded dispatch, reduce the last row again and must write
 * nothing), the row's first element `base` and the thread's `lane`.
 */
export function rowPrologue(input: string, width = 'width'): string {
  return `let rows = uniforms.${input}Shape[0];
        let ${width} = uniforms.${input}Shape[1];
        let row = rowIndex();
        let safeRow = min(row, rows - 1);
        let base = safeRow * ${width};
        let lane = i32(localIndex);`;
}

/**
 * WGSL: `let name = ` the sum over the row's columns `c` of `value` (after `setup`), each thread adding every
 * `WG`th column, then `reduceSum` (so every thread of the workgroup must reach it).
 */
export function rowSum(name: string, value: string, setup = '', type: 'f32' | 'vec2<f32>' = 'f32'): string {
  return `var ${name}Part = ${type === 'f32' ? '0.0' : 'vec2<f32>(0.0, 0.0)'};
        for (var c = lane; c < width; c += WG) {
          ${setup}
          ${name}Part += ${value};
        }
        let ${name} = reduceSum(${name}Part);`;
}
