// The kit's readable summary: one line per figure, from the JSON result.
import { pytorchRows, ratioRows } from './pytorch-section.mjs';

const fmt = (v, digits = 3) => {
  if (v === null || v === undefined) return '-';
  if (!Number.isFinite(v)) return String(v);
  if (Math.abs(v) >= 1000) return v.toFixed(0);
  return v.toPrecision(digits);
};

function rowsOf(section) {
  const r = section.result;
  switch (section.kind) {
    case 'matmul':
      return [
        ...r.results.map((m) =>
          m.tflops
            ? [`matmul ${m.n}^3 f32`, fmt(m.tflops), 'TFLOP/s']
            : [`matmul ${m.n}^3 f32`, m.skipped, ''],
        ),
        ['matmul peak (this run)', fmt(r.peak_tflops), 'TFLOP/s'],
      ];
    case 'train': {
      const s = r.shape;
      const depth = s.n_layers < s.n_layers_full ? ` (${s.n_layers}/${s.n_layers_full} layers)` : '';
      const rows = [
        [`${section.name}${depth} tokens/s`, fmt(r.tokens_per_s), 'tokens/s'],
        [`${section.name} step time`, fmt(r.step.median_s), 's'],
        [`${section.name} model FLOP/s`, fmt(r.model_tflops), 'TFLOP/s'],
        [`${section.name} MFU vs measured matmul`, fmt(r.mfu_vs_measured_matmul), ''],
      ];
      if (r.mfu_vs_nominal !== null)
        rows.push([`${section.name} MFU vs nominal fp32`, fmt(r.mfu_vs_nominal), '']);
      if (r.tokens_per_s_full_estimate) {
        rows.push([`${section.name} full depth (estimate)`, fmt(r.tokens_per_s_full_estimate), 'tokens/s']);
      }
      if (r.amp_fp16) {
        rows.push([
          `${section.name} amp_fp16 tokens/s`,
          fmt(r.amp_fp16.tokens_per_s),
          `tokens/s (${fmt(r.amp_fp16.speedup_vs_fp32)}x fp32)`,
        ]);
      }
      return rows;
    }
    case 'f16': {
      const rows = [['f16 GEMM plan', r.plan ? r.best_tile : '-', r.plan ? r.plan.engine : r.default_reason]];
      if (r.square_f16) {
        rows.push([
          `f16 GEMM ${r.square_f16.n ?? ''}^3`,
          fmt(r.square_f16.tflops),
          `TFLOP/s (f32 ${fmt(r.square_f32.tflops)})`,
        ]);
      }
      for (const p of r.products) {
        rows.push([
          `f16 ${p.name}`,
          fmt(p.f16_tflops),
          `TFLOP/s (${fmt(p.speedup)}x f32, error ${fmt(p.rel_error_vs_f32)})`,
        ]);
      }
      const flash = r.flash_attention;
      if (flash?.f16) {
        rows.push([
          'f16 flash attention fwd',
          fmt(flash.f16.ms),
          `ms (${fmt(flash.speedup)}x f32, error ${fmt(flash.rel_error_vs_f32)})`,
        ]);
        if (flash.f16_with_backward) {
          rows.push([
            'f16 flash attention fwd+bwd',
            fmt(flash.f16_with_backward.ms),
            `ms (${fmt(flash.speedup_with_backward)}x f32)`,
          ]);
        }
      } else if (flash?.check) {
        rows.push(['f16 flash attention', '-', flash.check]);
      }
      return rows;
    }
    case 'decode': {
      if (r.batch !== undefined) {
        return [
          [`${section.name} decode, recorded step`, fmt(r.decode_tokens_per_s), 'tokens/s (all rows)'],
          [
            `${section.name} vs one sequence`,
            fmt(r.speedup_over_batch1),
            `x (one: ${fmt(r.batch1_tokens_per_s)} tokens/s); ${r.dispatches_per_step} dispatches/step`,
          ],
          [
            `${section.name} vs the one-sequence step`,
            fmt(r.speedup_over_single_sequence_step),
            `x (${fmt(r.single_sequence_recorded_tokens_per_s)} tokens/s)`,
          ],
        ];
      }
      const depth =
        r.shape.n_layers < r.shape.n_layers_full
          ? ` (${r.shape.n_layers}/${r.shape.n_layers_full} layers)`
          : '';
      const rows = [
        [`${section.name}${depth} decode`, fmt(r.decode_tokens_per_s), 'tokens/s'],
        [`${section.name} prefill ${r.prompt_tokens} tokens`, fmt(r.prefill_tokens_per_s), 'tokens/s'],
      ];
      if (r.decode_tokens_per_s_recorded !== undefined) {
        const d = r.dispatches_per_token;
        rows.push([
          `${section.name}${depth} decode, recorded step`,
          fmt(r.decode_tokens_per_s_recorded),
          `tokens/s; ${d.recorded} dispatches/token (tfjs ${d.tfjs}); ${r.recorded_tokens_matching_tfjs}/${r.new_tokens} tokens as tfjs`,
        ]);
        if (r.decode_tokens_per_s_recorded_f16 !== undefined) {
          const mb = (b) => fmt(b / 2 ** 20);
          rows.push([
            `${section.name}${depth} decode, recorded step, f16 weights`,
            fmt(r.decode_tokens_per_s_recorded_f16),
            `tokens/s; ${mb(r.recorded_weight_bytes_per_token.f16)} MiB of weights a token (f32 ${mb(r.recorded_weight_bytes_per_token.f32)}); ${r.recorded_f16_tokens_matching_tfjs}/${r.new_tokens} tokens as tfjs`,
          ]);
        }
      }
      return rows;
    }
    case 'attention':
      return [
        [`${section.name} fused`, fmt(r.fused.ms), 'ms'],
        [`${section.name} plain ops`, fmt(r.plain.ms), 'ms'],
        [`${section.name} fused speedup`, fmt(r.speedup_fused_over_plain), 'x'],
      ];
    case 'flags': {
      const rows = r.configs.map((c) => {
        const name = `flags: ${c.name}`;
        if (c.skipped || c.error) return [name, c.skipped ? 'skipped' : 'failed', c.skipped ?? c.error];
        return [
          name,
          fmt(c.train_tokens_per_s),
          `train tokens/s; decode ${fmt(c.decode_tokens_per_s)} tokens/s`,
        ];
      });
      if (r.best) {
        rows.push([
          'flags: best overall',
          r.best.overall,
          `${fmt(r.best.overall_speedup)}x; MPTJS_TFJS_FLAGS=${r.best.mptjs_tfjs_flags}`,
        ]);
        rows.push(['flags: best for train / decode', r.best.train, `/ ${r.best.decode}`]);
      }
      return rows;
    }
    case 'memory': {
      const first = r.samples.find((s) => s.step === r.check_from_step) ?? r.samples[0];
      const last = r.samples[r.samples.length - 1];
      const mib = (b) => (b === null ? '-' : `${(b / 2 ** 20).toFixed(1)} MiB`);
      return [
        [
          `memory stable from step ${r.check_from_step}`,
          String(r.stable),
          `${r.steps_run}/${r.steps_planned} steps; numTensors/numBytes flat`,
        ],
        [
          `memory step ${first.step} -> ${last.step} tensors`,
          `${first.numTensors} -> ${last.numTensors}`,
          `bytes ${mib(first.numBytes)} -> ${mib(last.numBytes)}`,
        ],
        [
          'memory GPU in use / allocated',
          mib(last.numBytesInGPU),
          `/ ${mib(last.numBytesAllocatedInGPU)} (in use flat: ${r.gpu_bytes_in_use_flat})`,
        ],
        ['memory training step', fmt(r.step_median_s), 's'],
      ];
    }
    case 'serve':
      return [
        [`serve ${r.streams} streams`, fmt(r.many_streams.tokens_per_s), 'tokens/s over HTTP'],
        ['serve 1 stream', fmt(r.one_stream.tokens_per_s), 'tokens/s over HTTP'],
        [`serve ${r.streams} streams vs 1`, fmt(r.speedup), `x (${r.engine} engine, ${r.slots} slots)`],
      ];
    case 'learning':
      return [
        [
          `same learning: ${r.steps} steps fp32 / amp_fp16`,
          `${fmt(r.fp32.final_loss)} / ${fmt(r.amp_fp16.final_loss)}`,
          `final loss; ${(100 * r.relative_difference).toFixed(2)}% apart (within 1%: ${r.within_1_percent})`,
        ],
      ];
    case 'profile': {
      const rows = [
        [
          `profile ${r.shape.name} step: GPU kernel time`,
          fmt(r.gpu_kernel_ms_total),
          `ms over ${r.timed_calls} of ${r.kernel_calls} kernels`,
        ],
      ];
      for (const k of r.by_kernel.slice(0, 10)) {
        rows.push([
          `profile: ${k.kernel}`,
          fmt(k.ms),
          `ms (${(100 * k.share).toFixed(1)}%, ${k.calls} calls)`,
        ]);
      }
      return rows;
    }
    case 'int8': {
      const rows = [
        ['int8 subgroup matrices', r.int8_matrix_plan ? 'used' : 'not used', r.int8_matrix_reason],
      ];
      for (const l of r.linear) {
        for (const v of l.results) {
          rows.push([
            `int8 ${l.rows}x${l.k} @ ${l.k}x${l.n}: ${v.name}`,
            fmt(v.ms),
            `ms; ${fmt(v.tflops)} TFLOP/s, ${fmt(v.weight_gb_per_s)} GB/s of weights, ${fmt(v.speedup_vs_float32)}x, error ${fmt(v.max_rel_error, 2)}`,
          ]);
        }
      }
      for (const d of r.decode.runs) {
        rows.push([
          `int8 ${r.decode.shape.name} decode, ${d.weights} weights`,
          fmt(d.decode_tokens_per_s),
          `tokens/s (${fmt(d.decode_speedup)}x); prefill ${r.decode.prompt_tokens} tokens ${fmt(d.prefill_tokens_per_s)} tokens/s (${fmt(d.prefill_speedup)}x)`,
        ]);
      }
      return rows;
    }
    case 'pytorch':
      return pytorchRows(section);
    default:
      return [];
  }
}

export function printSummary(doc, log = console.log) {
  log('');
  log(`adapter: ${doc.adapter?.summary ?? 'none'}`);
  if (doc.adapter) {
    log(`features: shader-f16 ${doc.adapter.shader_f16}, subgroups ${doc.adapter.subgroups}`);
    const peak = doc.adapter.nominal_fp32_peak;
    log(`nominal fp32 peak: ${peak ? `${peak.tflops} TFLOP/s (${peak.source})` : 'unknown adapter'}`);
  }
  const rows = [];
  for (const s of doc.sections) {
    if (s.status === 'ok') rows.push(...rowsOf(s), ...ratioRows(s));
    else rows.push([s.name, s.status, s.note ?? s.error ?? '']);
  }
  const width = Math.max(...rows.map((r) => r[0].length));
  for (const [name, value, unit] of rows)
    log(`${name.padEnd(width)}  ${String(value).padStart(10)}  ${unit}`);
  log(`elapsed ${doc.elapsed_s.toFixed(1)} s of a ${doc.budget_s} s budget`);
}
