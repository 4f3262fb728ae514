export { type LmContext, lmContext, mptChainUnits, shiftedTargets } from './mpt-units.js';
