import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeTinyRun } from '@mptjs/test-fixtures';
import { describe, expect, it } from 'vitest';
import { loadTrainConfig } from '../config/load.js';
import { train } from '../trainer.js';
import { lossCurveHtml } from './loss-curve.js';
import { readMetrics } from './metrics-log.js';
import { ProgressBar } from './progress-bar.js';

const polylinePoints = (html: string) =>
  (/<polyline class="train" points="([^"]*)"/.exec(html)?.[1] ?? '').trim().split(/\s+/);

describe('ProgressBar', () => {
  it('renders step/total, loss, tokens/s and ETA, in place, and prints other lines above it', () => {
    let out = '';
    const bar = new ProgressBar(
      (t) => {
        out += t;
      },
      100,
      10,
    );
    bar.update({ step: 25, loss: 2.345678, tokensPerS: 12345.6, secondsPerStep: 2 });
    expect(out).toBe('\r[###.......] 25/100 loss 2.3457 12,346 tok/s ETA 2:30\x1b[K');
    out = '';
    const printed: string[] = [];
    bar.print('[mptjs] checkpoint x', (l) => printed.push(l));
    expect(printed).toEqual(['[mptjs] checkpoint x']);
    expect(out).toBe('\r\x1b[K[###.......] 25/100 loss 2.3457 12,346 tok/s ETA 2:30');
    out = '';
    bar.update({ step: 100, loss: 1, tokensPerS: 1, secondsPerStep: 4000 });
    expect(out).toContain('[##########] 100/100');
    expect(out).toContain('ETA 0:00');
    expect(bar.render({ step: 10, loss: 1, tokensPerS: 1, secondsPerStep: 400 })).toContain('ETA 10:00:00');
    out = '';
    bar.finish();
    expect(out).toBe('\n');
  });
});

describe('lossCurveHtml', () => {
  it('plots one point per train step and a circle per eval, with no external references', () => {
    const records = [
      { step: 1, loss: 5.5, lr: 0 },
      { step: 2, loss: 4.25, lr: 1 },
      { step: 2, eval_loss: 4.5, eval_perplexity: 90 },
      { step: 3, loss: 3.0, lr: 1 },
    ];
    const html = lossCurveHtml(records, 'tiny <run>');
    expect(html).toMatch(/^<!doctype html>/);
    expect(html).toContain('<title>tiny &lt;run&gt;</title>');
    expect(polylinePoints(html)).toHaveLength(3);
    expect(html.match(/<circle class="eval" cx/g)).toHaveLength(1);
    expect(html).toContain('step 2: eval loss 4.5000');
    expect(html).not.toMatch(/<script|src=|href=/);
    // Higher loss is drawn higher up (smaller y).
    const ys = polylinePoints(html).map((pt) => Number(pt.split(',')[1]));
    expect(ys[0]).toBeLessThan(ys[1]!);
    expect(ys[1]).toBeLessThan(ys[2]!);
  });

  it('draws an empty plot without steps', () => {
    expect(lossCurveHtml([])).toContain('no steps yet');
  });
});

describe('train() progress and loss curve (tiny MPT, wasm)', () => {
  it('draws a live bar when given a terminal and writes RUN_DIR/loss-curve.html at the end', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mptjs-progress-'));
    const { config } = loadTrainConfig(writeTinyRun(dir, { maxDuration: '4ba' }));
    const lines: string[] = [];
    let tty = '';
    const runDir = join(dir, 'run');
    await train({
      config,
      runDir,
      backend: 'wasm',
      log: (l) => lines.push(l),
      progress: (t) => {
        tty += t;
      },
    });
    // The bar replaces the per-step lines; other lines still arrive.
    expect(lines.some((l) => l.startsWith('[batch='))).toBe(false);
    expect(lines.some((l) => l.startsWith('[mptjs] checkpoint'))).toBe(true);
    for (let s = 1; s <= 4; s++) expect(tty).toMatch(new RegExp(`\\r\\[[#.]+\\] ${s}/4 loss \\d+\\.\\d{4} `));
    expect(tty.endsWith('\n')).toBe(true);

    const html = readFileSync(join(runDir, 'loss-curve.html'), 'utf8');
    expect(html).toContain('<svg');
    expect(polylinePoints(html)).toHaveLength(4);
    const evals = readMetrics(join(runDir, 'metrics.jsonl')).filter((r) => 'eval_loss' in r);
    expect(html.match(/<circle class="eval" cx/g)).toHaveLength(evals.length);
    expect(html).toContain('4 steps, final train loss');
  }, 30_000);
});
