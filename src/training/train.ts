// The training loop: a recipe preset (`fast` by default), a checkpoint after every epoch,
// resumable, cancellable between batches, reporting per-batch progress and
// per-epoch metrics. Model artifacts are written in tfjs format at the end.
import * as tf from '@tensorflow/tfjs';
import { join } from 'node:path';
import { loadDataset } from '../data/datasets.ts';
import type { Dataset, Split } from '../data/types.ts';
import { initEngine } from '../engine/index.ts';
import { writeFileAtomic } from '../lib/atomic-write.ts';
import { deriveSeed, permutation } from '../lib/random.ts';
import { forwardInfer, forwardTrain, seedNetWeights, updateRunningStatistics, type SeedNetWeights } from '../model/forward.ts';
import { buildSeedNet, DROPOUT_RATE, summarize } from '../model/seed-net.ts';
import { IMAGE_PIXELS, INPUT_SHAPE } from '../model/spec.ts';
import { METADATA_JSON } from '../model/artifacts.ts';
import { registerFileRouter, saveModel } from './artifacts.ts';
import { loadCheckpoint, restoreModelWeights, saveCheckpoint } from './checkpoint.ts';
import { augmentImages } from './augment.ts';
import { resolveRecipe } from './recipe.ts';
import { learningRateAt } from './schedule.ts';
import type { Augmentation, EpochMetrics, Recipe, TrainOptions, TrainResult } from './types.ts';

export class ResumeMismatchError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ResumeMismatchError';
  }
}

/** Augmentation of one batch: what to apply, its stream's seed, and the empty-pixel value. */
export interface BatchAugmentation {
  augmentation: Augmentation;
  seed: number;
  background: number;
}

/** Copies the images and labels of `indices` into a batch, augmented when asked. */
function gatherBatch(split: Split, indices: Uint32Array, augment?: BatchAugmentation): { x: tf.Tensor4D; labels: tf.Tensor1D } {
  let images = new Float32Array(indices.length * IMAGE_PIXELS);
  const labels = new Int32Array(indices.length);
  const raw = split.raw;
  indices.forEach((index, row) => {
    if (raw) {
      // Normalised through the same table as Split.images: the same floats.
      const { pixels, normalised } = raw;
      for (let p = 0, from = index * IMAGE_PIXELS, to = row * IMAGE_PIXELS; p < IMAGE_PIXELS; p++) images[to + p] = normalised[pixels[from + p]!]!;
    } else {
      images.set(split.images.subarray(index * IMAGE_PIXELS, index * IMAGE_PIXELS + IMAGE_PIXELS), row * IMAGE_PIXELS);
    }
    labels[row] = split.labels[index]!;
  });
  if (augment) {
    const augmented = new Float32Array(images.length);
    augmentImages(images, augmented, indices.length, augment.augmentation, augment.seed, augment.background);
    images = augmented;
  }
  return { x: tf.tensor4d(images, [indices.length, ...INPUT_SHAPE]), labels: tf.tensor1d(labels, 'int32') };
}

/** Tag of the augmentation stream, so it is unrelated to the dropout stream of the same batch. */
const AUGMENT_STREAM = 0x61756721;

/** Images per forward pass of the evaluation: its activations, not the loss's chunks, set the heap size. */
const EVALUATION_PASS = 200;

/** Mean loss and accuracy on a split, in inference mode, the loss summed in chunks of 1000. */
export function evaluateSplit(weights: SeedNetWeights, split: Split): { loss: number; accuracy: number } {
  let lossSum = 0;
  let correct = 0;
  for (let start = 0; start < split.count; start += 1000) {
    const end = Math.min(split.count, start + 1000);
    const [batchLoss, batchCorrect] = tf.tidy(() => {
      // Each image's logits do not depend on what else is in its pass, so smaller passes
      // give the same chunk of logits, and the same sums, with a fifth of the activations.
      const parts: tf.Tensor2D[] = [];
      const labelParts: tf.Tensor1D[] = [];
      for (let first = start; first < end; first += EVALUATION_PASS) {
        const indices = new Uint32Array(Math.min(EVALUATION_PASS, end - first)).map((_, i) => first + i);
        const { x, labels } = gatherBatch(split, indices);
        parts.push(forwardInfer(weights, x));
        x.dispose();
        labelParts.push(labels);
      }
      const logits = parts.length === 1 ? parts[0]! : tf.concat(parts);
      const labels = labelParts.length === 1 ? labelParts[0]! : tf.concat(labelParts);
      const loss = tf.losses.softmaxCrossEntropy(tf.oneHot(labels, 10), logits, undefined, undefined, tf.Reduction.SUM);
      const hits = tf.equal(tf.argMax(logits, 1), labels).sum();
      return [loss.dataSync()[0]!, hits.dataSync()[0]!];
    });
    lossSum += batchLoss;
    correct += batchCorrect;
  }
  return { loss: lossSum / split.count, accuracy: correct / split.count };
}

