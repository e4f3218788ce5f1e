// Completes @tensorflow/tfjs-backend-wasm for training convnets.
//
// As shipped (4.22) the wasm backend has no Conv2DBackpropFilter (tfjs issue #8474), and its
// Conv2DBackpropInput, Tile and AvgPoolGrad are plain loops. Replacements (kernels of
// simd/kernels.c run on the backend's heap, work split over the threads of simd.ts):
//   Conv2D                stride 1, NHWC, >= 8 input channels: the SIMD conv (4 pixels x 8
//                         channels per step, fused multiply-add); else XNNPACK as shipped.
//   Conv2DBackpropFilter  stride 1, NHWC: the SIMD filter-gradient kernel (row-blocked outer
//                         products); else a direct JS loop (any stride, NCHW).
//   Conv2DBackpropInput   stride 1, NHWC: a full conv of dy with the spatially flipped,
//                         channel-swapped filter (pads k-1-pad), on the SIMD conv or XNNPACK;
//                         else the shipped kernel.
//   Tile                  block copies on the heap.
//   AvgPoolGrad           non-overlapping pools: a SIMD kernel; else the shipped kernel.
//   Identity              shares the input's buffer instead of copying it.
import * as tf from '@tensorflow/tfjs';
import { type SimdContext, simdFor } from './simd.ts';
import { type Attrs, type WasmBackend, f32View, release, runWasmKernel, sizeOf } from './wasm-heap.ts';

type ConvInfo = tf.backend_util.Conv2DInfo;
type KernelFuncArgs = Parameters<tf.KernelFunc>[0];

function convInfoFor(
  inputShape: [number, number, number, number],
  filterShape: [number, number, number, number],
  attrs: Attrs,
): ConvInfo {
  const dataFormat = tf.backend_util.convertConv2DDataFormat((attrs.dataFormat as 'NHWC' | 'NCHW' | undefined) ?? 'NHWC');
  return tf.backend_util.computeConv2DInfo(
    inputShape,
    filterShape,
    attrs.strides as [number, number] | number,
    1,
    attrs.pad as 'valid' | 'same' | number,
    attrs.dimRoundingMode as 'floor' | 'round' | 'ceil' | undefined,
    false,
    dataFormat,
  );
}

/** True when the conv formulations apply: stride 1, NHWC, padding within the filter. */
function isUnitStrideNhwc(info: ConvInfo): boolean {
  const { top, bottom, left, right } = info.padInfo;
  return (
    info.strideHeight === 1 && info.strideWidth === 1 && info.dataFormat === 'channelsLast' &&
    top >= 0 && bottom >= 0 && left >= 0 && right >= 0 &&
    top < info.filterHeight && bottom < info.filterHeight && left < info.filterWidth && right < info.filterWidth
  );
}

interface Pads {
  top: number;
  bottom: number;
  left: number;
  right: number;
}

/** Stride-1 NHWC conv with explicit padding through the registered Conv2D kernel. */
function conv(backend: WasmBackend, x: tf.TensorInfo, filter: tf.TensorInfo, { top, bottom, left, right }: Pads) {
  const pad = [[0, 0], [top, bottom], [left, right], [0, 0]];
  return runWasmKernel(backend, 'Conv2D', { x, filter }, { strides: 1, pad, dataFormat: 'NHWC', dilations: 1 });
}

// ---------------------------------------------------------------- Conv2D

/**
 * Stride-1 NHWC conv on the SIMD kernel, the batch split over the threads; padding is
 * materialised first. Needs filter out-channels % 4 == 0.
 */
