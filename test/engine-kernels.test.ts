// Parity of the wasm training kernels (src/engine/wasm-kernels.ts, simd/kernels.c) and the
// fused op (src/engine/ops.ts) with tfjs's cpu backend, on random shapes and every case the
// kernels claim: strides, valid/same/explicit padding, kernel sizes 1 and 3, batch and
// channel counts (incl. 1), NCHW fallbacks; plus full gradients of small conv nets.
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { initEngine, reluBatchNormDropout } from '../src/engine/index.ts';

type Engine = 'cpu' | 'wasm';

/** Deterministic values in [-1, 1). */
function randomValues(size: number, seed: number): Float32Array {
  let state = seed >>> 0 || 1;
  const values = new Float32Array(size);
  for (let i = 0; i < size; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    values[i] = state / 2 ** 31 - 1;
  }
  return values;
}

const sizeOf = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/** Runs f on an engine and returns its tensors' values (disposing them). */
async function on(engine: Engine, f: () => tf.Tensor | tf.Tensor[]): Promise<Float32Array[]> {
  await initEngine(engine);
  const result = tf.tidy(f);
  const tensors = Array.isArray(result) ? result : [result];
  const values = tensors.map((t) => Float32Array.from(t.dataSync()));
  tf.dispose(tensors);
  return values;
}

/** Runs f on cpu and on wasm and expects the same values (relative to the largest magnitude). */
async function expectParity(f: () => tf.Tensor | tf.Tensor[], tolerance = 1e-4): Promise<Float32Array[]> {
  const expected = await on('cpu', f);
  const actual = await on('wasm', f);
  expect(actual.length).toBe(expected.length);
  expected.forEach((want, i) => {
    const got = actual[i]!;
    expect(got.length).toBe(want.length);
    let scale = 1;
    let worst = 0;
    want.forEach((w, j) => {
      scale = Math.max(scale, Math.abs(w));
      worst = Math.max(worst, Math.abs(w - got[j]!));
    });
    expect(worst / scale, `output ${i}: max difference ${worst} at scale ${scale}`).toBeLessThanOrEqual(tolerance);
  });
  return expected;
}

const runKernel = (name: string, inputs: Record<string, tf.Tensor>, attrs: Record<string, unknown>) =>
  tf.engine().runKernel(name, inputs, attrs as tf.NamedAttrMap) as tf.Tensor;

interface ConvCase {
  batch: number;
  inChannels: number;
  outChannels: number;
  kernel: number;
  stride: number;
  pad: 'valid' | 'same' | number;
  dataFormat: 'NHWC' | 'NCHW';
}

const convCases: ConvCase[] = [];
for (const kernel of [1, 3]) {
  for (const stride of [1, 2]) {
    for (const pad of ['valid', 'same', 1] as const) {
      for (const [batch, inChannels, outChannels] of [[1, 1, 4], [3, 3, 8], [2, 4, 10], [2, 16, 16], [1, 8, 1], [2, 1, 20], [1, 3, 16]] as const) {
        convCases.push({ batch, inChannels, outChannels, kernel, stride, pad, dataFormat: 'NHWC' });
      }
    }
  }
}
for (const stride of [1, 2]) convCases.push({ batch: 2, inChannels: 3, outChannels: 5, kernel: 3, stride, pad: 'same', dataFormat: 'NCHW' });

const label = (c: ConvCase) =>
  `${c.dataFormat} n${c.batch} c${c.inChannels}->${c.outChannels} k${c.kernel} s${c.stride} pad ${c.pad}`;

function convShapes(c: ConvCase, height = 7, width = 6) {
  const info = tf.backend_util.computeConv2DInfo(
    c.dataFormat === 'NHWC' ? [c.batch, height, width, c.inChannels] : [c.batch, c.inChannels, height, width],
    [c.kernel, c.kernel, c.inChannels, c.outChannels],
    c.stride,
    1,
    c.pad,
    undefined,
    false,
    c.dataFormat === 'NHWC' ? 'channelsLast' : 'channelsFirst',
  );
  return { xShape: info.inShape as number[], filterShape: info.filterShape as number[], dyShape: info.outShape as number[] };
}

