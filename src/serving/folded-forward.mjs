// The serving forward pass over folded weights (fold.ts explains the folding): per block a
// fused conv + bias + ReLU, the pool where the architecture has one, a global mean and the
// head, on the WebAssembly SIMD kernels of src/engine/simd/inference.c (Winograd convs).
// One image at a time, so its activations stay in cache; each net has its own small wasm
// memory holding its weights and the scratch one image needs.
//
// Plain JavaScript so that inference threads (inference-thread.mjs) run it without the
// TypeScript loader (about 60 MB per thread); LoadedModel runs the same class on the event
// loop when there are no threads. No tfjs: a thread is this file, its kernels and its weights.
// Types: folded-forward.d.mts.
import { readFileSync } from 'node:fs';

const SIDE = 28;
const PIXELS = SIDE * SIDE;
const CLASSES = 10;
const WASM_PAGE = 65536;

let compiled;
/** The kernels, compiled once per thread: the relaxed-SIMD build (fused multiply-add) where the runtime validates it, else the plain one. */
export function kernelsModule() {
  if (!compiled) {
    const read = (name) => readFileSync(new URL(`../engine/simd/${name}`, import.meta.url));
    const relaxed = read('inference-relaxed.wasm');
    compiled = new WebAssembly.Module(WebAssembly.validate(relaxed) ? relaxed : read('inference.wasm'));
  }
  return compiled;
}

/** Floats per (input, output) channel pair of each method's filter: 3×3 taps, or the transformed 4×4 / 6×6. */
const TRANSFORMED_TAPS = { direct: 9, winograd: 16, winograd4: 36 };

/**
 * How a 3×3 conv with an oh × ow output runs: Winograd F(4×4, 3×3) (the fewest multiplications),
 * F(2×2, 3×3) where a side of 4k + 1 would leave F(4×4) a row or column of tiles that mostly
 * recompute their neighbours' outputs (the seed net's 9×9 conv: measured faster with F(2×2)), and
 * the direct conv for the first conv, whose single input channel does not fill SIMD lanes.
 */
function convMethod(oh, ow, channels) {
  if (channels % 4 !== 0) return 'direct';
  return oh >= 4 && ow >= 4 && oh % 4 !== 1 && ow % 4 !== 1 ? 'winograd4' : 'winograd';
}

