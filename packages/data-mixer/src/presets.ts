import type { StreamConfig } from './config.js';

/** The RedPajama / Llama data mix that mpt-1b-redpajama-200b was trained on. */
export const REDPAJAMA_MIX: Readonly<Record<string, number>> = Object.freeze({
  common_crawl: 0.67,
  c4: 0.15,
  github: 0.045,
  wikipedia: 0.045,
  books: 0.045,
  arxiv: 0.025,
  stackexchange: 0.02,
});

export const PRESETS = { redpajama: REDPAJAMA_MIX } as const;
export type PresetName = keyof typeof PRESETS;

/** Streams of a named preset, each reading `<root>/<stream name>`. */
export function presetStreams(preset: PresetName, root: string): StreamConfig[] {
  const mix = PRESETS[preset];
  if (!mix)
    throw new Error(`unknown preset ${JSON.stringify(preset)}; known: ${Object.keys(PRESETS).join(', ')}`);
  return Object.entries(mix).map(([name, proportion]) => ({ name, local: `${root}/${name}`, proportion }));
}