describe('wasm Conv2D (forward) matches cpu', () => {
  it.each(convCases.filter((c) => c.dataFormat === 'NHWC').map((c) => [label(c), c] as const))('%s', async (_, c) => {
    const { xShape, filterShape } = convShapes(c);
    await expectParity(() =>
      runKernel(
        'Conv2D',
        { x: tf.tensor(randomValues(sizeOf(xShape), 16), xShape), filter: tf.tensor(randomValues(sizeOf(filterShape), 17), filterShape) },
        { strides: c.stride, pad: c.pad, dataFormat: c.dataFormat, dilations: 1 },
      ),
    );
  });
});

describe('wasm Conv2DBackpropFilter matches cpu', () => {
  it.each(convCases.map((c) => [label(c), c] as const))('%s', async (_, c) => {
    const { xShape, filterShape, dyShape } = convShapes(c);
    await expectParity(() =>
      runKernel(
        'Conv2DBackpropFilter',
        { x: tf.tensor(randomValues(sizeOf(xShape), 1), xShape), dy: tf.tensor(randomValues(sizeOf(dyShape), 2), dyShape) },
        { strides: c.stride, pad: c.pad, dataFormat: c.dataFormat, filterShape },
      ),
    );
  });
});

describe('wasm Conv2DBackpropInput matches cpu', () => {
  it.each(convCases.map((c) => [label(c), c] as const))('%s', async (_, c) => {
    const { xShape, filterShape, dyShape } = convShapes(c);
    await expectParity(() =>
      runKernel(
        'Conv2DBackpropInput',
        { dy: tf.tensor(randomValues(sizeOf(dyShape), 3), dyShape), filter: tf.tensor(randomValues(sizeOf(filterShape), 4), filterShape) },
        { strides: c.stride, pad: c.pad, dataFormat: c.dataFormat, inputShape: xShape },
      ),
    );
  });

  it('a seed-net-sized layer (26x26x16 -> 24x24x16)', async () => {
    const c: ConvCase = { batch: 16, inChannels: 16, outChannels: 16, kernel: 3, stride: 1, pad: 'valid', dataFormat: 'NHWC' };
    const { xShape, filterShape, dyShape } = convShapes(c, 26, 26);
    const x = randomValues(sizeOf(xShape), 5);
    const dy = randomValues(sizeOf(dyShape), 6);
    const filter = randomValues(sizeOf(filterShape), 7);
    await expectParity(() => [
      runKernel('Conv2DBackpropFilter', { x: tf.tensor(x, xShape), dy: tf.tensor(dy, dyShape) }, { strides: 1, pad: 'valid', dataFormat: 'NHWC', filterShape }),
      runKernel('Conv2DBackpropInput', { dy: tf.tensor(dy, dyShape), filter: tf.tensor(filter, filterShape) }, { strides: 1, pad: 'valid', dataFormat: 'NHWC', inputShape: xShape }),
    ]);
  });
});

describe('wasm Tile matches cpu', () => {
  const cases: [number[], number[], 'float32' | 'int32' | 'bool'][] = [
    [[3], [4], 'float32'],
    [[1, 1, 1, 5], [2, 3, 4, 1], 'float32'],
    [[2, 3], [1, 1], 'float32'],
    [[2, 1, 3], [2, 4, 2], 'float32'],
    [[4, 1], [1, 3], 'int32'],
    [[2, 2, 1], [3, 1, 5], 'bool'],
  ];
  it.each(cases.map((c) => [`${c[2]} [${c[0]}] x [${c[1]}]`, ...c] as const))('%s', async (_, shape, reps, dtype) => {
    await expectParity(() => {
      const values = randomValues(sizeOf(shape), 8).map((v) => (dtype === 'float32' ? v : dtype === 'int32' ? Math.round(v * 100) : v > 0 ? 1 : 0));
      return tf.tile(tf.tensor(values, shape, dtype), reps).cast('float32');
    }, 0);
  });
});

