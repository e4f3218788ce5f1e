import * as tf from '@tensorflow/tfjs';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel } from '../src/training/artifacts.ts';
import { loadCheckpoint } from '../src/training/checkpoint.ts';
import { learningRateAt } from '../src/training/schedule.ts';
import { train } from '../src/training/train.ts';
import type { BatchProgress, EpochMetrics } from '../src/training/types.ts';

const MNIST_DIR = resolve(import.meta.dirname, '../../shared/data/mnist');
const hasMnist = existsSync(join(MNIST_DIR, 'train-labels-idx1-ubyte.gz'));
if (!hasMnist) console.warn(`skipping MNIST training tests: no MNIST at ${MNIST_DIR}`);

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'digits-train-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

async function weightsOf(dir: string): Promise<Float32Array[]> {
  const model = await loadModel(dir);
  const values = model.weights.map((w) => w.read().dataSync() as Float32Array);
  model.dispose();
  return values;
}

describe.skipIf(!hasMnist)('training on MNIST', () => {
  it('learns well above chance on a small subset and writes loadable artifacts', async () => {
    const epochs: EpochMetrics[] = [];
    const progress: BatchProgress[] = [];
    const outDir = join(work, 'small');
    const result = await train({
      // The seed recipe's constant rate: a 47-step fast run spends half of it warming up.
      recipe: { preset: 'seed', epochs: 1, limit: 3000, batchSize: 64, learningRate: 0.05 },
      dataDir: MNIST_DIR,
      outDir,
      onEpoch: (m) => epochs.push(m),
      onBatch: (p) => progress.push(p),
    });
    expect(result.outcome).toBe('completed');
    expect(epochs).toHaveLength(1);
    const [m] = epochs;
    expect(Object.keys(m!).sort()).toEqual(
      ['engine', 'epoch', 'imagesPerSecond', 'seconds', 'testAccuracy', 'testLoss', 'trainAccuracy', 'trainLoss'].sort(),
    );
    expect(m!.testAccuracy).toBeGreaterThan(0.8); // chance is 0.1
    expect(progress).toHaveLength(Math.ceil(3000 / 64));
    expect(progress.at(-1)!.fraction).toBe(1);

    const metadata = JSON.parse(await readFile(join(result.modelDir!, 'metadata.json'), 'utf8'));
    expect(metadata.trainableParams).toBe(14320);
    expect(metadata.metrics).toEqual(epochs);
    // Loaded through tfjs's own loader, the model predicts like the trained one scored.
    const model = await tf.loadLayersModel(`file://${result.modelDir}/model.json`);
    expect(model.outputs[0]!.shape).toEqual([null, 10]);
    model.dispose();
  });

  it('seed recipe: 1 epoch + resume + 1 epoch ends with the same weights as 2 epochs in one go', async () => {
    const recipe = { preset: 'seed', epochs: 2, limit: 640, batchSize: 64, seed: 7 } as const;
    const straight = await train({ recipe, dataDir: MNIST_DIR, outDir: join(work, 'straight') });

    const controller = new AbortController();
    const interrupted = join(work, 'interrupted');
    const first = await train({
      recipe,
      dataDir: MNIST_DIR,
      outDir: interrupted,
      signal: controller.signal,
      onEpoch: () => controller.abort(), // stop right after epoch 1's checkpoint
    });
    expect(first.outcome).toBe('cancelled');
    expect((await loadCheckpoint(join(interrupted, 'checkpoint')))!.state.epoch).toBe(1);

    const resumed = await train({ recipe: {}, dataDir: MNIST_DIR, outDir: interrupted, resume: true });
    expect(resumed.outcome).toBe('completed');
    expect(resumed.metrics.map((m) => m.epoch)).toEqual([1, 2]);

    const a = await weightsOf(straight.modelDir!);
    const b = await weightsOf(resumed.modelDir!);
    expect(b.length).toBe(a.length);
    a.forEach((values, i) => {
      const other = b[i]!;
      const maxDiff = values.reduce((m, v, j) => Math.max(m, Math.abs(v - other[j]!)), 0);
      expect(maxDiff).toBeLessThan(1e-5);
    });
    expect(resumed.metrics[1]!.testAccuracy).toBeCloseTo(straight.metrics[1]!.testAccuracy, 4);
  });

  it.each([
    ['fast', 'seed'],
    ['fast', 'compact'],
  ] as const)('%s recipe, %s architecture: 1 epoch + resume + 1 epoch is bit-identical to 2 epochs in one go', async (preset, architecture) => {
    // Schedule, augmentation, Nesterov momentum and decay all in play: 10 steps per epoch.
    const recipe = { preset, architecture, epochs: 2, limit: 640, batchSize: 64, seed: 3 };
    const straight = await train({ recipe, dataDir: MNIST_DIR, outDir: join(work, `straight-${preset}-${architecture}`) });

    const controller = new AbortController();
    const interrupted = join(work, `interrupted-${preset}-${architecture}`);
    await train({ recipe, dataDir: MNIST_DIR, outDir: interrupted, signal: controller.signal, onEpoch: () => controller.abort() });
    const checkpoint = (await loadCheckpoint(join(interrupted, 'checkpoint')))!;
    expect(checkpoint.state.recipe).toMatchObject({ preset, architecture, schedule: 'one-cycle' });
    // The schedule's state: 10 of 20 steps done, the rate of step 9 last set.
    expect(checkpoint.state.schedule).toEqual({ name: 'one-cycle', step: 10, totalSteps: 20, learningRate: learningRateAt(checkpoint.state.recipe, 9, 20, 10) });
    tf.dispose([...Object.values(checkpoint.modelWeights), ...checkpoint.optimizerWeights.map((w) => w.tensor)]);

    // The resumed run takes everything from the checkpoint, whatever it is asked for.
    const resumed = await train({ recipe: { preset: 'seed' }, dataDir: MNIST_DIR, outDir: interrupted, resume: true });
    expect(resumed.metrics.map((m) => m.epoch)).toEqual([1, 2]);
    const a = await weightsOf(straight.modelDir!);
    const b = await weightsOf(resumed.modelDir!);
    expect(b).toEqual(a);
    expect(resumed.metrics[1]!.testAccuracy).toBe(straight.metrics[1]!.testAccuracy);
    const metadata = JSON.parse(await readFile(join(resumed.modelDir!, 'metadata.json'), 'utf8'));
    expect(metadata).toMatchObject({ preset, architecture, recipe: { preset, architecture } });
    expect(metadata.trainableParams).toBe(architecture === 'compact' ? 7568 : 14320);
  });

  it('stops early when the target accuracy is reached', async () => {
    const result = await train({
      recipe: { epochs: 5, limit: 2000, batchSize: 64, learningRate: 0.05, targetAccuracy: 0.5 },
      dataDir: MNIST_DIR,
      outDir: join(work, 'target'),
    });
    expect(result.outcome).toBe('target-reached');
    expect(result.metrics.length).toBeLessThan(5);
  });
});
