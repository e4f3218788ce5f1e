// Fused training ops for the conv blocks (conv -> ReLU -> BatchNorm -> Dropout).
//
// reluBatchNormDropout(z, gamma, beta) replaces tf.relu + layers' BatchNormalization (training
// mode) + tf.dropout: one forward pass for the batch statistics, one for the output, and a
// hand-written gradient (two passes) instead of the ~40 kernels tfjs records for them. On the
// wasm backend it runs the SIMD kernels of simd/kernels.c on the heap; on any other backend
// it computes the same thing (same dropout mask) with tfjs ops.
import * as tf from '@tensorflow/tfjs';
import { dropoutKey, keepMask, keepThreshold } from './dropout-mask.ts';
import { simdFor } from './simd.ts';
import type { WasmBackend } from './wasm-heap.ts';

export interface BatchNormTrainOptions {
  /** Added to the variance (PyTorch's default). */
  epsilon?: number;
  /** Fraction of activations dropped after normalisation; 0 disables dropout. */
  dropoutRate?: number;
  /** Dropout seed: same seed, same mask. Use a fresh one per step and layer. */
  seed?: number;
}

export interface BatchNormTrainResult {
  /** dropout(batchNorm(relu(z))), differentiable w.r.t. z, gamma and beta. */
  y: tf.Tensor4D;
  /** Batch mean of relu(z) per channel (no gradient), for the moving average. */
  mean: tf.Tensor1D;
  /** Biased batch variance per channel (no gradient); × count/(count−1) for PyTorch's running_var. */
  variance: tf.Tensor1D;
  /** Values per channel the statistics were taken over (N·H·W). */
  count: number;
}

interface Params {
  pixels: number;
  channels: number;
  epsilon: number;
  key: number;
  threshold: number;
  invKeep: number;
}

interface Stats {
  mean: Float64Array;
  variance: Float64Array;
  invStd: Float64Array;
}

/** Training-mode ReLU → BatchNorm (batch statistics) → Dropout on an NHWC tensor. */
export function reluBatchNormDropout(
  z: tf.Tensor4D,
  gamma: tf.Tensor1D,
  beta: tf.Tensor1D,
  options: BatchNormTrainOptions = {},
): BatchNormTrainResult {
  const [n, h, w, channels] = z.shape;
  if (gamma.size !== channels || beta.size !== channels) {
    throw new Error(`reluBatchNormDropout: gamma/beta have ${gamma.size}/${beta.size} values, z has ${channels} channels`);
  }
  const rate = options.dropoutRate ?? 0;
  const params: Params = {
    pixels: n * h * w,
    channels,
    epsilon: options.epsilon ?? 1e-5,
    key: dropoutKey(options.seed ?? 0),
    threshold: keepThreshold(rate),
    invKeep: 1 / (1 - rate),
  };
  const impl = wasmImpl() ?? compositeImpl;
  let stats: Stats | undefined;
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [zIn, gammaIn, betaIn, save] = args as [tf.Tensor4D, tf.Tensor1D, tf.Tensor1D, tf.GradSaveFunc];
    stats = impl.stats(zIn, params);
    const { y, mask } = impl.forward(zIn, gammaIn, betaIn, stats, params);
    save(mask ? [zIn, gammaIn, mask] : [zIn, gammaIn]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [zSaved, gammaSaved, maskSaved] = saved as [tf.Tensor4D, tf.Tensor1D, tf.Tensor | undefined];
        return impl.backward(dy as tf.Tensor4D, zSaved, gammaSaved, maskSaved, stats!, params);
      },
    };
  });
  const y = op(z, gamma, beta) as tf.Tensor4D;
  return {
    y,
    mean: tf.tensor1d(Float32Array.from(stats!.mean)),
    variance: tf.tensor1d(Float32Array.from(stats!.variance)),
    count: params.pixels,
  };
}

interface Impl {
  stats(z: tf.Tensor4D, p: Params): Stats;
  /** y, plus the dropout mask when the implementation stores one for backward. */
  forward(z: tf.Tensor4D, gamma: tf.Tensor1D, beta: tf.Tensor1D, s: Stats, p: Params): { y: tf.Tensor4D; mask?: tf.Tensor };
  backward(dy: tf.Tensor4D, z: tf.Tensor4D, gamma: tf.Tensor1D, mask: tf.Tensor | undefined, s: Stats, p: Params): tf.Tensor[];
}

