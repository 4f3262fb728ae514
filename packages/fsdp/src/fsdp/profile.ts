// Where a rank's FSDP step goes. Always counted: the bytes read from tensors to the host (gradients, shards) and
// written from the host into tensors (gathered parameters, gradient shards). With profiling on
// (MPTJS_FSDP_PROFILE=1, or the `profile` option): the time blocked on all-gathers before a unit can run, on
// gradient readbacks and on reduce-scatters at the end of backward, and in reading gradients inline (the
// unbucketed path), against the wall time, the time readbacks were in flight (overlapped with compute when it
// exceeds the time blocked on them) and the process's CPU time, between two takeGradients() calls. One line per
// step on stderr when enabled by the environment; `last` holds the latest step's figures either way.

/** One step's figures (times in milliseconds; zero unless profiling is on). */
export interface StepRecord {
  step: number;
  wallMs: number;
  /** Blocked waiting for a unit's gathered parameters. */
  gatherWaitMs: number;
  /** Blocked at the end of backward on gradient readbacks still in flight (bucketed path). */
  readbackWaitMs: number;
  /** Blocked at the end of backward on reduce-scatters (ring) or on the peers' gradients (shared arena). */
  reduceWaitMs: number;
  /** Reading gradients inline and accumulating them on the host (unbucketed path). */
  gradHostMs: number;
  /** Sum over buckets of the time from a readback's issue to its completion. */
  readbackInFlightMs: number;
  /**
   * Wall time not blocked on any of the above: this rank's own compute on wasm and cpu; on a GPU the host's share
   * (running the units and queueing their kernels), the GPU's own time showing up in the waits above.
   */
  computeMs: number;
  /** Bytes read from tensors to the host (gradients, shards for gathers and publishing). */
  bytesReadBack: number;
  /** Bytes written from the host into tensors (gathered parameters, gradient shards for the optimizer). */
  bytesUploaded: number;
  /** Gradient readbacks issued (one per bucket, or one per parameter on the unbucketed path). */
  gradientReads: number;
  /** Process CPU time (all threads: both ranks when they are threads of one process). */
  cpuMs: number;
}

type Blocked = 'gatherWait' | 'readbackWait' | 'reduceWait' | 'gradHost';

export class StepProfile {
  private readonly blocked: Record<Blocked, number> = {
    gatherWait: 0,
    readbackWait: 0,
    reduceWait: 0,
    gradHost: 0,
  };
  private readbackInFlight = 0;
  private bytesReadBack = 0;
  private bytesUploaded = 0;
  private gradientReads = 0;
  private lastTime = performance.now();
  private lastCpu = process.cpuUsage();
  private step = 0;
  /** The latest completed step's figures. */
  last: StepRecord | null = null;

  constructor(
    private readonly rank: number,
    /** Whether times are measured. */
    readonly enabled: boolean,
    /** Whether each step's line is printed on stderr. */
    private readonly print = enabled,
  ) {}

  static fromEnv(rank: number, enabled?: boolean): StepProfile {
    const env = process.env['MPTJS_FSDP_PROFILE'] === '1';
    return new StepProfile(rank, enabled ?? env, env);
  }

  /** Runs `fn`, adding its wall time to `what`. */
  async time<T>(what: Blocked, fn: () => Promise<T>): Promise<T> {
    if (!this.enabled) return fn();
    const t0 = performance.now();
    try {
      return await fn();
    } finally {
      this.blocked[what] += performance.now() - t0;
    }
  }

  /** Counts a gradient readback of `bytes` issued now, and (bucketed) the time until `done` settles. */
  readback(bytes: number, done?: Promise<unknown>): void {
    this.gradientReads++;
    this.bytesReadBack += bytes;
    if (!this.enabled || !done) return;
    const t0 = performance.now();
    const settle = () => {
      this.readbackInFlight += performance.now() - t0;
    };
    done.then(settle, settle);
  }

  /** Counts other bytes read from tensors (shards). */
  read(bytes: number): void {
    this.bytesReadBack += bytes;
  }

  uploaded(bytes: number): void {
    this.bytesUploaded += bytes;
  }

  endStep(): StepRecord {
    const now = performance.now();
    const cpu = process.cpuUsage(this.lastCpu);
    const b = this.blocked;
    const wallMs = now - this.lastTime;
    const record: StepRecord = {
      step: ++this.step,
      wallMs,
      gatherWaitMs: b.gatherWait,
      readbackWaitMs: b.readbackWait,
      reduceWaitMs: b.reduceWait,
      gradHostMs: b.gradHost,
      readbackInFlightMs: this.readbackInFlight,
      computeMs: Math.max(0, wallMs - b.gatherWait - b.readbackWait - b.reduceWait - b.gradHost),
      bytesReadBack: this.bytesReadBack,
      bytesUploaded: this.bytesUploaded,
      gradientReads: this.gradientReads,
      cpuMs: (cpu.user + cpu.system) / 1000,
    };
    if (this.print) process.stderr.write(`${formatStep(this.rank, record)}\n`);
    this.last = record;
    b.gatherWait = b.readbackWait = b.reduceWait = b.gradHost = 0;
    this.readbackInFlight = this.bytesReadBack = this.bytesUploaded = this.gradientReads = 0;
    this.lastTime = now;
    this.lastCpu = process.cpuUsage();
    return record;
  }
}

/** The profile line of one step. */
export function formatStep(rank: number, r: StepRecord): string {
  const ms = (x: number) => `${x.toFixed(0)}ms`;
  const mb = (x: number) => `${(x / 2 ** 20).toFixed(2)} MiB`;
  return (
    `[fsdp profile] rank ${rank} step ${r.step}: ${ms(r.wallMs)} wall, ${ms(r.computeMs)} computing; ` +
    `blocked on all-gather ${ms(r.gatherWaitMs)}, on gradient readback ${ms(r.readbackWaitMs)} ` +
    `(${r.gradientReads} reads in flight ${ms(r.readbackInFlightMs)} in all), on reduce-scatter ` +
    `${ms(r.reduceWaitMs)}, gradient read+accumulate inline ${ms(r.gradHostMs)}; read back ` +
    `${mb(r.bytesReadBack)}, uploaded ${mb(r.bytesUploaded)}; process CPU ${ms(r.cpuMs)} ` +
    '(all threads: both ranks when they are threads)'
  );
}
