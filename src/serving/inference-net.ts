// The seed network rewritten for serving, about twice as fast as forwardInfer
// (src/model/forward.ts) and equal to it up to float rounding. At inference each
// BatchNorm is a fixed per-channel affine map y = a·h + b applied after a ReLU,
// so it folds into whatever linear step comes next: the next conv (kernel scaled
// by a over its input channels, plus a bias from b; exact because the convs are
// 'valid', every window sees no padding) or, for the last block, the head (the
// global mean is linear too). What is left is five fused conv+bias+ReLU kernels,
// one pool, a mean and a matrix product (folded-forward.mjs, shared with the inference threads).
import * as tf from '@tensorflow/tfjs';
import type { SeedNetWeights } from '../model/forward.ts';
import { BN_EPSILON, type ConvBlock } from '../model/seed-net.ts';
import { foldedLogits, foldedTensors, type FoldedTensors, type FoldedWeights, type PlainTensor } from './folded-forward.mjs';

export type { FoldedWeights, PlainTensor };

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

  /** Rebuilds a net from weights folded elsewhere (foldedWeights(), e.g. sent to an inference thread). */
  static fromFolded(layout: readonly ConvBlock[], weights: FoldedWeights): InferenceNet {
    return new InferenceNet(layout, foldedTensors(weights));
  }

  /** Folds the BatchNorms of `weights` into new tensors; `weights` can be disposed afterwards. */
  static fold(weights: SeedNetWeights): InferenceNet {
    const folded = tf.tidy((): Folded => {
      const affine = weights.blocks.map((block) => {
        const scale = tf.div(block.gamma, tf.sqrt(tf.add(block.movingVariance.read(), BN_EPSILON)));
        return { scale, shift: tf.sub(block.beta, tf.mul(block.movingMean.read(), scale)) };
      });
      const kernels: tf.Tensor4D[] = [];
      const biases: tf.Tensor1D[] = [];
      weights.blocks.forEach((block, i) => {
        const previous = affine[i - 1];
        const kernel = block.kernel as tf.Tensor4D;
        kernels.push(previous ? tf.mul(kernel, previous.scale.reshape([1, 1, -1, 1])) : kernel.clone());
        biases.push(previous ? tf.sum(tf.mul(kernel, previous.shift.reshape([1, 1, -1, 1])), [0, 1, 2]) : tf.zeros([kernel.shape[3]]));
      });
      const last = affine.at(-1)!;
      const head = weights.head.reshape([weights.head.shape[2]!, weights.head.shape[3]!]) as tf.Tensor2D;
      return {
        kernels,
        biases,
        headKernel: tf.mul(head, last.scale.reshape([-1, 1])),
        headBias: tf.matMul(last.shift.reshape([1, -1]), head).reshape([-1]),
      };
    }) as Folded;
    return new InferenceNet(weights.layout, folded);
  }

  /** Logits for a batch [N, 28, 28, 1] of normalised images. */
  logits(x: tf.Tensor4D): tf.Tensor2D {
    return foldedLogits(this.layout, this.folded, x);
  }

  /** The folded weights as plain arrays with their tfjs shapes (for export to other formats, e.g. ONNX). */
  foldedWeights(): FoldedWeights {
    const { kernels, biases, headKernel, headBias } = this.folded;
    const plain = (t: tf.Tensor) => ({ shape: t.shape, data: t.dataSync() as Float32Array });
    return { kernels: kernels.map(plain), biases: biases.map(plain), headKernel: plain(headKernel), headBias: plain(headBias) };
  }

  dispose(): void {
    const { kernels, biases, headKernel, headBias } = this.folded;
    tf.dispose([...kernels, ...biases, headKernel, headBias]);
  }
}
