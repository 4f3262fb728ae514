// Opt-in timing of where a rank's FSDP step goes (MPTJS_FSDP_PROFILE=1): time blocked on all-gathers before a
// unit can run, on reduce-scatters at the end of backward, and in the host-side gradient accumulation, against
// the wall time and the process's CPU time between two takeGradients() calls. One line per step on stderr.
export class StepProfile {
  private gatherWait = 0;
  private reduceWait = 0;
  private gradHost = 0;
  private last = performance.now();
  private lastCpu = process.cpuUsage();
  private step = 0;

  constructor(
    private readonly rank: number,
    readonly enabled: boolean,
  ) {}

  static fromEnv(rank: number): StepProfile {
    return new StepProfile(rank, process.env['MPTJS_FSDP_PROFILE'] === '1');
  }

  /** Runs `fn`, adding its wall time to `what`. */
  async time<T>(what: 'gatherWait' | 'reduceWait' | 'gradHost', fn: () => Promise<T>): Promise<T> {
    if (!this.enabled) return fn();
    const t0 = performance.now();
    try {
      return await fn();
    } finally {
      this[what] += performance.now() - t0;
    }
  }

  endStep(): void {
    if (!this.enabled) return;
    const now = performance.now();
    const cpu = process.cpuUsage(this.lastCpu);
    const ms = (x: number) => `${x.toFixed(0)}ms`;
    process.stderr.write(
      `[fsdp profile] rank ${this.rank} step ${++this.step}: ${ms(now - this.last)} wall, ` +
        `blocked on all-gather ${ms(this.gatherWait)}, on reduce-scatter ${ms(this.reduceWait)}, ` +
        `gradient read+accumulate ${ms(this.gradHost)}; process CPU ${ms((cpu.user + cpu.system) / 1000)} ` +
        '(all threads: both ranks when they are threads)\n',
    );
    this.gatherWait = this.reduceWait = this.gradHost = 0;
    this.last = now;
    this.lastCpu = process.cpuUsage();
  }
}
