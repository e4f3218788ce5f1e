// The seed network rewritten for serving, about twice as fast as forwardInfer
// (src/model/forward.ts) and equal to it up to float rounding: the BatchNorms folded
// into the convs and the head (fold.ts), then five fused conv+bias+ReLU kernels, one
// pool, a mean and a matrix product (folded-forward.mjs, shared with the inference threads).
// Used where forward passes run on this thread (INFERENCE_THREADS=0, the CLI, benchmarks).
import * as tf from '@tensorflow/tfjs';
import { architectureOf, type ConvBlock } from '../model/seed-net.ts';
import { INPUT_SHAPE } from '../model/spec.ts';
import { foldSeedNet, type FoldedModel } from './fold.ts';
import { foldedLogits, foldedTensors, type FoldedTensors, type FoldedWeights } from './folded-forward.mjs';

// A type, not an interface: tf.tidy returns only containers with an index signature.
type Folded = { [K in keyof FoldedTensors]: FoldedTensors[K] };

export class InferenceNet {
  /** The architecture's conv blocks (seed or compact). */
  readonly layout: readonly ConvBlock[];
  private readonly folded: Folded;

  private constructor(layout: readonly ConvBlock[], folded: Folded) {
    this.layout = layout;
    this.folded = folded;
  }

  /** A net on weights folded by fold.ts. */
  static fromFolded(layout: readonly ConvBlock[], weights: FoldedWeights): InferenceNet {
    return new InferenceNet(layout, foldedTensors(weights));
  }

  /** A seed-net-family layers model folded (fold.ts) into new tensors; the model can be disposed afterwards. */
  static fold(model: tf.LayersModel): InferenceNet {
    const { layout, weights } = foldedOf(model);
    return InferenceNet.fromFolded(layout, weights);
  }

  /** Softmax outputs [count × classes] of `count` normalised images, one after another in `batch`. */
  async probabilities(batch: Float32Array, count: number): Promise<Float32Array> {
    const probabilities = tf.tidy(() => tf.softmax(this.logits(tf.tensor4d(batch, [count, ...INPUT_SHAPE]))));
    try {
      return (await probabilities.data()) as Float32Array;
    } finally {
      probabilities.dispose();
    }
  }

  /** Logits for a batch [N, 28, 28, 1] of normalised images. */
  logits(x: tf.Tensor4D): tf.Tensor2D {
    return foldedLogits(this.layout, this.folded, x);
  }

  dispose(): void {
    const { kernels, biases, headKernel, headBias } = this.folded;
    tf.dispose([...kernels, ...biases, headKernel, headBias]);
  }
}

/** A layers model of the seed-net family, folded (fold.ts); the model is left as it is. */
export function foldedOf(model: tf.LayersModel): FoldedModel {
  // Variables' original names are the names model.json saves them under.
  const weights = new Map(model.weights.map((w) => [w.originalName, { shape: w.shape as number[], data: w.read().dataSync() as Float32Array }]));
  return foldSeedNet(architectureOf(model), weights, `model ${model.name}`);
}
