// `data stats`: draw samples from the mixture and report, per stream, what was drawn next to the target.
import type { MixerConfig } from './config.js';
import { Mixer, type TokenizerInstance } from './mixer.js';
import type { TokenizerSpec } from './tokenizer.js';

export interface StreamStats {
  samples: number;
  tokens: number;
  /** Realised fraction of samples. */
  fraction: number;
  /** Target fraction. */
  target: number;
  /** Bad records left out under `on_bad_record: skip` while drawing these samples. */
  skipped: number;
}

export interface MixStats {
  samples: number;
  streams: Record<string, StreamStats>;
}

export async function mixStats(
  config: MixerConfig,
  tokenizer: TokenizerSpec | TokenizerInstance,
  samples: number,
): Promise<MixStats> {
  if (!Number.isInteger(samples) || samples <= 0)
    throw new Error(`--samples must be a positive integer, got ${samples}`);
  const mixer = await Mixer.open({ config, tokenizer });
  const counts = new Array<number>(config.streams.length).fill(0);
  const row = new Int32Array(config.maxSeqLen);
  for (let i = 0; i < samples; i++) counts[await mixer.next(row)]!++;
  const skipped = mixer.skippedRecords();
  const streams: Record<string, StreamStats> = {};
  config.streams.forEach((s, i) => {
    streams[s.name] = {
      samples: counts[i]!,
      tokens: counts[i]! * config.maxSeqLen,
      fraction: counts[i]! / samples,
      target: mixer.weights[i]!,
      skipped: skipped[s.name] ?? 0,
    };
  });
  return { samples, streams };
}

/** A plain-text table of `mixStats` output (with a `skipped` column when any bad record was skipped). */
export function formatMixStats(stats: MixStats): string {
  const names = Object.keys(stats.streams);
  const width = Math.max(6, ...names.map((n) => n.length));
  const anySkipped = names.some((n) => stats.streams[n]!.skipped > 0);
  const lines = [
    `${'stream'.padEnd(width)}  ${'samples'.padStart(8)}  ${'tokens'.padStart(10)}  fraction  target${anySkipped ? '  skipped' : ''}`,
  ];
  for (const name of names) {
    const s = stats.streams[name]!;
    lines.push(
      `${name.padEnd(width)}  ${String(s.samples).padStart(8)}  ${String(s.tokens).padStart(10)}  ${s.fraction.toFixed(4).padStart(8)}  ${s.target.toFixed(4)}${anySkipped ? `  ${String(s.skipped).padStart(7)}` : ''}`,
    );
  }
  return lines.join('\n');
}
