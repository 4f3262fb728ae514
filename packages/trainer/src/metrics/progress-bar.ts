export interface ProgressUpdate {
  step: number;
  loss: number;
  tokensPerS: number;
  /** Seconds per step so far in this process, for the ETA. */
  secondsPerStep: number;
}

function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return '?';
  const t = Math.round(s);
  const h = Math.floor(t / 3600);
  const m = Math.floor((t % 3600) / 60);
  const sec = t % 60;
  const pad = (n: number) => String(n).padStart(2, '0');
  return h > 0 ? `${h}:${pad(m)}:${pad(sec)}` : `${m}:${pad(sec)}`;
}

/**
 * A one-line progress bar for a terminal, rewritten in place with `\r`: `[####....] 12/100 loss 2.3456
 * 1,234 tok/s ETA 1:02`. Other output goes through `print`, which clears the bar and redraws it after.
 */
export class ProgressBar {
  private line = '';

  constructor(
    private readonly write: (text: string) => void,
    public total: number,
    private readonly width = 24,
  ) {}

  render(u: ProgressUpdate): string {
    const frac = this.total > 0 ? Math.min(1, u.step / this.total) : 0;
    const filled = Math.round(frac * this.width);
    const eta = formatSeconds(Math.max(0, this.total - u.step) * u.secondsPerStep);
    return (
      `[${'#'.repeat(filled)}${'.'.repeat(this.width - filled)}] ${u.step}/${this.total} ` +
      `loss ${u.loss.toFixed(4)} ${Math.round(u.tokensPerS).toLocaleString('en-US')} tok/s ETA ${eta}`
    );
  }

  update(u: ProgressUpdate): void {
    this.line = this.render(u);
    this.write(`\r${this.line}\x1b[K`);
  }

  /** Prints a whole line above the bar. */
  print(line: string, print: (line: string) => void): void {
    if (this.line) this.write('\r\x1b[K');
    print(line);
    if (this.line) this.write(this.line);
  }

  /** Leaves the last bar on screen and moves to the next line. */
  finish(): void {
    if (this.line) this.write('\n');
    this.line = '';
  }
}
