import type * as tf from '@tensorflow/tfjs-core';

export interface FoldedTensors {
  /** Per block: the conv kernel with the previous block's BatchNorm scale folded in. */
  kernels: tf.Tensor4D[];
  /** Per block: the previous block's BatchNorm shift through this conv (zeros for the first block). */
  biases: tf.Tensor1D[];
  headKernel: tf.Tensor2D;
  headBias: tf.Tensor1D;
}

export interface PlainTensor {
  shape: number[];
  data: Float32Array;
}

/** Folded weights as plain arrays with their tfjs shapes: conv kernels [kh, kw, in, out] and biases per block, head [in, classes] and bias. */
export interface FoldedWeights {
  kernels: PlainTensor[];
  biases: PlainTensor[];
  headKernel: PlainTensor;
  headBias: PlainTensor;
}

/** Logits for a batch [N, 28, 28, 1] of normalised images. */
export function foldedLogits(layout: readonly { poolAfter: boolean }[], folded: FoldedTensors, x: tf.Tensor4D): tf.Tensor2D;

export function foldedTensors(weights: FoldedWeights): FoldedTensors;