function statsFromSums(sum: ArrayLike<number>, sumsq: ArrayLike<number>, p: Params): Stats {
  const mean = new Float64Array(p.channels);
  const variance = new Float64Array(p.channels);
  const invStd = new Float64Array(p.channels);
  for (let c = 0; c < p.channels; c++) {
    mean[c] = sum[c]! / p.pixels;
    variance[c] = Math.max(0, sumsq[c]! / p.pixels - mean[c]! * mean[c]!);
    invStd[c] = 1 / Math.sqrt(variance[c]! + p.epsilon);
  }
  return { mean, variance, invStd };
}

/**
 * Per-channel coefficients of the backward pass. With g = mask·dy/keep, a = relu(z),
 * xhat = (a − mean)·invStd: dbeta = Σg, dgamma = Σg·xhat and
 * dz = [z > 0]·gamma·invStd·(g − dbeta/M − xhat·dgamma/M) = [z > 0]·(A·g + B·z + C).
 */
function gradCoefficients(gamma: ArrayLike<number>, dbeta: ArrayLike<number>, dga: ArrayLike<number>, s: Stats, p: Params) {
  const dgamma = new Float32Array(p.channels);
  const A = new Float32Array(p.channels);
  const B = new Float32Array(p.channels);
  const C = new Float32Array(p.channels);
  for (let c = 0; c < p.channels; c++) {
    const invStd = s.invStd[c]!;
    const mean = s.mean[c]!;
    const dg = invStd * (dga[c]! - mean * dbeta[c]!);
    const a = gamma[c]! * invStd;
    dgamma[c] = dg;
    A[c] = a;
    B[c] = (-a * invStd * dg) / p.pixels;
    C[c] = (-a * dbeta[c]!) / p.pixels + (a * invStd * mean * dg) / p.pixels;
  }
  return { dgamma, A, B, C };
}

// ------------------------------------------------------------------ wasm (SIMD kernels)

function wasmImpl(): Impl | null {
  if (tf.getBackend() !== 'wasm') return null;
  const backend = tf.backend() as unknown as WasmBackend;
  const simd = simdFor(backend);
  if (!simd) return null;
  const offset = (t: tf.TensorInfo) => backend.dataIdMap.get(t.dataId).memoryOffset;
  const newTensor = (shape: number[], dtype: 'float32' | 'bool' = 'float32') => {
    const info = backend.makeOutput(shape, dtype);
    return { info, tensor: tf.engine().makeTensorFromTensorInfo(info) as tf.Tensor4D };
  };
  // Per-channel float vectors (scale/shift or A/B/C) live in scratch slot 0; each thread's
  // two double accumulators in its own slot.
  const vectors = (p: Params, values: Float32Array[]) => {
    const base = simd.scratch(values.length * p.channels * 4 + 64, 0);
    values.forEach((v, i) => new Float32Array(simd.heapBuffer(), base + i * p.channels * 4, p.channels).set(v));
    return values.map((_, i) => base + i * p.channels * 4);
  };
  const sums = (p: Params, parts: number) => Array.from({ length: parts }, (_, t) => simd.scratch(p.channels * 16, 1 + t));
  const addUp = (p: Params, at: number[], second: boolean) => {
    const total = new Float64Array(p.channels);
    for (const base of at) {
      const part = new Float64Array(simd.heapBuffer(), base + (second ? p.channels * 8 : 0), p.channels);
      for (let c = 0; c < p.channels; c++) total[c]! += part[c]!;
    }
    return total;
  };
  // Slices of whole pixels: any split for the elementwise passes, a fixed one for the sums.
  const slices = (p: Params) => simd.slices(p.pixels, 256);
  const sumSlices = (p: Params) => simd.reductionSlices(p.pixels, 256);

  return {
    stats(z, p) {
      const parts = sumSlices(p);
      const out = sums(p, parts.length);
      const zAt = offset(z);
      simd.parallel('relu_stats', parts.map(([first, count], t) => [zAt + first * p.channels * 4, count, p.channels, out[t]!, out[t]! + p.channels * 8]));
      return statsFromSums(addUp(p, out, false), addUp(p, out, true), p);
    },
    forward(z, gamma, beta, st, p) {
      const g = gamma.dataSync();
      const b = beta.dataSync();
      const scale = new Float32Array(p.channels);
      const shift = new Float32Array(p.channels);
      for (let c = 0; c < p.channels; c++) {
        scale[c] = g[c]! * st.invStd[c]! * p.invKeep;
        shift[c] = (b[c]! - st.mean[c]! * g[c]! * st.invStd[c]!) * p.invKeep;
      }
      const out = newTensor(z.shape);
      const mask = p.threshold === 0 ? undefined : newTensor(z.shape, 'bool');
      const [scaleAt, shiftAt] = vectors(p, [scale, shift]) as [number, number];
      const zAt = offset(z);
      const yAt = offset(out.info);
      const maskAt = mask ? offset(mask.info) : 0;
      simd.parallel('relu_bn_dropout', slices(p).map(([first, count]) => {
        const skip = first * p.channels;
        return [zAt + skip * 4, yAt + skip * 4, count, p.channels, scaleAt, shiftAt, p.key, p.threshold, skip, mask ? maskAt + skip : 0];
      }));
      return { y: out.tensor, mask: mask?.tensor };
    },
    backward(dy, z, gamma, mask, st, p) {
      const parts = sumSlices(p);
      const partial = sums(p, parts.length);
      const dyAt = offset(dy);
      const zAt = offset(z);
      const maskAt = mask ? offset(mask) : 0;
      const maskSlice = (skip: number) => (mask ? maskAt + skip : 0);
      simd.parallel('relu_bn_dropout_grad_sums', parts.map(([first, count], t) => {
        const skip = first * p.channels;
        return [dyAt + skip * 4, zAt + skip * 4, maskSlice(skip), count, p.channels, p.invKeep, partial[t]!, partial[t]! + p.channels * 8];
      }));
      const dbeta = addUp(p, partial, false);
      const { dgamma, A, B, C } = gradCoefficients(gamma.dataSync(), dbeta, addUp(p, partial, true), st, p);
      const dz = newTensor(z.shape);
      const [aAt, bAt, cAt] = vectors(p, [A, B, C]) as [number, number, number];
      const dzAt = offset(dz.info);
      simd.parallel('relu_bn_dropout_grad_apply', parts.map(([first, count]) => {
        const skip = first * p.channels;
        return [dyAt + skip * 4, zAt + skip * 4, maskSlice(skip), dzAt + skip * 4, count, p.channels, aAt, bAt, cAt, p.invKeep];
      }));
      return [dz.tensor, tf.tensor1d(dgamma), tf.tensor1d(Float32Array.from(dbeta))];
    },
  };
}

