// Serving's SIMD kernels (src/engine/simd/inference.c) against a float64 reference, both
// builds (plain SIMD and relaxed SIMD), on every case they claim: Winograd F(2x2, 3x3) and
// F(4x4, 3x3) with output sizes that are and are not multiples of the tile (the shifted last
// tile), fewer than 4 tiles, output channels in blocks of 8 and a block of 4; the direct conv
// with one input channel and with an output narrower than 4 pixels; the pool and the global mean.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

interface Kernels {
  conv3x3_direct(input: number, h: number, w: number, c: number, kernel: number, bias: number, o: number, out: number): void;
  winograd_filter(kernel: number, c: number, o: number, u: number): void;
  winograd_scratch(h: number, w: number, c: number, o: number): number;
  conv3x3_winograd(input: number, h: number, w: number, c: number, u: number, bias: number, o: number, v: number, m: number, out: number): void;
  winograd4_filter(kernel: number, c: number, o: number, u: number): void;
  winograd4_scratch(h: number, w: number, c: number, o: number): number;
  conv3x3_winograd4(input: number, h: number, w: number, c: number, u: number, bias: number, o: number, v: number, m: number, out: number): void;
  avg_pool2(input: number, h: number, w: number, c: number, out: number): void;
  mean_pixels(input: number, pixels: number, c: number, out: number): void;
}

const BUILDS = ['inference.wasm', 'inference-relaxed.wasm'];

function instantiate(file: string) {
  const memory = new WebAssembly.Memory({ initial: 64 });
  const module = new WebAssembly.Module(readFileSync(new URL(`../src/engine/simd/${file}`, import.meta.url)));
  const kernels = new WebAssembly.Instance(module, { env: { memory } }).exports as unknown as Kernels;
  const heap = new Float32Array(memory.buffer);
  let used = 0;
  // Float offsets into the heap, 16-byte aligned, each region filled with `values`.
  const put = (values: ArrayLike<number> | number) => {
    const at = used;
    const length = typeof values === 'number' ? values : values.length;
    if (typeof values !== 'number') heap.set(values, at);
    used += Math.ceil(length / 4) * 4 + 4;
    return at;
  };
  return { kernels, heap, put, reset: () => (used = 0) };
}

// A small deterministic generator, so a failure reproduces.
function values(count: number, seed: number, scale = 1): Float32Array {
  let state = seed >>> 0;
  return Float32Array.from({ length: count }, () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return (state / 2 ** 32 - 0.5) * 2 * scale;
  });
}

/** ReLU(conv3x3_valid(x, k) + bias) in float64; x is h×w×c, k is [3][3][c][o]. */
function reference(x: Float32Array, h: number, w: number, c: number, k: Float32Array, bias: Float32Array, o: number): Float64Array {
  const oh = h - 2;
  const ow = w - 2;
  const out = new Float64Array(oh * ow * o);
  for (let y = 0; y < oh; y++)
    for (let xx = 0; xx < ow; xx++)
      for (let q = 0; q < o; q++) {
        let sum = bias[q]!;
        for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) for (let p = 0; p < c; p++) sum += x[((y + i) * w + xx + j) * c + p]! * k[((i * 3 + j) * c + p) * o + q]!;
        out[(y * ow + xx) * o + q] = Math.max(0, sum);
      }
  return out;
}

function maxRelativeError(actual: Float32Array, expected: Float64Array): number {
  let scale = 0;
  let error = 0;
  expected.forEach((e, i) => {
    scale = Math.max(scale, Math.abs(e));
    error = Math.max(error, Math.abs(actual[i]! - e));
  });
  expect(scale).toBeGreaterThan(0.1); // the case computes something
  return error / scale;
}

