/**
 * What the recorded decode steps (one sequence, or a batch of them) build once: buffers they own, compute
 * pipelines cached by their code and bindings, and dispatch lists with their bind groups, replayed by `record`.
 */
import {
  type GpuBindGroup,
  type GpuBindGroupLayout,
  type GpuBuffer,
  type GpuComputePass,
  type GpuDevice,
  type GpuPipeline,
  SHADER_STAGE_COMPUTE,
} from './gpu.js';

export type BindingKind = 'uniform' | 'read' | 'storage';

export interface Kernel {
  pipeline: GpuPipeline;
  layout: GpuBindGroupLayout;
}

export interface Dispatch {
  pipeline: GpuPipeline;
  group: GpuBindGroup;
  workgroups: number;
  /** Second grid dimension (1 unless a kernel spreads over rows). */
  rows: number;
}

/** Binding kinds of `entries`: `uniformAt` is the uniform, `writable` the read-write ones, the rest read-only. */
export function bindingKinds(
  entries: readonly [number, GpuBuffer][],
  uniformAt = -1,
  writable: readonly number[] = [],
): [number, BindingKind][] {
  return entries.map(([b]) => [b, b === uniformAt ? 'uniform' : writable.includes(b) ? 'storage' : 'read']);
}

export class Recording {
  /** Buffers created here, destroyed by `destroy`. */
  readonly owned: GpuBuffer[] = [];
  private readonly kernels = new Map<string, Kernel>();

  constructor(readonly device: GpuDevice) {}

  buffer(size: number, usage: number, label: string): GpuBuffer {
    // WebGPU wants sizes in multiples of 4; uniform and small buffers get at least 16 bytes.
    const b = this.device.createBuffer({ size: Math.max(16, Math.ceil(size / 4) * 4), usage, label });
    this.owned.push(b);
    return b;
  }

  /** The pipeline of `code` with `bindings`, built once per distinct pair. */
  kernel(label: string, code: string, bindings: [number, BindingKind][]): Kernel {
    const key = `${bindings.map((b) => b.join(':')).join()}\n${code}`;
    let k = this.kernels.get(key);
    if (!k) {
      const layout = this.device.createBindGroupLayout({
        label,
        entries: bindings.map(([binding, kind]) => ({
          binding,
          visibility: SHADER_STAGE_COMPUTE,
          buffer: { type: kind === 'read' ? 'read-only-storage' : kind },
        })),
      });
      const module = this.device.createShaderModule({ code, label });
      const pipeline = this.device.createComputePipeline({
        label,
        layout: this.device.createPipelineLayout({ bindGroupLayouts: [layout] }),
        compute: { module, entryPoint: 'main' },
      });
      k = { pipeline, layout };
      this.kernels.set(key, k);
    }
    return k;
  }

  /** Appends a dispatch of `k` over `workgroups` x `rows` workgroups, its bind group built now. */
  dispatch(list: Dispatch[], k: Kernel, buffers: [number, GpuBuffer][], workgroups: number, rows = 1): void {
    const group = this.device.createBindGroup({
      layout: k.layout,
      entries: buffers.map(([binding, buffer]) => ({
        binding,
        resource: { buffer, offset: 0, size: buffer.size },
      })),
    });
    list.push({ pipeline: k.pipeline, group, workgroups, rows });
  }

  destroy(): void {
    for (const b of this.owned) b.destroy();
    this.owned.length = 0;
  }
}

export function record(pass: GpuComputePass, dispatches: readonly Dispatch[]): void {
  for (const d of dispatches) {
    pass.setPipeline(d.pipeline);
    pass.setBindGroup(0, d.group);
    if (d.rows === 1) pass.dispatchWorkgroups(d.workgroups);
    else pass.dispatchWorkgroups(d.workgroups, d.rows);
  }
}
