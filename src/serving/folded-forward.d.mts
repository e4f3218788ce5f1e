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

/** A seed-net-family model's folded weights in a wasm memory of its own, ready to classify 28×28 images. */
export class FoldedNet {
  constructor(layout: readonly { poolAfter: boolean }[], weights: FoldedWeights);
  /** Writes the logits [count × classes] of `count` normalised images (784 values each, one after another) into `output`. */
  logits(input: Float32Array, count: number, output: Float32Array): void;
  /** Writes the softmax outputs [count × classes] of `count` normalised images into `output`. */
  probabilities(input: Float32Array, count: number, output: Float32Array): void;
}

/** The kernels, compiled once per thread (a thread calls it at start, so that a runtime without wasm SIMD fails there). */
export function kernelsModule(): WebAssembly.Module;
