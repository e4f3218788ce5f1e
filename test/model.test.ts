import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { forwardInfer, forwardTrain, seedNetWeights } from '../src/model/forward.ts';
import { architectureOf, buildSeedNet, COMPACT_TRAINABLE_PARAMS, EXPECTED_TRAINABLE_PARAMS, summarize } from '../src/model/seed-net.ts';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('seed network', () => {
  it('has 14,320 trainable parameters and the seed summary shapes', () => {
    const model = buildSeedNet();
    const summary = summarize(model);
    expect(summary.trainableParams).toBe(EXPECTED_TRAINABLE_PARAMS);
    expect(summary.nonTrainableParams).toBe(192); // BatchNorm running mean + variance
    const spatial = summary.layers
      .filter((l) => l.name.endsWith('_conv') || l.name.startsWith('pool'))
      .map((l) => [l.name, l.outputShape.slice(1)]);
    expect(spatial).toEqual([
      ['block0_conv', [26, 26, 16]],
      ['block1_conv', [24, 24, 16]],
      ['block1d_conv', [22, 22, 16]],
      ['pool1', [11, 11, 16]],
      ['block2_conv', [9, 9, 32]],
      ['block3_conv', [7, 7, 16]],
      ['pool2', [1, 1, 16]],
      ['block4_conv', [1, 1, 10]],
    ]);
    const convParams = summary.layers.filter((l) => l.name.endsWith('_conv')).map((l) => l.params);
    expect(convParams).toEqual([144, 2304, 2304, 4608, 4608, 160]); // no biases
    model.dispose();
  });

  it('initialises convs like PyTorch: uniform within ±1/sqrt(fan_in)', () => {
    const model = buildSeedNet(3);
    for (const layer of model.layers.filter((l) => l.name.endsWith('_conv'))) {
      const [kernel] = layer.getWeights();
      const [kh, kw, cin] = kernel!.shape as number[];
      const bound = 1 / Math.sqrt(kh! * kw! * cin!);
      const values = Array.from(kernel!.dataSync());
      const max = values.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      expect(max).toBeLessThanOrEqual(bound);
      expect(max).toBeGreaterThan(bound * 0.8); // spread over the whole range, not a narrower init
    }
    model.dispose();
  });

  it('uses PyTorch BatchNorm defaults (momentum 0.1 ≙ tfjs 0.9, eps 1e-5)', () => {
    const model = buildSeedNet();
    const bn = model.getLayer('block0_bn').getConfig();
    expect(bn.momentum).toBe(0.9);
    expect(bn.epsilon).toBe(1e-5);
    model.dispose();
  });

  it('functional inference forward matches model.predict', () => {
    const model = buildSeedNet(5);
    const weights = seedNetWeights(model);
    // Non-trivial BatchNorm running statistics so the check covers them.
    for (const block of weights.blocks) {
      block.movingMean.write(tf.randomUniform(block.movingMean.shape as number[], -0.5, 0.5, 'float32', 1));
      block.movingVariance.write(tf.randomUniform(block.movingVariance.shape as number[], 0.5, 2, 'float32', 2));
    }
    const x = tf.randomNormal([4, 28, 28, 1], 0, 1, 'float32', 7) as tf.Tensor4D;
    const expected = (model.predict(x) as tf.Tensor).arraySync() as number[][];
    const actual = tf.softmax(forwardInfer(weights, x)).arraySync();
    actual.forEach((row, i) => row.forEach((v, j) => expect(v).toBeCloseTo(expected[i]![j]!, 5)));
    model.dispose();
  });

  it('training forward is reproducible per dropout seed and differs across seeds', () => {
    const model = buildSeedNet(5);
    const weights = seedNetWeights(model);
    const x = tf.randomNormal([8, 28, 28, 1], 0, 1, 'float32', 7) as tf.Tensor4D;
    const a = forwardTrain(weights, x, 11).logits.arraySync();
    const b = forwardTrain(weights, x, 11).logits.arraySync();
    const c = forwardTrain(weights, x, 12).logits.arraySync();
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
    model.dispose();
  });
});

describe('compact network', () => {
  it('has at most 8,000 trainable parameters, the seed net\'s blocks and its spatial shapes', () => {
    const model = buildSeedNet(1, 'compact');
    const summary = summarize(model);
    expect(summary.trainableParams).toBe(COMPACT_TRAINABLE_PARAMS);
    expect(summary.trainableParams).toBeLessThanOrEqual(8000);
    expect(architectureOf(model)).toBe('compact');
    const spatial = summary.layers
      .filter((l) => l.name.endsWith('_conv') || l.name.startsWith('pool'))
      .map((l) => l.outputShape.slice(1, 3));
    expect(spatial).toEqual([[26, 26], [24, 24], [22, 22], [11, 11], [9, 9], [7, 7], [1, 1], [1, 1]]);
    // Same building blocks: bias-free convs, BN, dropout, GAP, no dense layers.
    expect(model.layers.some((l) => l.getClassName() === 'Dense')).toBe(false);
    for (const layer of model.layers.filter((l) => l.name.endsWith('_conv'))) expect(layer.getConfig().useBias).toBe(false);
    model.dispose();
  });

  it('functional forwards follow its layout: inference matches model.predict', () => {
    const model = buildSeedNet(2, 'compact');
    const weights = seedNetWeights(model);
    expect(weights.blocks.map((b) => b.kernel.shape[3])).toEqual([8, 12, 16, 16, 16]);
    const x = tf.randomNormal([3, 28, 28, 1], 0, 1, 'float32', 9) as tf.Tensor4D;
    const expected = (model.predict(x) as tf.Tensor).arraySync() as number[][];
    const actual = tf.softmax(forwardInfer(weights, x)).arraySync();
    actual.forEach((row, i) => row.forEach((v, j) => expect(v).toBeCloseTo(expected[i]![j]!, 5)));
    expect(forwardTrain(weights, x, 3).logits.shape).toEqual([3, 10]);
    model.dispose();
  });

  it('a model of unknown architecture is refused by name', () => {
    const model = tf.sequential({ name: 'mystery', layers: [tf.layers.dense({ inputShape: [2], units: 1 })] });
    expect(() => seedNetWeights(model)).toThrow(/unknown model architecture "mystery"/);
    model.dispose();
  });
});
