export { crossEntropyPlain, fusedCrossEntropy } from './cross-entropy.js';
export { fusedLayerNorm, layerNormPlain } from './layer-norm.js';
export { fusedKernelsAvailable, registerFusedKernels } from './register.js';
