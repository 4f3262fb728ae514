export { crossEntropyPlain, fusedCrossEntropy } from './cross-entropy.js';
export { fusedLayerNorm, layerNormPlain } from './layer-norm.js';
export { fusedLinearGelu, linearGelu, linearGeluPlain } from './matmul-gelu.js';
export { fusedKernelsAvailable, registerFusedKernels } from './register.js';