describe('wasm AvgPoolGrad matches cpu', () => {
  const cases: [[number, number, number, number], number, number, 'valid' | 'same'][] = [
    [[2, 6, 6, 4], 2, 2, 'valid'],
    [[3, 7, 7, 3], 2, 2, 'valid'], // last row and column get no gradient
    [[1, 9, 9, 16], 3, 3, 'valid'],
    [[2, 6, 5, 2], 3, 1, 'same'], // overlapping windows: the shipped kernel
  ];
  it.each(cases.map((c) => [`[${c[0]}] pool ${c[1]} stride ${c[2]} ${c[3]}`, ...c] as const))('%s', async (_, shape, size, stride, pad) => {
    await expectParity(() => {
      const x = tf.tensor(randomValues(sizeOf(shape), 9), shape) as tf.Tensor4D;
      const outShape: number[] = tf.avgPool(x, size, stride, pad).shape;
      const dy = tf.tensor(randomValues(sizeOf(outShape), 10), outShape);
      return tf.grad((input: tf.Tensor) => tf.avgPool(input as tf.Tensor4D, size, stride, pad))(x, dy);
    });
  });
});

describe('reluBatchNormDropout', () => {
  const fused = (rate: number, seed: number) => (z: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor) =>
    reluBatchNormDropout(z as tf.Tensor4D, gamma as tf.Tensor1D, beta as tf.Tensor1D, { dropoutRate: rate, seed }).y;

  const inputs = (shape: number[]) => {
    const channels = shape[3]!;
    return {
      z: tf.tensor(randomValues(sizeOf(shape), 11), shape),
      gamma: tf.tensor1d(randomValues(channels, 12).map((v) => 1 + 0.5 * v)),
      beta: tf.tensor1d(randomValues(channels, 13)),
      dy: tf.tensor(randomValues(sizeOf(shape), 14), shape),
    };
  };

  it.each([
    [[4, 5, 5, 16], 0],
    [[4, 5, 5, 16], 0.3],
    [[3, 4, 4, 3], 0.1], // channels not a multiple of 4: scalar paths
    [[2, 3, 3, 32], 0.5],
    [[5, 2, 2, 1], 0.2],
    [[6, 10, 10, 8], 0.2], // 600 pixels: split over the helper threads
  ] as const)('wasm (SIMD) matches cpu on %j, dropout %d, with gradients', async (shape, rate) => {
    await expectParity(() => {
      const { z, gamma, beta, dy } = inputs([...shape]);
      const result = reluBatchNormDropout(z as tf.Tensor4D, gamma as tf.Tensor1D, beta as tf.Tensor1D, { dropoutRate: rate, seed: 42 });
      const grads = tf.grads(fused(rate, 42))([z, gamma, beta], dy);
      return [result.y, result.mean, result.variance, ...grads];
    });
  });

  it('has the gradients of relu -> moments -> batchNorm (autodiff, no dropout)', async () => {
    await initEngine('cpu');
    const { z, gamma, beta, dy } = inputs([4, 3, 3, 8]);
    const plain = (x: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
      const a = tf.relu(x);
      const { mean, variance } = tf.moments(a, [0, 1, 2]);
      return tf.batchNorm(a, mean, variance, b, g, 1e-5);
    };
    const want = tf.grads(plain)([z, gamma, beta], dy);
    const got = tf.grads(fused(0, 0))([z, gamma, beta], dy);
    want.forEach((w, i) => expect(tf.max(tf.abs(tf.sub(w, got[i]!))).dataSync()[0]).toBeLessThan(1e-4));
    expect(tf.max(tf.abs(tf.sub(plain(z, gamma, beta), fused(0, 0)(z, gamma, beta)))).dataSync()[0]).toBeLessThan(1e-5);
  });

  it('drops about the requested fraction, exactly zero, and differently per seed', async () => {
    await initEngine('wasm');
    const shape = [8, 10, 10, 16];
    const z = tf.add(tf.abs(tf.tensor(randomValues(sizeOf(shape), 15), shape)), 0.1); // all positive: y = 0 only when dropped
    const gamma = tf.ones([16]);
    const beta = tf.fill([16], 5); // keeps normalised values away from 0
    const zeros = (seed: number) => tf.equal(fused(0.25, seed)(z, gamma, beta), 0);
    const a = zeros(1);
    const fraction = tf.mean(tf.cast(a, 'float32')).dataSync()[0]!;
    expect(fraction).toBeGreaterThan(0.23);
    expect(fraction).toBeLessThan(0.27);
    const overlap = tf.mean(tf.cast(tf.logicalAnd(a, zeros(2)), 'float32')).dataSync()[0]!;
    expect(overlap).toBeGreaterThan(0.04); // independent masks overlap on ~0.25^2
    expect(overlap).toBeLessThan(0.09);
    expect(tf.all(tf.equal(a, zeros(1))).dataSync()[0]).toBe(1);
  });
});