/** A seed-net-family model's folded weights in a wasm memory of its own, ready to classify 28×28 images. */
export class FoldedNet {
  constructor(layout, weights) {
    if (layout.length !== weights.kernels.length || layout.length !== weights.biases.length) {
      throw new Error(`${layout.length} blocks but ${weights.kernels.length} kernels and ${weights.biases.length} biases`);
    }
    // Float offsets in the memory, each 16-byte aligned.
    let used = 0;
    const take = (floats) => {
      const at = used;
      used += Math.ceil(floats / 4) * 4;
      return at;
    };
    let h = SIDE;
    let w = SIDE;
    let channels = 1;
    let activation = 0;
    let scratch = 0;
    const blocks = layout.map((block, i) => {
      const [kh, kw, c, out] = weights.kernels[i].shape;
      if (kh !== 3 || kw !== 3 || c !== channels || out % 4 !== 0 || h < 4 || w < 4) {
        throw new Error(`block ${i}: kernel [${weights.kernels[i].shape}] on ${h}×${w}×${channels} is not a 3×3 conv this forward pass computes`);
      }
      const planned = { h, w, c, out, method: convMethod(h - 2, w - 2, c), pool: block.poolAfter, kernel: 0, bias: 0 };
      h -= 2;
      w -= 2;
      activation = Math.max(activation, h * w * out);
      if (block.poolAfter) {
        h = Math.floor(h / 2);
        w = Math.floor(w / 2);
      }
      channels = out;
      return planned;
    });
    if (weights.headKernel.shape[0] !== channels || weights.headKernel.shape[1] !== CLASSES) {
      throw new Error(`head kernel [${weights.headKernel.shape}] does not map ${channels} channels to ${CLASSES} classes`);
    }
    this.input = take(PIXELS);
    this.buffers = [take(activation), take(activation)];
    this.features = take(channels);
    this.finalPixels = h * w;
    const staging = take(Math.max(...blocks.map((b) => 9 * b.c * b.out)));
    for (const block of blocks) {
      block.kernel = take(TRANSFORMED_TAPS[block.method] * block.c * block.out);
      block.bias = take(block.out);
    }
    const memory = new WebAssembly.Memory({ initial: 1 });
    const kernels = new WebAssembly.Instance(kernelsModule(), { env: { memory } }).exports;
    for (const b of blocks) if (b.method !== 'direct') scratch = Math.max(scratch, kernels[`${b.method}_scratch`](b.h, b.w, b.c, b.out));
    this.v = take(scratch);
    this.m = take(scratch);
    memory.grow(Math.ceil((used * 4) / WASM_PAGE));
    this.kernels = kernels;
    this.heap = new Float32Array(memory.buffer);
    for (const [i, block] of blocks.entries()) {
      this.heap.set(weights.biases[i].data, block.bias);
      if (block.method === 'direct') {
        this.heap.set(weights.kernels[i].data, block.kernel);
      } else {
        this.heap.set(weights.kernels[i].data, staging);
        kernels[`${block.method}_filter`](staging * 4, block.c, block.out, block.kernel * 4);
      }
    }
    this.blocks = blocks;
    this.channels = channels;
    // A view made once (the memory never grows after this): the mean features the head reads.
    this.featureView = this.heap.subarray(this.features, this.features + channels);
    this.headKernel = Float32Array.from(weights.headKernel.data);
    this.headBias = Float32Array.from(weights.headBias.data);
  }

  /** Writes the logits [count × classes] of `count` normalised images (784 values each, one after another) into `output`. */
  logits(input, count, output) {
    const { kernels, heap, blocks, buffers, channels, headKernel, headBias } = this;
    const at = (floats) => floats * 4;
    for (let n = 0; n < count; n++) {
      heap.set(input.subarray(n * PIXELS, (n + 1) * PIXELS), this.input);
      let current = this.input;
      let next = 0;
      for (const b of blocks) {
        const target = buffers[next];
        if (b.method === 'winograd4') kernels.conv3x3_winograd4(at(current), b.h, b.w, b.c, at(b.kernel), at(b.bias), b.out, at(this.v), at(this.m), at(target));
        else if (b.method === 'winograd') kernels.conv3x3_winograd(at(current), b.h, b.w, b.c, at(b.kernel), at(b.bias), b.out, at(this.v), at(this.m), at(target));
        else kernels.conv3x3_direct(at(current), b.h, b.w, b.c, at(b.kernel), at(b.bias), b.out, at(target));
        current = target;
        next = 1 - next;
        if (b.pool) {
          kernels.avg_pool2(at(current), b.h - 2, b.w - 2, b.out, at(buffers[next]));
          current = buffers[next];
          next = 1 - next;
        }
      }
      kernels.mean_pixels(at(current), this.finalPixels, channels, at(this.features));
      const features = this.featureView;
      for (let k = 0; k < CLASSES; k++) {
        let sum = headBias[k];
        for (let c = 0; c < channels; c++) sum += features[c] * headKernel[c * CLASSES + k];
        output[n * CLASSES + k] = sum;
      }
    }
  }

  /** Writes the softmax outputs [count × classes] of `count` normalised images into `output`. */
  probabilities(input, count, output) {
    this.logits(input, count, output);
    for (let n = 0; n < count; n++) {
      const row = output.subarray(n * CLASSES, (n + 1) * CLASSES);
      let max = -Infinity;
      for (const value of row) max = Math.max(max, value);
      let sum = 0;
      for (let k = 0; k < CLASSES; k++) {
        row[k] = Math.exp(row[k] - max);
        sum += row[k];
      }
      for (let k = 0; k < CLASSES; k++) row[k] /= sum;
    }
  }
}