function convSimd(backend: WasmBackend, simd: SimdContext, x: tf.TensorInfo, filter: tf.TensorInfo, pad: Pads): tf.TensorInfo {
  const [n, h, w, c] = x.shape as [number, number, number, number];
  const [kh, kw, , o] = filter.shape as [number, number, number, number];
  const { top, bottom, left, right } = pad;
  const ph = h + top + bottom;
  const pw = w + left + right;
  const at = (t: tf.TensorInfo) => backend.dataIdMap.get(t.dataId).memoryOffset;
  const parts = simd.slices(n);
  let input = x;
  const padded = top || bottom || left || right;
  if (padded) {
    input = backend.makeOutput([n, ph, pw, c], 'float32');
    const [src, dst] = [at(x), at(input)];
    simd.parallel('pad_nhwc', parts.map(([first, count]) => [src + first * h * w * c * 4, dst + first * ph * pw * c * 4, count, h, w, c, top, bottom, left, right]));
  }
  const [oh, ow] = [ph - kh + 1, pw - kw + 1];
  const out = backend.makeOutput([n, oh, ow, o], 'float32');
  const [inAt, filterAt, outAt] = [at(input), at(filter), at(out)];
  simd.parallel('conv2d_valid', parts.map(([first, count]) => [
    inAt + first * ph * pw * c * 4, filterAt, outAt + first * oh * ow * o * 4, count, ph, pw, c, kh, kw, o,
  ]));
  if (padded) release(backend, input);
  return out;
}

/**
 * Where the SIMD conv beats XNNPACK (measured on the seed net): outputs in whole vectors and
 * enough input channels per tap; XNNPACK stays faster for shallow inputs such as images.
 */
function suitsSimdConv(inChannels: number, outChannels: number): boolean {
  return outChannels % 4 === 0 && inChannels >= 8;
}

function makeConv2D(original: tf.KernelFunc): tf.KernelFunc {
  return (args: KernelFuncArgs): tf.TensorInfo => {
    const { inputs, backend, attrs } = args;
    const wasm = backend as WasmBackend;
    const { x, filter } = inputs as { x: tf.TensorInfo; filter: tf.TensorInfo };
    const { dilations } = attrs as Attrs;
    const info = convInfoFor(x.shape as [number, number, number, number], filter.shape as [number, number, number, number], attrs as Attrs);
    const simd = simdFor(wasm);
    const unitDilation = dilations == null || dilations === 1 || (Array.isArray(dilations) && dilations.every((d) => d === 1));
    if (!simd || !unitDilation || !isUnitStrideNhwc(info) || !suitsSimdConv(info.inChannels, info.outChannels)) {
      return original(args) as tf.TensorInfo;
    }
    return convSimd(wasm, simd, x, filter, info.padInfo);
  };
}

// ---------------------------------------------------------------- Conv2DBackpropFilter

function conv2DBackpropFilter({ inputs, backend, attrs }: KernelFuncArgs): tf.TensorInfo {
  const wasm = backend as WasmBackend;
  const { x, dy } = inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
  const filterShape = (attrs as Attrs).filterShape as [number, number, number, number];
  const info = convInfoFor(x.shape as [number, number, number, number], filterShape, attrs as Attrs);
  if (!isUnitStrideNhwc(info)) return conv2DBackpropFilterLoop(wasm, x, dy, info);

  const simd = simdFor(wasm);
  return simd ? conv2DBackpropFilterSimd(wasm, simd, x, dy, info) : conv2DBackpropFilterLoop(wasm, x, dy, info);
}

/**
 * The SIMD kernel, the batch split into slices for the threads: each slice is summed into
 * its own buffer (the first straight into the output), then the buffers are added up in
 * order. The split does not depend on the thread count, so neither does the result.
 */
