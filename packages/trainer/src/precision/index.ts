export { DynamicLossScaler, type LossScalerOptions, type LossScalerState } from './loss-scaler.js';
export { endPrecision, type Precision, type PrecisionPlan, setupPrecision } from './precision.js';
