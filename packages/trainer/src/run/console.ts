import { ProgressBar } from '../metrics/progress-bar.js';
import type { TrainOptions } from './run-options.js';

/** Where a run's lines go: rank 0 prints (above the live bar, when there is one); other ranks stay quiet. */
export interface RunConsole {
  /** Rank 0's lines (through the bar when there is one); other ranks drop them. */
  log(line: string): void;
  /** Any rank's own output (default stderr). */
  print(line: string): void;
  bar?: ProgressBar;
}

export function runConsole(opts: TrainOptions, lead: boolean): RunConsole {
  const print = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const bar =
    lead && opts.progress && opts.config.progressBar !== false
      ? new ProgressBar(opts.progress, 0)
      : undefined;
  const log = (line: string) => {
    if (!lead) return;
    if (bar) bar.print(line, print);
    else print(line);
  };
  return bar ? { log, print, bar } : { log, print };
}

/** `[mptjs] rank R (local_rank L): ...` for a line a rank prints about itself. */
export function rankLine(line: string, rank: number): string {
  const local = process.env['LOCAL_RANK'];
  const where = local !== undefined && local !== '' ? ` (local_rank ${local})` : '';
  return line.replace(/^\[mptjs\] /, `[mptjs] rank ${rank}${where}: `);
}