function conv2DBackpropFilterSimd(backend: WasmBackend, simd: SimdContext, x: tf.TensorInfo, dy: tf.TensorInfo, info: ConvInfo): tf.TensorInfo {
  const dW = backend.makeOutput(info.filterShape, 'float32');
  const size = sizeOf(info.filterShape);
  const parts = simd.reductionSlices(info.batchSize);
  const buffers = parts.map((_, t) => (t === 0 ? backend.dataIdMap.get(dW.dataId).memoryOffset : simd.scratch(size * 4, 100 + t)));
  const xAt = backend.dataIdMap.get(x.dataId).memoryOffset;
  const dyAt = backend.dataIdMap.get(dy.dataId).memoryOffset;
  const xImage = info.inHeight * info.inWidth * info.inChannels * 4;
  const dyImage = info.outHeight * info.outWidth * info.outChannels * 4;
  simd.parallel('conv2d_filter_grad', parts.map(([first, count], t) => [
    xAt + first * xImage, dyAt + first * dyImage, buffers[t]!, count, info.inHeight, info.inWidth, info.inChannels,
    info.outHeight, info.outWidth, info.outChannels, info.filterHeight, info.filterWidth, info.padInfo.top, info.padInfo.left,
  ]));
  if (buffers.length > 1) {
    const heap = simd.heapBuffer();
    const total = new Float32Array(heap, buffers[0]!, size);
    for (const at of buffers.slice(1)) {
      const part = new Float32Array(heap, at, size);
      for (let i = 0; i < size; i++) total[i]! += part[i]!;
    }
  }
  return dW;
}

