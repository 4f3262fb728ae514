// tfjs-core's Node entry registers no gradient functions; the union package registers them all (in the shared
// global registry) on import, which is what tf.grad and tf.variableGrads need.
import '@tensorflow/tfjs';