// ------------------------------------------------------------------ any backend (tfjs ops)

const compositeImpl: Impl = {
  stats(z, p) {
    const [sum, sumsq] = tf.tidy(() => {
      const a = tf.relu(z);
      return [tf.sum(a, [0, 1, 2]).dataSync(), tf.sum(tf.square(a), [0, 1, 2]).dataSync()];
    });
    return statsFromSums(sum!, sumsq!, p);
  },
  forward(z, gamma, beta, st, p) {
    const y = tf.tidy(() => {
      const invStd = tf.tensor1d(Float32Array.from(st.invStd));
      const mean = tf.tensor1d(Float32Array.from(st.mean));
      const scale = tf.mul(gamma, invStd);
      const shift = tf.sub(beta, tf.mul(mean, scale));
      const bn = tf.add(tf.mul(tf.relu(z), scale), shift);
      return p.threshold === 0 ? bn : tf.mul(bn, maskTensor(z.shape, p));
    }) as tf.Tensor4D;
    return { y };
  },
  backward(dy, z, gamma, _mask, st, p) {
    return tf.tidy(() => {
      const g = p.threshold === 0 ? dy : tf.mul(dy, maskTensor(z.shape, p));
      const a = tf.relu(z);
      const dbeta = tf.sum(g, [0, 1, 2]).dataSync();
      const dga = tf.sum(tf.mul(g, a), [0, 1, 2]).dataSync();
      const { dgamma, A, B, C } = gradCoefficients(gamma.dataSync(), dbeta, dga, st, p);
      const inner = tf.add(tf.add(tf.mul(g, tf.tensor1d(A)), tf.mul(z, tf.tensor1d(B))), tf.tensor1d(C));
      const dz = tf.mul(inner, tf.step(z));
      return [dz, tf.tensor1d(dgamma), tf.tensor1d(Float32Array.from(dbeta))];
    });
  },
};

/** The dropout mask already divided by the keep probability. */
function maskTensor(shape: number[], p: Params): tf.Tensor {
  const mask = keepMask(shape.reduce((x, y) => x * y, 1), p.key, p.threshold);
  for (let i = 0; i < mask.length; i++) mask[i]! *= p.invKeep;
  return tf.tensor(mask, shape);
}
