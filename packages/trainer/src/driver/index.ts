export { LocalParameters } from './local-parameters.js';
export { type LmContext, lmContext, mptChainUnits, shiftedTargets } from './mpt-units.js';
export type { ParameterHost } from './parameter-host.js';
export {
  type ChainUnit,
  forwardBackwardChain,
  forwardChain,
  type ParamMap,
  type UnitHooks,
  type UnitPhase,
} from './unit-chain.js';
