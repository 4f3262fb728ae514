/**
 * A download progress line on stderr: redrawn in place on a terminal, one summary line per file otherwise (logs
 * and CI output stay readable).
 */

export interface ProgressSink {
  start(file: string, total: number | undefined, resumedFrom: number): void;
  update(done: number): void;
  finish(): void;
}

const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;

export function progressBar(stream: NodeJS.WriteStream = process.stderr): ProgressSink {
  let file = '';
  let total: number | undefined;
  let base = 0;
  let done = 0;
  let t0 = 0;
  let lastDraw = 0;
  const tty = Boolean(stream.isTTY);
  const line = () => {
    const secs = (performance.now() - t0) / 1000;
    const rate = secs > 0 ? `${mb((done - base) / secs)}/s` : '';
    if (total === undefined) return `${file} ${mb(done)} ${rate}`;
    const frac = total > 0 ? done / total : 1;
    const width = 24;
    const filled = Math.round(frac * width);
    return `${file} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(frac * 100).toFixed(0).padStart(3)}% ${mb(done)}/${mb(total)} ${rate}`;
  };
  return {
    start(name, size, resumedFrom) {
      file = name;
      total = size;
      base = done = resumedFrom;
      t0 = performance.now();
      lastDraw = 0;
      if (!tty && resumedFrom > 0) stream.write(`${name}: resuming at ${mb(resumedFrom)}\n`);
    },
    update(n) {
      done = n;
      const now = performance.now();
      if (tty && now - lastDraw > 100) {
        lastDraw = now;
        stream.write(`\r${line()}\x1b[K`);
      }
    },
    finish() {
      if (tty) stream.write(`\r${line()}\x1b[K\n`);
      else stream.write(`${line()}\n`);
    },
  };
}

/** A sink that shows nothing. */
export const silentProgress: ProgressSink = { start() {}, update() {}, finish() {} };
