// BatchNorm folding for serving, as plain float32 arithmetic on the saved weights. At
// inference each BatchNorm is a fixed per-channel affine map y = a·h + b applied after a
// ReLU, so it folds into whatever linear step comes next: the next conv (kernel scaled by
// a over its input channels, plus a bias from b; exact because the convs are 'valid',
// every window sees no padding) or, for the last block, the head (the global mean is
// linear too). What is left runs as five fused conv+bias+ReLU kernels, one pool, a mean
// and a matrix product (folded-forward.mjs, on SIMD kernels).
//
// No tfjs here: the API loads models straight from their files, and so never starts an
// engine of its own (tfjs and a wasm engine cost it about 30 MB of RSS). foldedOf reads a
// layers model's variables (training's output, the CLI) into the same function.
import type * as tf from '@tensorflow/tfjs';
import { checkModelFiles, weightSpecsOf } from '../model/artifacts.ts';
import { ARCHITECTURES, BN_EPSILON, NUM_CLASSES, NotSeedNetError, architectureNamed, type ArchitectureName, type ConvBlock } from '../model/spec.ts';
import type { FoldedWeights, PlainTensor } from './folded-forward.mjs';

/** A seed-net-family model ready to serve: its blocks and its folded weights. */
export interface FoldedModel {
  architecture: ArchitectureName;
  layout: readonly ConvBlock[];
  weights: FoldedWeights;
}

/** A model's weights by their saved names (e.g. "block0_bn/gamma"), as float32 values with their shapes. */
export type NamedWeights = ReadonlyMap<string, PlainTensor>;

const f32 = Math.fround;

/** Folds the BatchNorms of a seed or compact net into its convs and head; `source` names the model in errors. */
export function foldSeedNet(architecture: ArchitectureName, weights: NamedWeights, source: string): FoldedModel {
  const layout = ARCHITECTURES[architecture].blocks;
  const shaped = (name: string, shape: number[]) => {
    const tensor = weights.get(name);
    if (!tensor) throw new NotSeedNetError(`${source} has no weight ${name}`);
    if (tensor.shape.length !== shape.length || tensor.shape.some((d, i) => d !== shape[i])) {
      throw new NotSeedNetError(`weight ${name} has shape [${tensor.shape.join(', ')}], expected [${shape.join(', ')}] for the ${architecture} architecture`);
    }
    return tensor.data;
  };
  const kernels: PlainTensor[] = [];
  const biases: PlainTensor[] = [];
  let channels = 1;
  // The previous block's BatchNorm as y = scale·h + shift, per channel (none before the first block).
  let previous: { scale: Float32Array; shift: Float32Array } | undefined;
  for (const block of layout) {
    const out = block.filters;
    const kernel = shaped(`${block.name}_conv/kernel`, [3, 3, channels, out]);
    const folded = new Float32Array(kernel.length);
    const bias = new Float32Array(out);
    for (let i = 0; i < kernel.length; i++) {
      const c = Math.floor(i / out) % channels;
      folded[i] = previous ? f32(kernel[i]! * previous.scale[c]!) : kernel[i]!;
      if (previous) bias[i % out] = f32(bias[i % out]! + f32(kernel[i]! * previous.shift[c]!));
    }
    kernels.push({ shape: [3, 3, channels, out], data: folded });
    biases.push({ shape: [out], data: bias });
    previous = batchNormAffine(block.name, out, shaped);
    channels = out;
  }
  const head = shaped('block4_conv/kernel', [1, 1, channels, NUM_CLASSES]);
  const headKernel = new Float32Array(head.length);
  const headBias = new Float32Array(NUM_CLASSES);
  for (let i = 0; i < head.length; i++) {
    const c = Math.floor(i / NUM_CLASSES);
    headKernel[i] = f32(head[i]! * previous!.scale[c]!);
    headBias[i % NUM_CLASSES] = f32(headBias[i % NUM_CLASSES]! + f32(previous!.shift[c]! * head[i]!));
  }
  return {
    architecture,
    layout,
    weights: { kernels, biases, headKernel: { shape: [channels, NUM_CLASSES], data: headKernel }, headBias: { shape: [NUM_CLASSES], data: headBias } },
  };
}

/** a = γ / √(σ² + ε), b = β − μ·a, each step rounded to float32 as tfjs computes it. */
function batchNormAffine(block: string, channels: number, shaped: (name: string, shape: number[]) => Float32Array) {
  const [gamma, beta, mean, variance] = ['gamma', 'beta', 'moving_mean', 'moving_variance'].map((name) => shaped(`${block}_bn/${name}`, [channels]));
  const scale = new Float32Array(channels);
  const shift = new Float32Array(channels);
  for (let c = 0; c < channels; c++) {
    scale[c] = f32(gamma![c]! / f32(Math.sqrt(f32(variance![c]! + BN_EPSILON))));
    shift[c] = f32(beta![c]! - f32(mean![c]! * scale[c]!));
  }
  return { scale, shift };
}

/** Checks a model's files (model.json bytes, weights.bin) and folds them; `jsonPath` names them in errors. */
export function foldModelFiles(jsonPath: string, modelJsonBytes: Buffer, weightsBin: Uint8Array): FoldedModel {
  const modelJson = checkModelFiles(jsonPath, modelJsonBytes, weightsBin.byteLength);
  const weights = new Map<string, PlainTensor>();
  let offset = 0;
  for (const spec of weightSpecsOf(modelJson)) {
    if (spec.dtype !== 'float32' || 'quantization' in spec) throw new NotSeedNetError(`weight ${spec.name} is ${spec.dtype}${'quantization' in spec ? ' (quantised)' : ''}; only float32 is served`);
    const count = spec.shape.reduce((a, b) => a * b, 1);
    // A copy: weights.bin's offsets need not be 4-byte aligned in the buffer it came in.
    const data = new Float32Array(count);
    new Uint8Array(data.buffer).set(weightsBin.subarray(offset, offset + count * 4));
    weights.set(spec.name, { shape: [...spec.shape], data });
    offset += count * 4;
  }
  // A Sequential model's name is its architecture's (seed-net.ts names them).
  return foldSeedNet(architectureNamed((modelJson.modelTopology as { config?: { name?: unknown } }).config?.name), weights, jsonPath);
}

/** A layers model of the seed-net family, folded; the model is left as it is. */
export function foldedOf(model: tf.LayersModel): FoldedModel {
  // Variables' original names are the names model.json saves them under.
  const weights = new Map(model.weights.map((w) => [w.originalName, { shape: w.shape as number[], data: w.read().dataSync() as Float32Array }]));
  return foldSeedNet(architectureNamed(model.name), weights, `model ${model.name}`);
}
