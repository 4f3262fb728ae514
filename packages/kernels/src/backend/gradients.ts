// tfjs-core's Node entry registers no gradient functions; the union package registers them all (in the shared
// global registry) on import, which is what tf.grad and tf.variableGrads need.
import '@tensorflow/tfjs';
import * as tf from '@tensorflow/tfjs-core';

// tfjs's Mean and Sum gradients broadcast dy by multiplying it with `ones(x.shape)`, a host array of x's size
// filled in JavaScript and uploaded on every call (each LayerNorm's backward on wasm and cpu). `onesLike` fills on
// the backend instead; the result is the same product, value for value.
function reduceGradient(kernelName: 'Mean' | 'Sum'): tf.GradConfig {
  return {
    kernelName,
    inputsToSave: ['x'],
    gradFunc: (dy, saved, attrs) => {
      const x = (saved as tf.Tensor[])[0]!;
      const axes = tf.util.parseAxisParam((attrs as { axis: number | number[] }).axis, x.shape);
      const expandedShape = x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
      const expanded = tf.reshape(dy as tf.Tensor, expandedShape);
      const ones = () => (x.dtype === 'float32' ? tf.onesLike(x) : tf.ones(x.shape, 'float32'));
      if (kernelName === 'Sum') return { x: () => tf.mul(expanded, ones()) };
      const count = axes.reduce((n, a) => n * x.shape[a]!, 1);
      return { x: () => tf.div(tf.mul(expanded, ones()), count) };
    },
  };
}
tf.registerGradient(reduceGradient('Mean'));
tf.registerGradient(reduceGradient('Sum'));
