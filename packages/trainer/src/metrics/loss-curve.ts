import { existsSync, writeFileSync } from 'node:fs';
import { readMetrics } from './metrics-log.js';

const W = 800;
const H = 420;
const M = { left: 64, right: 20, top: 36, bottom: 48 };

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const num = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const fmt = (v: number) => String(Number.isInteger(v) ? v : Number(v.toPrecision(3)));

/** Tick values: about `n` round numbers spanning [lo, hi]. */
function ticks(lo: number, hi: number, n: number): number[] {
  const span = hi - lo || 1;
  const raw = span / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((k) => k * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step)
    out.push(Number(v.toPrecision(12)));
  return out;
}

/**
 * A self-contained HTML page (no scripts, no external files) with an SVG plot of train loss per step (one
 * polyline point per step) and eval loss points, from `metrics.jsonl` records.
 */
export function lossCurveHtml(records: readonly Record<string, unknown>[], title = 'loss'): string {
  const train = records.filter((r) => num(r['step']) && num(r['loss'])) as { step: number; loss: number }[];
  const evals = records.filter((r) => num(r['step']) && num(r['eval_loss'])) as {
    step: number;
    eval_loss: number;
  }[];
  const steps = [...train.map((r) => r.step), ...evals.map((r) => r.step)];
  const losses = [...train.map((r) => r.loss), ...evals.map((r) => r.eval_loss)];
  const x0 = Math.min(0, ...steps);
  const x1 = Math.max(1, ...steps);
  const y0 = losses.length ? Math.min(...losses) : 0;
  const y1 = losses.length ? Math.max(...losses) : 1;
  const pad = (y1 - y0) * 0.05 || 0.5;
  const [lo, hi] = [Math.max(0, y0 - pad), y1 + pad];
  const px = (s: number) => M.left + ((s - x0) / (x1 - x0)) * (W - M.left - M.right);
  const py = (l: number) => M.top + (1 - (l - lo) / (hi - lo)) * (H - M.top - M.bottom);
  const p = (v: number) => v.toFixed(1);

  const grid: string[] = [];
  for (const t of ticks(lo, hi, 6)) {
    grid.push(
      `<line class="grid" x1="${M.left}" x2="${W - M.right}" y1="${p(py(t))}" y2="${p(py(t))}"/>`,
      `<text x="${M.left - 6}" y="${p(py(t) + 4)}" text-anchor="end">${fmt(t)}</text>`,
    );
  }
  for (const t of ticks(x0, x1, 8).filter((v) => Number.isInteger(v))) {
    grid.push(`<text x="${p(px(t))}" y="${H - M.bottom + 18}" text-anchor="middle">${fmt(t)}</text>`);
  }
  const trainLine = train.length
    ? `<polyline class="train" points="${train.map((r) => `${p(px(r.step))},${p(py(r.loss))}`).join(' ')}"/>`
    : '';
  const evalDots = evals
    .map(
      (r) =>
        `<circle class="eval" cx="${p(px(r.step))}" cy="${p(py(r.eval_loss))}" r="4"><title>step ${r.step}: eval loss ${r.eval_loss.toFixed(4)}</title></circle>`,
    )
    .join('');
  const last = train.at(-1);
  const caption = last ? `${train.length} steps, final train loss ${last.loss.toFixed(4)}` : 'no steps yet';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>body{font:14px system-ui,sans-serif;margin:24px;color:#222}svg text{font-size:12px;fill:#444}
.grid{stroke:#e4e4e4}.axis{stroke:#888}.train{fill:none;stroke:#1f77b4;stroke-width:1.5}
.eval{fill:#d62728}.legend{font-size:13px}</style></head>
<body><h1>${esc(title)}</h1><p>${esc(caption)}</p>
<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="loss vs step">
${grid.join('\n')}
<line class="axis" x1="${M.left}" x2="${M.left}" y1="${M.top}" y2="${H - M.bottom}"/>
<line class="axis" x1="${M.left}" x2="${W - M.right}" y1="${H - M.bottom}" y2="${H - M.bottom}"/>
<text x="${(M.left + W - M.right) / 2}" y="${H - 10}" text-anchor="middle">step</text>
<text transform="translate(16 ${(M.top + H - M.bottom) / 2}) rotate(-90)" text-anchor="middle">loss</text>
${trainLine}
${evalDots}
<line class="train" x1="${W - 190}" x2="${W - 170}" y1="18" y2="18"/><text class="legend" x="${W - 165}" y="22">train loss</text>
<circle class="eval key" cx="${W - 90}" cy="18" r="4"/><text class="legend" x="${W - 82}" y="22">eval loss</text>
</svg></body></html>
`;
}

/** Writes `outPath` from the metrics.jsonl at `metricsPath` (nothing when that file does not exist). */
export function writeLossCurve(metricsPath: string, outPath: string, title?: string): void {
  if (!existsSync(metricsPath)) return;
  writeFileSync(outPath, lossCurveHtml(readMetrics(metricsPath), title));
}