export async function train(options: TrainOptions): Promise<TrainResult> {
  const engine = await initEngine(options.engine);
  options.onStart?.({ engine: engine.label });
  registerFileRouter(); // so the saved model also loads with tf.loadLayersModel('file://…')
  const checkpointDir = join(options.outDir, 'checkpoint');
  const checkpoint = options.resume ? await loadCheckpoint(checkpointDir) : undefined;
  // Checkpoints written before presets existed hold a seed-recipe run.
  const saved: Partial<Recipe> | undefined = checkpoint?.state.recipe;
  const recipe: Recipe = resolveRecipe(saved ? { preset: 'seed', ...saved } : options.recipe);
  if (checkpoint && options.recipe.dataset && checkpoint.state.recipe.dataset !== options.recipe.dataset) {
    throw new ResumeMismatchError(
      `checkpoint in ${checkpointDir} is for ${checkpoint.state.recipe.dataset}, not ${options.recipe.dataset}`,
    );
  }
  const dataset: Dataset = await loadDataset({
    dataset: recipe.dataset,
    dataDir: options.dataDir,
    cacheDir: options.cacheDir,
    download: options.download,
    limit: recipe.limit,
    signal: options.signal,
  });

  const model = buildSeedNet(recipe.seed, recipe.architecture);
  const weights = seedNetWeights(model);
  const optimizer = tf.train.momentum(recipe.learningRate, recipe.momentum, recipe.nesterov);
  const metrics: EpochMetrics[] = [];
  if (checkpoint) {
    restoreModelWeights(model, checkpoint.modelWeights);
    await optimizer.setWeights(checkpoint.optimizerWeights);
    metrics.push(...checkpoint.state.metrics);
    tf.dispose(Object.values(checkpoint.modelWeights));
    tf.dispose(checkpoint.optimizerWeights.map((w) => w.tensor));
  }

  const { train: trainSplit, test: testSplit } = dataset;
  const batches = Math.ceil(trainSplit.count / recipe.batchSize);
  const totalSteps = recipe.epochs * batches;
  const background = -dataset.mean / dataset.std; // a 0 pixel, normalised
  const stepOptions = { labelSmoothing: recipe.labelSmoothing, weightDecay: recipe.weightDecay };
  let learningRate = recipe.learningRate;
  const firstEpoch = (checkpoint?.state.epoch ?? 0) + 1;
  const runStart = performance.now();
  let outcome: TrainResult['outcome'] = 'completed';
  const reached = (m: EpochMetrics | undefined) =>
    recipe.targetAccuracy !== undefined && m !== undefined && m.testAccuracy >= recipe.targetAccuracy;

  if (reached(metrics.at(-1))) outcome = 'target-reached';
  for (let epoch = firstEpoch; epoch <= recipe.epochs && outcome === 'completed'; epoch++) {
    const epochStart = performance.now();
    // Shuffle and dropout streams depend only on (seed, epoch, batch): resuming repeats them.
    const order = permutation(trainSplit.count, deriveSeed(recipe.seed, epoch));
    let lossSum = 0;
    let correct = 0;
    let seen = 0;
    for (let batch = 0; batch < batches; batch++) {
      if (options.signal?.aborted) {
        outcome = 'cancelled';
        break;
      }
      const indices = order.subarray(batch * recipe.batchSize, (batch + 1) * recipe.batchSize);
      // The schedule is a function of the global step alone, so a resumed run sets the same rates.
      if (recipe.schedule !== 'constant') {
        learningRate = learningRateAt(recipe, (epoch - 1) * batches + batch, totalSteps, batches);
        (optimizer as tf.SGDOptimizer).setLearningRate(learningRate);
      }
      const augment = recipe.augmentation
        ? { augmentation: recipe.augmentation, seed: deriveSeed(recipe.seed, epoch, batch, AUGMENT_STREAM), background }
        : undefined;
      const [loss, hits] = trainStep(weights, optimizer, trainSplit, indices, deriveSeed(recipe.seed, epoch, batch), DROPOUT_RATE, {
        ...stepOptions,
        augment,
      });
      lossSum += loss * indices.length;
      correct += hits;
      seen += indices.length;
      if (options.onBatch) {
        const done = (epoch - firstEpoch) * batches + batch + 1;
        const remaining = (recipe.epochs - epoch + 1) * batches - batch - 1;
        const elapsed = (performance.now() - runStart) / 1000;
        options.onBatch({
          epoch,
          epochs: recipe.epochs,
          batch: batch + 1,
          batches,
          fraction: ((epoch - 1) * batches + batch + 1) / (recipe.epochs * batches),
          etaSeconds: (elapsed / done) * remaining,
          runningLoss: lossSum / seen,
          loss,
        });
      }
      // Yield to the event loop so timers, messages and abort signals get through.
      if (batch % 8 === 7) await new Promise((resolve) => setImmediate(resolve));
    }
    if (outcome === 'cancelled') break;
    const seconds = (performance.now() - epochStart) / 1000;
    const test = evaluateSplit(weights, testSplit);
    const epochMetrics: EpochMetrics = {
      epoch,
      trainLoss: lossSum / seen,
      trainAccuracy: correct / seen,
      testLoss: test.loss,
      testAccuracy: test.accuracy,
      seconds: Math.round(seconds * 100) / 100,
      imagesPerSecond: Math.round((seen / seconds) * 10) / 10,
      engine: engine.label,
    };
    metrics.push(epochMetrics);
    const schedule = { name: recipe.schedule, step: epoch * batches, totalSteps, learningRate };
    await saveCheckpoint(checkpointDir, { epoch, recipe, metrics, schedule }, model, optimizer);
    options.onEpoch?.(epochMetrics);
    if (reached(epochMetrics)) outcome = 'target-reached';
  }

  let modelDir: string | undefined;
  if (outcome !== 'cancelled') {
    modelDir = join(options.outDir, 'model');
    await saveModel(model, modelDir);
    const summary = summarize(model);
    const metadata = {
      ...options.metadata,
      dataset: recipe.dataset,
      recipe,
      preset: recipe.preset,
      architecture: recipe.architecture,
      normalization: { mean: dataset.mean, std: dataset.std },
      trainableParams: summary.trainableParams,
      totalParams: summary.totalParams,
      metrics,
      testAccuracy: metrics.at(-1)?.testAccuracy ?? null,
      engine: engine.label,
      created: new Date().toISOString(),
    };
    await writeFileAtomic(join(modelDir, METADATA_JSON), JSON.stringify(metadata, null, 2));
  }
  optimizer.dispose();
  // tfjs 4.22's MomentumOptimizer.dispose skips SGD's own, which frees the learning-rate scalar.
  tf.SGDOptimizer.prototype.dispose.call(optimizer);
  model.dispose();
  return { metrics, modelDir, engine: engine.label, outcome };
}