describe('full gradients of small conv nets, wasm vs cpu', () => {
  const shapes = { x: [3, 10, 10, 2], w1: [3, 3, 2, 8], w2: [3, 3, 8, 4], w3: [1, 1, 4, 4], head: [4, 3] };
  const params = () => Object.fromEntries(Object.entries(shapes).map(([k, s], i) => [k, tf.tensor(randomValues(sizeOf(s), 20 + i), s)]));

  it('conv (valid) -> relu -> conv (same, stride 2) -> avg pool -> 1x1 conv -> mean -> dense', async () => {
    await expectParity(() => {
      const p = params();
      const loss = (w1: tf.Tensor, w2: tf.Tensor, w3: tf.Tensor, head: tf.Tensor) => {
        let h = tf.relu(tf.conv2d(p.x as tf.Tensor4D, w1 as tf.Tensor4D, 1, 'valid'));
        h = tf.relu(tf.conv2d(h, w2 as tf.Tensor4D, 2, 'same'));
        h = tf.avgPool(h, 2, 2, 'valid');
        h = tf.conv2d(h, w3 as tf.Tensor4D, 1, 'valid');
        return tf.sum(tf.square(tf.matMul(tf.mean(h, [1, 2]) as tf.Tensor2D, head as tf.Tensor2D)));
      };
      return tf.grads(loss)([p.w1!, p.w2!, p.w3!, p.head!]);
    });
  });

  it('the seed net shape of block: conv -> reluBatchNormDropout -> avg pool, and no tensors leak', async () => {
    const gamma = tf.tensor1d(randomValues(8, 30).map((v) => 1 + v / 2));
    const beta = tf.tensor1d(randomValues(8, 31));
    const step = () => {
      const p = params();
      const loss = (w1: tf.Tensor, g: tf.Tensor, b: tf.Tensor, w2: tf.Tensor) => {
        const z = tf.conv2d(p.x as tf.Tensor4D, w1 as tf.Tensor4D, 1, 'valid');
        const r = reluBatchNormDropout(z, g as tf.Tensor1D, b as tf.Tensor1D, { dropoutRate: 0.1, seed: 3 });
        const h = tf.avgPool(tf.conv2d(r.y, w2 as tf.Tensor4D, 1, 'same'), 2, 2, 'valid');
        return tf.sum(tf.square(h));
      };
      return tf.grads(loss)([p.w1!, gamma, beta, p.w2!]);
    };
    await expectParity(step, 2e-4);

    await initEngine('wasm');
    const tensorsBefore = tf.memory().numTensors;
    const dataBefore = tf.engine().backend.numDataIds();
    for (let i = 0; i < 3; i++) tf.dispose(tf.tidy(step));
    expect(tf.memory().numTensors).toBe(tensorsBefore);
    expect(tf.engine().backend.numDataIds()).toBe(dataBefore);
  });
});