describe.each(BUILDS)('serving kernels (%s)', (file) => {
  const { kernels, heap, put, reset } = instantiate(file);

  // [tile, h, w, c, o]: the kernels' names and the tile they compute.
  const WINOGRAD = { 2: ['winograd_filter', 'winograd_scratch', 'conv3x3_winograd'], 4: ['winograd4_filter', 'winograd4_scratch', 'conv3x3_winograd4'] } as const;
  it.each([
    [2, 4, 4, 4, 4], // one tile: fewer than 4 tiles
    [2, 5, 7, 8, 12], // odd output sizes, 8 + 4 output channels
    [2, 6, 5, 4, 8],
    [2, 24, 24, 16, 16], // the seed net's second conv
    [2, 22, 22, 16, 16],
    [2, 11, 11, 16, 32],
    [2, 9, 9, 32, 16],
    [2, 28, 28, 12, 4],
    [4, 6, 6, 4, 4], // one tile
    [4, 6, 11, 8, 12], // 4 x 9 outputs: a shifted last column of tiles, 8 + 4 output channels
    [4, 26, 26, 16, 16], // the seed net's second and third convs
    [4, 24, 24, 16, 16],
    [4, 9, 9, 32, 16], // its last conv: 7 x 7 outputs
    [4, 13, 10, 16, 32],
    [4, 26, 26, 8, 12], // the compact net's second conv
  ] as const)('Winograd with %i×… output tiles on %i×%i×%i → %i channels equals the direct sum', (tile, h, w, c, o) => {
    reset();
    const [filter, scratchOf, conv] = WINOGRAD[tile];
    const x = values(h * w * c, h * 1000 + c);
    const k = values(9 * c * o, o * 7 + c, 1 / Math.sqrt(9 * c));
    const bias = values(o, 99, 0.1);
    const [xAt, kAt, biasAt] = [put(x), put(k), put(bias)];
    const uAt = put((tile + 2) ** 2 * c * o);
    const scratch = kernels[scratchOf](h, w, c, o);
    const [vAt, mAt, outAt] = [put(scratch), put(scratch), put((h - 2) * (w - 2) * o)];
    kernels[filter](kAt * 4, c, o, uAt * 4);
    kernels[conv](xAt * 4, h, w, c, uAt * 4, biasAt * 4, o, vAt * 4, mAt * 4, outAt * 4);
    const actual = heap.slice(outAt, outAt + (h - 2) * (w - 2) * o);
    expect(maxRelativeError(actual, reference(x, h, w, c, k, bias, o))).toBeLessThan(1e-5);
  });

  it.each([
    [28, 28, 1, 16], // the first conv
    [28, 28, 1, 8],
    [5, 5, 4, 4], // 3 output pixels per row: the single-pixel path
    [6, 9, 3, 12],
  ])('direct conv on %i×%i×%i → %i channels equals the direct sum', (h, w, c, o) => {
    reset();
    const x = values(h * w * c, h + c);
    const k = values(9 * c * o, o + 3, 1 / Math.sqrt(9 * c));
    const bias = values(o, 5, 0.1);
    const [xAt, kAt, biasAt, outAt] = [put(x), put(k), put(bias), put((h - 2) * (w - 2) * o)];
    kernels.conv3x3_direct(xAt * 4, h, w, c, kAt * 4, biasAt * 4, o, outAt * 4);
    const actual = heap.slice(outAt, outAt + (h - 2) * (w - 2) * o);
    expect(maxRelativeError(actual, reference(x, h, w, c, k, bias, o))).toBeLessThan(1e-6);
  });

  it('2×2 average pool and global mean', () => {
    reset();
    const [h, w, c] = [6, 4, 8];
    const x = values(h * w * c, 11);
    const [xAt, poolAt, meanAt] = [put(x), put((h / 2) * (w / 2) * c), put(c)];
    kernels.avg_pool2(xAt * 4, h, w, c, poolAt * 4);
    kernels.mean_pixels(xAt * 4, h * w, c, meanAt * 4);
    for (let y = 0; y < h / 2; y++)
      for (let xx = 0; xx < w / 2; xx++)
        for (let q = 0; q < c; q++) {
          const at = (yy: number, xxx: number) => x[(yy * w + xxx) * c + q]!;
          const expected = (at(2 * y, 2 * xx) + at(2 * y, 2 * xx + 1) + at(2 * y + 1, 2 * xx) + at(2 * y + 1, 2 * xx + 1)) / 4;
          expect(heap[poolAt + (y * (w / 2) + xx) * c + q]).toBeCloseTo(expected, 6);
        }
    for (let q = 0; q < c; q++) {
      let sum = 0;
      for (let p = 0; p < h * w; p++) sum += x[p * c + q]!;
      expect(heap[meanAt + q]).toBeCloseTo(sum / (h * w), 6);
    }
  });
});
