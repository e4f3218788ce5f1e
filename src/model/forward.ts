// Functional forward pass over the layers model's own variables. Training uses it
// instead of model.apply: it skips the layers API's per-call bookkeeping, takes
// dropout masks from our seeded generator (so resumed runs repeat exactly) and
// hands back the batch statistics for the BatchNorm running averages.
import * as tf from '@tensorflow/tfjs';
import { architectureOf, ARCHITECTURES, BN_EPSILON, BN_MOMENTUM, DROPOUT_RATE, type ConvBlock } from './seed-net.ts';
import { reluBatchNormDropout } from '../engine/ops.ts';
import { deriveSeed } from '../lib/random.ts';

export interface BlockWeights {
  kernel: tf.Variable;
  gamma: tf.Variable;
  beta: tf.Variable;
  movingMean: tf.LayerVariable;
  movingVariance: tf.LayerVariable;
}

export interface SeedNetWeights {
  /** The architecture's conv blocks (seed or compact), one per entry of `blocks`. */
  layout: readonly ConvBlock[];
  blocks: BlockWeights[];
  head: tf.Variable;
  /** Every trainable variable, in the model's order (the optimizer's order too). */
  trainable: tf.Variable[];
}

function layerWeight(model: tf.LayersModel, layer: string, name: string): tf.LayerVariable {
  const weight = model.getLayer(layer).weights.find((w) => w.originalName.endsWith(`/${name}`));
  if (!weight) throw new Error(`seed net layer ${layer} has no weight ${name}`);
  return weight;
}

export function seedNetWeights(model: tf.LayersModel): SeedNetWeights {
  const variable = (layer: string, name: string) => layerWeight(model, layer, name).read() as tf.Variable;
  const layout = ARCHITECTURES[architectureOf(model)].blocks;
  const blocks = layout.map((block) => ({
    kernel: variable(`${block.name}_conv`, 'kernel'),
    gamma: variable(`${block.name}_bn`, 'gamma'),
    beta: variable(`${block.name}_bn`, 'beta'),
    movingMean: layerWeight(model, `${block.name}_bn`, 'moving_mean'),
    movingVariance: layerWeight(model, `${block.name}_bn`, 'moving_variance'),
  }));
  const head = variable('block4_conv', 'kernel');
  const trainable = model.trainableWeights.map((w) => w.read() as tf.Variable);
  return { layout, blocks, head, trainable };
}

export interface BatchStatistics {
  mean: tf.Tensor1D;
  variance: tf.Tensor1D;
  /** Values per channel the statistics were taken over (N·H·W), for the unbiased variance. */
  count: number;
}

export interface TrainForward {
  logits: tf.Tensor2D;
  statistics: BatchStatistics[];
}

/**
 * Training-mode forward: BatchNorm on batch statistics, dropout on. `dropoutSeed`
 * must differ per batch; `dropoutRate` 0 turns dropout off (parity checks).
 * Returns logits (pre-softmax) and each block's batch stats.
 */
export function forwardTrain(
  weights: SeedNetWeights,
  x: tf.Tensor4D,
  dropoutSeed: number,
  dropoutRate = DROPOUT_RATE,
): TrainForward {
  const statistics: BatchStatistics[] = [];
  let h: tf.Tensor4D = x;
  weights.layout.forEach((block, i) => {
    const w = weights.blocks[i]!;
    const z = tf.conv2d(h, w.kernel as tf.Tensor4D, 1, 'valid');
    // ReLU → BatchNorm → Dropout as one op with a hand-written gradient (src/engine/ops.ts):
    // a handful of passes instead of the ~40 kernels tfjs would record for them.
    const { y, mean, variance, count } = reluBatchNormDropout(z, w.gamma as tf.Tensor1D, w.beta as tf.Tensor1D, {
      epsilon: BN_EPSILON,
      dropoutRate: block.dropout ? dropoutRate : 0,
      seed: deriveSeed(dropoutSeed, i),
    });
    statistics.push({ mean, variance, count });
    h = block.poolAfter ? (tf.avgPool(y, 2, 2, 'valid') as tf.Tensor4D) : y;
  });
  return { logits: head(weights, h), statistics };
}

/** Inference-mode forward (BatchNorm on running statistics, no dropout): logits. */
export function forwardInfer(weights: SeedNetWeights, x: tf.Tensor4D): tf.Tensor2D {
  let h: tf.Tensor4D = x;
  weights.layout.forEach((block, i) => {
    const w = weights.blocks[i]!;
    // A block's intermediates are freed as soon as it is done, not at the caller's tidy:
    // on an evaluation chunk they are tens of MB each, and the wasm heap never shrinks.
    const next = tf.tidy(() => {
      const a = tf.relu(tf.conv2d(h, w.kernel as tf.Tensor4D, 1, 'valid'));
      const y = tf.batchNorm(a, w.movingMean.read(), w.movingVariance.read(), w.beta, w.gamma, BN_EPSILON) as tf.Tensor4D;
      return block.poolAfter ? (tf.avgPool(y, 2, 2, 'valid') as tf.Tensor4D) : y;
    });
    if (h !== x) h.dispose();
    h = next;
  });
  const logits = head(weights, h);
  if (h !== x) h.dispose();
  return logits;
}

function head(weights: SeedNetWeights, h: tf.Tensor4D): tf.Tensor2D {
  const pooled = tf.mean(h, [1, 2]) as tf.Tensor2D; // global average pool → [N, C]
  const kernel = weights.head.reshape([weights.head.shape[2]!, weights.head.shape[3]!]) as tf.Tensor2D;
  return tf.matMul(pooled, kernel); // the 1×1 conv on a 1×1 map is a matrix product
}

/** Running averages as PyTorch keeps them (unbiased batch variance, momentum 0.1). */
export function updateRunningStatistics(weights: SeedNetWeights, statistics: BatchStatistics[]): void {
  tf.tidy(() => {
    statistics.forEach((stats, i) => {
      const w = weights.blocks[i]!;
      const unbiased = stats.variance.mul(stats.count / Math.max(1, stats.count - 1));
      w.movingMean.write(w.movingMean.read().mul(BN_MOMENTUM).add(stats.mean.mul(1 - BN_MOMENTUM)));
      w.movingVariance.write(w.movingVariance.read().mul(BN_MOMENTUM).add(unbiased.mul(1 - BN_MOMENTUM)));
    });
  });
}