/** Direct summation for the cases the conv formulation does not cover (any stride, NCHW). */
function conv2DBackpropFilterLoop(backend: WasmBackend, x: tf.TensorInfo, dy: tf.TensorInfo, info: ConvInfo): tf.TensorInfo {
  const out = backend.makeOutput(info.filterShape, 'float32');
  const { heap, offsets } = f32View(backend, x, dy, out);
  const [xOff, dyOff, outOff] = offsets as [number, number, number];
  const channelsLast = info.dataFormat === 'channelsLast';
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels } = info;
  const { strideHeight: sh, strideWidth: sw, filterHeight: kh, filterWidth: kw } = info;
  const { top, left } = info.padInfo;
  // Element strides of x and dy in their layout (b, row, col, channel).
  const xs = channelsLast
    ? [inHeight * inWidth * inChannels, inWidth * inChannels, inChannels, 1]
    : [inChannels * inHeight * inWidth, inWidth, 1, inHeight * inWidth];
  const ys = channelsLast
    ? [outHeight * outWidth * outChannels, outWidth * outChannels, outChannels, 1]
    : [outChannels * outHeight * outWidth, outWidth, 1, outHeight * outWidth];
  const [xb, xr, xc, xd] = xs as [number, number, number, number];
  const [yb, yr, yc, yd] = ys as [number, number, number, number];
  for (let i = 0; i < kh; i++) {
    const yRMin = Math.max(0, Math.ceil((top - i) / sh));
    const yRMax = Math.min(outHeight, Math.ceil((inHeight + top - i) / sh));
    for (let j = 0; j < kw; j++) {
      const yCMin = Math.max(0, Math.ceil((left - j) / sw));
      const yCMax = Math.min(outWidth, Math.ceil((inWidth + left - j) / sw));
      for (let c = 0; c < inChannels; c++) {
        for (let o = 0; o < outChannels; o++) {
          let acc = 0;
          for (let b = 0; b < batchSize; b++) {
            for (let yR = yRMin; yR < yRMax; yR++) {
              const xRow = xOff + b * xb + (yR * sh + i - top) * xr + c * xd;
              const yRow = dyOff + b * yb + yR * yr + o * yd;
              for (let yC = yCMin; yC < yCMax; yC++) {
                acc += heap[xRow + (yC * sw + j - left) * xc]! * heap[yRow + yC * yc]!;
              }
            }
          }
          heap[outOff + ((i * kw + j) * inChannels + c) * outChannels + o] = acc;
        }
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------- Conv2DBackpropInput

function makeConv2DBackpropInput(original: tf.KernelFunc): tf.KernelFunc {
  return (args: KernelFuncArgs): tf.TensorInfo => {
    const { inputs, backend, attrs } = args;
    const wasm = backend as WasmBackend;
    const { dy, filter } = inputs as { dy: tf.TensorInfo; filter: tf.TensorInfo };
    const inputShape = (attrs as Attrs).inputShape as [number, number, number, number];
    const info = convInfoFor(inputShape, filter.shape as [number, number, number, number], attrs as Attrs);
    // The shipped kernel handles every stride and layout, just slowly.
    if (!isUnitStrideNhwc(info)) return original(args) as tf.TensorInfo;

    const { filterHeight: kh, filterWidth: kw } = info;
    const { top, bottom, left, right } = info.padInfo;
    const flipped = flipFilter(wasm, filter); // [kh,kw,O,C]
    const pads = { top: kh - 1 - top, bottom: kh - 1 - bottom, left: kw - 1 - left, right: kw - 1 - right };
    const simd = simdFor(wasm);
    // The gradient conv reads dy (outChannels deep) and writes dx (inChannels deep).
    const dx = simd && suitsSimdConv(info.outChannels, info.inChannels) ? convSimd(wasm, simd, dy, flipped, pads) : conv(wasm, dy, flipped, pads);
    release(wasm, flipped);
    return dx;
  };
}

/** reverse(W, [0,1]) with in/out channels swapped: [kh,kw,C,O] -> [kh,kw,O,C]. Filters are tiny. */
function flipFilter(backend: WasmBackend, filter: tf.TensorInfo): tf.TensorInfo {
  const [kh, kw, c, o] = filter.shape as [number, number, number, number];
  const out = backend.makeOutput([kh, kw, o, c], 'float32');
  const { heap, offsets } = f32View(backend, filter, out);
  const [src, dst] = offsets as [number, number];
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++) {
      const from = src + ((kh - 1 - i) * kw + (kw - 1 - j)) * c * o;
      const to = dst + (i * kw + j) * o * c;
      for (let ci = 0; ci < c; ci++) {
        for (let oi = 0; oi < o; oi++) heap[to + oi * c + ci] = heap[from + ci * o + oi]!;
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------- Tile

/**
 * Tile by block copies on the heap: each dimension's block is built once and then
 * duplicated with copyWithin (doubling), so broadcast-like tiles cost one memcpy pass.
 */
function tileKernel({ inputs, backend, attrs }: KernelFuncArgs): tf.TensorInfo {
  const wasm = backend as WasmBackend;
  const { x } = inputs as { x: tf.TensorInfo };
  const reps = (attrs as Attrs).reps as number[];
  if (x.dtype === 'string') throw new Error('wasm Tile: string tensors are not supported');
  const rank = x.shape.length;
  const outShape = x.shape.map((d, i) => d * (reps[i] ?? 1));
  const out = wasm.makeOutput(outShape, x.dtype);
  if (sizeOf(outShape) === 0) return out;
  const bytes = x.dtype === 'bool' ? 1 : 4;
  const heap = wasm.wasm.HEAPU8;
  const src = wasm.dataIdMap.get(x.dataId).memoryOffset;
  const dst = wasm.dataIdMap.get(out.dataId).memoryOffset;
  if (rank === 0) {
    heap.copyWithin(dst, src, src + bytes);
    return out;
  }
  // Byte sizes of one slice below dimension d, in x and in out.
  const srcStride = new Array<number>(rank);
  const dstStride = new Array<number>(rank);
  srcStride[rank - 1] = bytes;
  dstStride[rank - 1] = bytes;
  for (let d = rank - 2; d >= 0; d--) {
    srcStride[d] = srcStride[d + 1]! * x.shape[d + 1]!;
    dstStride[d] = dstStride[d + 1]! * outShape[d + 1]!;
  }
  // untiledFrom: first dim from which no dim is tiled, so x and out agree there.
  let untiledFrom = rank;
  while (untiledFrom > 0 && (reps[untiledFrom - 1] ?? 1) === 1) untiledFrom--;

  const fill = (d: number, s: number, t: number): void => {
    if (d >= untiledFrom) {
      const n = d === 0 ? sizeOf(x.shape) * bytes : srcStride[d - 1]!;
      heap.copyWithin(t, s, s + n);
      return;
    }
    const rows = x.shape[d]!;
    for (let r = 0; r < rows; r++) fill(d + 1, s + r * srcStride[d]!, t + r * dstStride[d]!);
    const block = rows * dstStride[d]!;
    const total = block * (reps[d] ?? 1);
    for (let done = block; done < total; done *= 2) {
      heap.copyWithin(t + done, t, t + Math.min(done, total - done));
    }
  };
  fill(0, src, dst);
  return out;
}

// ---------------------------------------------------------------- AvgPoolGrad

/** Non-overlapping k×k average pools (stride k, valid, NHWC) go to the SIMD kernel. */
function makeAvgPoolGrad(original: tf.KernelFunc): tf.KernelFunc {
  return (args: KernelFuncArgs): tf.TensorInfo => {
    const { inputs, backend, attrs } = args;
    const wasm = backend as WasmBackend;
    const { dy, input } = inputs as { dy: tf.TensorInfo; input: tf.TensorInfo };
    const { filterSize, strides, pad, dimRoundingMode } = attrs as Attrs;
    const info = tf.backend_util.computePool2DInfo(
      input.shape as [number, number, number, number],
      filterSize as [number, number] | number,
      strides as [number, number] | number,
      1,
      pad as 'valid' | 'same' | number,
      dimRoundingMode as 'floor' | 'round' | 'ceil' | undefined,
    );
    const k = info.filterHeight;
    const simd = simdFor(wasm);
    const tiled =
      info.filterWidth === k && info.strideHeight === k && info.strideWidth === k &&
      info.padInfo.top === 0 && info.padInfo.left === 0 && info.padInfo.bottom === 0 && info.padInfo.right === 0;
    if (!simd || !tiled) return original(args) as tf.TensorInfo;
    const dx = wasm.makeOutput(input.shape, 'float32');
    const at = (t: tf.TensorInfo) => wasm.dataIdMap.get(t.dataId).memoryOffset;
    simd.kernels.avg_pool_grad_tiled(at(dy), at(dx), info.batchSize, info.inHeight, info.inWidth, info.inChannels, k);
    return dx;
  };
}

// ---------------------------------------------------------------- Identity

/**
 * Shares the input's buffer (reference counted, as the cpu backend and wasm's own Reshape
 * do) instead of copying it: tfjs never writes a tensor's memory in place, and the tape
 * clones every tensor a gradient saves, so the copies cost whole activations per step.
 */
function makeIdentity(original: tf.KernelFunc): tf.KernelFunc {
  return (args: KernelFuncArgs): tf.TensorInfo => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    if (x.dtype === 'string') return original(args) as tf.TensorInfo;
    (args.backend as WasmBackend).incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
  };
}

// ---------------------------------------------------------------- registration

let registered = false;

/**
 * Registers the kernels above for the 'wasm' backend (idempotent). Call before
 * tf.setBackend('wasm') so the replaced kernels' setup functions run.
 */
export function registerWasmTrainingKernels(): void {
  if (registered) return;
  registered = true;

  const replace = (kernelName: string, make: (original: tf.KernelConfig | undefined) => tf.KernelFunc) => {
    const original = tf.getKernel(kernelName, 'wasm') as tf.KernelConfig | undefined;
    if (original) tf.unregisterKernel(kernelName, 'wasm');
    tf.registerKernel({ kernelName, backendName: 'wasm', kernelFunc: make(original), setupFunc: original?.setupFunc });
  };

  replace(tf.Conv2D, (original) => {
    if (!original) throw new Error('wasm backend has no Conv2D kernel to fall back on');
    return makeConv2D(original.kernelFunc);
  });
  replace(tf.Conv2DBackpropFilter, () => conv2DBackpropFilter);
  replace(tf.Conv2DBackpropInput, (original) => {
    if (!original) throw new Error('wasm backend has no Conv2DBackpropInput kernel to fall back on');
    return makeConv2DBackpropInput(original.kernelFunc);
  });
  replace(tf.Tile, () => tileKernel);
  replace(tf.Identity, (original) => {
    if (!original) throw new Error('wasm backend has no Identity kernel to fall back on');
    return makeIdentity(original.kernelFunc);
  });
  replace(tf.AvgPoolGrad, (original) => {
    if (!original) throw new Error('wasm backend has no AvgPoolGrad kernel to fall back on');
    return makeAvgPoolGrad(original.kernelFunc);
  });
}
