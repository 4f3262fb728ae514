export { forwardBackwardChain, forwardChain } from './drivers.js';
export type { HostTensor, StateDict } from './host-tensor.js';
export { LocalParameters } from './local-parameters.js';
export type { ParameterHost } from './parameter-host.js';
export {
  type ChainUnit,
  type ParamMap,
  paramLookup,
  type UnitDescriptor,
  type UnitHooks,
  type UnitPhase,
} from './unit.js';
