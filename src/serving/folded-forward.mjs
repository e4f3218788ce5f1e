// The serving forward pass over folded weights (fold.ts explains the
// folding): five fused conv+bias+ReLU kernels, one pool, a global mean and the
// head. Plain JavaScript so that inference threads (inference-thread.mjs) can run
// it without the TypeScript loader, which costs about 60 MB per thread; InferenceNet
// runs the same function on the event loop. Types: folded-forward.d.mts. Only tfjs-core:
// the union package's layers, converter, data and webgl code cost a thread ~23 MB more.
import * as tf from '@tensorflow/tfjs-core';

export function foldedLogits(layout, folded, x) {
  const { kernels, biases, headKernel, headBias } = folded;
  return tf.tidy(() => {
    let h = x;
    layout.forEach((block, i) => {
      h = tf.fused.conv2d({ x: h, filter: kernels[i], strides: 1, pad: 'valid', bias: biases[i], activation: 'relu' });
      if (block.poolAfter) h = tf.avgPool(h, 2, 2, 'valid');
    });
    return tf.add(tf.matMul(tf.mean(h, [1, 2]), headKernel), headBias);
  });
}

/** Tensors from plain { shape, data } weights (as fold.ts gives them). */
export function foldedTensors(weights) {
  const tensor = ({ shape, data }) => tf.tensor(data, shape);
  return {
    kernels: weights.kernels.map(tensor),
    biases: weights.biases.map(tensor),
    headKernel: tensor(weights.headKernel),
    headBias: tensor(weights.headBias),
  };
}
