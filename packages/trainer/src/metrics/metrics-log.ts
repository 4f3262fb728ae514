import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';

export interface StepMetrics {
  step: number;
  loss: number;
  lr: number;
  grad_norm: number;
  tokens: number;
  tokens_per_s: number;
  mfu: number | null;
  elapsed_s: number;
  [key: string]: unknown;
}

export interface EvalMetrics {
  step: number;
  eval_loss: number;
  eval_perplexity: number;
  tokens: number;
  elapsed_s: number;
  [key: string]: unknown;
}

/** `metrics.jsonl`: one JSON object per line, appended as the run goes. */
export class MetricsLog {
  constructor(readonly path: string) {}

  write(record: StepMetrics | EvalMetrics | Record<string, unknown>): void {
    appendFileSync(this.path, `${JSON.stringify(record)}\n`);
  }

  /** On resume: drops lines logged after `step` by the run that crashed, so each step appears once. */
  truncateAfter(step: number): void {
    if (!existsSync(this.path)) return;
    const kept = readFileSync(this.path, 'utf8')
      .split('\n')
      .filter((line) => line.trim() !== '')
      .filter((line) => {
        try {
          const s = (JSON.parse(line) as { step?: unknown }).step;
          return typeof s !== 'number' || s <= step;
        } catch {
          return false; // a line torn by the crash
        }
      });
    writeFileSync(this.path, kept.map((l) => `${l}\n`).join(''));
  }
}

export function readMetrics(path: string): Record<string, unknown>[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}
