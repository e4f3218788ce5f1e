// The seed network of the product brief (README.md, "Product brief"), as a tfjs layers model (the format
// that is saved, served and loadable in a browser) plus a functional forward pass
// over the same variables, used by the training loop for speed and control.
import * as tf from '@tensorflow/tfjs';
import { ARCHITECTURES, BN_EPSILON, INPUT_SHAPE, NUM_CLASSES, architectureNamed, type ArchitectureName } from './spec.ts';
// The architectures' blocks live in spec.ts (no tfjs there: serving folds saved weights without it).
export { ARCHITECTURES, BN_EPSILON, COMPACT_BLOCKS, COMPACT_TRAINABLE_PARAMS, CONV_BLOCKS, type ConvBlock } from './spec.ts';

export const DROPOUT_RATE = 0.1;
/** PyTorch's BatchNorm momentum 0.1 is tfjs's 0.9 (weight of the running value). */
export const BN_MOMENTUM = 0.9;
export const EXPECTED_TRAINABLE_PARAMS = 14_320;

/** The architecture of a built or loaded model, from its name (model.json keeps it). */
export function architectureOf(model: tf.LayersModel): ArchitectureName {
  return architectureNamed(model.name);
}

/** PyTorch's default conv init (kaiming_uniform, a=√5) is uniform ±1/√fan_in. */
function torchConvInit(fanIn: number, seed: number) {
  const bound = 1 / Math.sqrt(fanIn);
  return tf.initializers.randomUniform({ minval: -bound, maxval: bound, seed });
}

export function buildSeedNet(seed = 1, architecture: ArchitectureName = 'seed'): tf.Sequential {
  const { blocks, modelName } = ARCHITECTURES[architecture];
  const model = tf.sequential({ name: modelName });
  let channels: number = INPUT_SHAPE[2];
  blocks.forEach((block, i) => {
    model.add(
      tf.layers.conv2d({
        name: `${block.name}_conv`,
        ...(i === 0 ? { inputShape: [...INPUT_SHAPE] } : {}),
        filters: block.filters,
        kernelSize: 3,
        padding: 'valid',
        useBias: false,
        kernelInitializer: torchConvInit(channels * 9, seed * 100 + i),
      }),
    );
    model.add(tf.layers.reLU({ name: `${block.name}_relu` }));
    model.add(
      tf.layers.batchNormalization({ name: `${block.name}_bn`, momentum: BN_MOMENTUM, epsilon: BN_EPSILON }),
    );
    if (block.dropout) model.add(tf.layers.dropout({ name: `${block.name}_dropout`, rate: DROPOUT_RATE }));
    if (block.poolAfter) model.add(tf.layers.averagePooling2d({ name: 'pool1', poolSize: 2, strides: 2 }));
    channels = block.filters;
  });
  // Global average pool over the final 7×7 map, keeping the 1×1 spatial dims the 1×1 conv needs.
  model.add(tf.layers.averagePooling2d({ name: 'pool2', poolSize: 7, strides: 7 }));
  model.add(
    tf.layers.conv2d({
      name: 'block4_conv',
      filters: NUM_CLASSES,
      kernelSize: 1,
      useBias: false,
      kernelInitializer: torchConvInit(channels, seed * 100 + blocks.length),
    }),
  );
  model.add(tf.layers.flatten({ name: 'flatten' }));
  model.add(tf.layers.softmax({ name: 'softmax' }));
  return model;
}

export interface LayerSummary {
  name: string;
  outputShape: (number | null)[];
  params: number;
}

export interface ModelSummary {
  layers: LayerSummary[];
  trainableParams: number;
  nonTrainableParams: number;
  totalParams: number;
}

const countParams = (weights: tf.LayerVariable[]): number =>
  weights.reduce((sum, w) => sum + w.shape.reduce((a: number, b) => a * (b ?? 1), 1), 0);

export function summarize(model: tf.LayersModel): ModelSummary {
  const layers = model.layers.map((layer) => ({
    name: layer.name,
    outputShape: layer.outputShape as (number | null)[],
    params: layer.countParams(),
  }));
  const trainableParams = countParams(model.trainableWeights);
  const nonTrainableParams = countParams(model.nonTrainableWeights);
  return { layers, trainableParams, nonTrainableParams, totalParams: trainableParams + nonTrainableParams };
}

export function formatSummary(summary: ModelSummary): string {
  const rows = summary.layers.map(
    (l) => `${l.name.padEnd(16)} ${JSON.stringify(l.outputShape).padEnd(20)} ${String(l.params).padStart(8)}`,
  );
  const rule = '-'.repeat(46);
  const num = (n: number) => n.toLocaleString('en-US');
  return [
    `${'Layer'.padEnd(16)} ${'Output shape'.padEnd(20)} ${'Params'.padStart(8)}`,
    rule,
    ...rows,
    rule,
    `Total params: ${num(summary.totalParams)}`,
    `Trainable params: ${num(summary.trainableParams)}`,
    `Non-trainable params: ${num(summary.nonTrainableParams)}`,
  ].join('\n');
}