export interface StepOptions {
  /** Cross-entropy label smoothing ε (0: plain one-hot targets). */
  labelSmoothing?: number;
  /** L2 coefficient added to the conv kernels' gradients (0: none). */
  weightDecay?: number;
  augment?: BatchAugmentation;
}

/**
 * One SGD step on a batch, running statistics included; returns [mean loss, correct
 * predictions]. `dropoutRate` 0 is for parity checks against another framework.
 */
export function trainStep(
  weights: SeedNetWeights,
  optimizer: tf.Optimizer,
  split: Split,
  indices: Uint32Array,
  dropoutSeed: number,
  dropoutRate = DROPOUT_RATE,
  options: StepOptions = {},
): [number, number] {
  return tf.tidy(() => {
    const { x, labels } = gatherBatch(split, indices, options.augment);
    const oneHot = tf.oneHot(labels, 10);
    let forward: ReturnType<typeof forwardTrain> | undefined;
    const { value, grads } = tf.variableGrads(() => {
      forward = forwardTrain(weights, x, dropoutSeed, dropoutRate);
      tf.keep(forward.logits);
      forward.statistics.forEach((s) => (tf.keep(s.mean), tf.keep(s.variance)));
      return tf.losses.softmaxCrossEntropy(oneHot, forward.logits, undefined, options.labelSmoothing || undefined) as tf.Scalar;
    }, weights.trainable);
    const decay = options.weightDecay ?? 0;
    if (decay > 0) {
      // Coupled L2 as PyTorch's SGD weight_decay (g += λ·w), on the conv kernels only:
      // decaying BatchNorm's γ/β only fights the normalisation (Goyal et al. 2017).
      for (const kernel of [...weights.blocks.map((b) => b.kernel), weights.head]) {
        grads[kernel.name] = tf.add(grads[kernel.name]!, tf.mul(kernel, decay));
      }
    }
    optimizer.applyGradients(grads);
    updateRunningStatistics(weights, forward!.statistics);
    const hits = tf.equal(tf.argMax(forward!.logits, 1), labels).sum();
    const result: [number, number] = [value.dataSync()[0]!, hits.dataSync()[0]!];
    // Kept tensors outlive the tidy; release them here.
    tf.dispose([forward!.logits, ...forward!.statistics.flatMap((s) => [s.mean, s.variance])]);
    return result;
  });
}
