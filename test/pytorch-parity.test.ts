// The training step against PyTorch itself: same weights, same batch, dropout off.
// Loss, every gradient and the BatchNorm running statistics must agree. Skipped
// (with a message) where python3 has no torch (Debian: apt-get install python3-torch).
import * as tf from '@tensorflow/tfjs';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { initEngine } from '../src/engine/index.ts';
import { forwardTrain, seedNetWeights, updateRunningStatistics } from '../src/model/forward.ts';
import { buildSeedNet } from '../src/model/seed-net.ts';

const PYTHON = '/usr/bin/python3';
const RECIPE = resolve(import.meta.dirname, '../../shared/reference/pytorch_seed_recipe.py');
const hasTorch =
  existsSync(RECIPE) && spawnSync(PYTHON, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;
if (!hasTorch) console.warn(`skipping PyTorch parity: needs ${PYTHON} with torch and ${RECIPE}`);

type Nested = number | Nested[];
const maxAbsDiff = (a: Nested, b: Nested): number =>
  Array.isArray(a) ? a.reduce<number>((m, v, i) => Math.max(m, maxAbsDiff(v, (b as Nested[])[i]!)), 0) : Math.abs(a - (b as number));
const maxAbs = (a: Nested): number => (Array.isArray(a) ? a.reduce<number>((m, v) => Math.max(m, maxAbs(v)), 0) : Math.abs(a));

describe.skipIf(!hasTorch)('parity with PyTorch', () => {
  beforeAll(async () => {
    await initEngine();
  });

  it('one training step gives the same loss, gradients and running statistics', () => {
    const model = buildSeedNet(3);
    const weights = seedNetWeights(model);
    const x = tf.randomNormal([32, 28, 28, 1], 0, 1, 'float32', 5) as tf.Tensor4D;
    const labels = Array.from({ length: 32 }, (_, i) => (i * 7) % 10);
    const oneHot = tf.oneHot(tf.tensor1d(labels, 'int32'), 10);
    let statistics: ReturnType<typeof forwardTrain>['statistics'] = [];
    const { value, grads } = tf.variableGrads(() => {
      const out = forwardTrain(weights, x, 1, 0);
      statistics = out.statistics.map((s) => ({ ...s, mean: tf.keep(s.mean), variance: tf.keep(s.variance) }));
      return tf.losses.softmaxCrossEntropy(oneHot, out.logits) as tf.Scalar;
    }, weights.trainable);
    updateRunningStatistics(weights, statistics);

    const input = {
      x: x.arraySync(),
      labels,
      blocks: weights.blocks.map((b) => ({ kernel: b.kernel.arraySync(), gamma: b.gamma.arraySync(), beta: b.beta.arraySync() })),
      head: weights.head.arraySync(),
    };
    const run = spawnSync(PYTHON, [resolve(import.meta.dirname, 'fixtures/pytorch_step.py'), RECIPE], {
      input: JSON.stringify(input),
      maxBuffer: 64 * 1024 * 1024,
      encoding: 'utf8',
    });
    expect(run.status, run.stderr).toBe(0);
    const torch = JSON.parse(run.stdout);

    expect(value.dataSync()[0]).toBeCloseTo(torch.loss, 4);
    const grad = (v: tf.Variable) => grads[v.name]!.arraySync() as Nested;
    weights.blocks.forEach((b, i) => {
      for (const key of ['kernel', 'gamma', 'beta'] as const) {
        const ours = grad(b[key]);
        const theirs = torch.grads.blocks[i][key] as Nested;
        expect(maxAbsDiff(ours, theirs), `block ${i} ${key}`).toBeLessThan(1e-4 + 1e-3 * maxAbs(theirs));
      }
      expect(maxAbsDiff(b.movingMean.read().arraySync() as Nested, torch.runningMean[i])).toBeLessThan(1e-4);
      expect(maxAbsDiff(b.movingVariance.read().arraySync() as Nested, torch.runningVar[i])).toBeLessThan(1e-4);
    });
    expect(maxAbsDiff(grad(weights.head), torch.grads.head)).toBeLessThan(1e-4 + 1e-3 * maxAbs(torch.grads.head));
    model.dispose();
  });
});
