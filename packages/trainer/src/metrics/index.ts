export { lossCurveHtml, writeLossCurve } from './loss-curve.js';
export { measureMatmulFlops } from './measure-flops.js';
export { type EvalMetrics, MetricsLog, readMetrics, type StepMetrics } from './metrics-log.js';
export { flopsPerSample, mfu, PEAK_FLOPS } from './mfu.js';
export { ProgressBar, type ProgressUpdate } from './progress-bar.js';
