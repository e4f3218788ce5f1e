// A tiny real tfjs model saved the way training saves one (model.json +
// weights.bin + metadata.json), for registry and API tests.
import * as tf from '@tensorflow/tfjs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { saveModel } from '../../src/training/artifacts.ts';

/** A 4 → 3 dense softmax model with seeded weights; its predictions identify it. */
export function tinyModel(seed: number): tf.Sequential {
  const model = tf.sequential();
  model.add(tf.layers.dense({ inputShape: [4], units: 3, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed }) }));
  return model;
}

export function trainingMetadata(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    dataset: 'mnist',
    recipe: { dataset: 'mnist', epochs: 2, batchSize: 128, learningRate: 0.01, momentum: 0.9, seed: 1, limit: 512 },
    trainableParams: 15,
    metrics: [1, 2].map((epoch) => ({
      epoch,
      trainLoss: 1 / epoch,
      trainAccuracy: 0.5 + epoch / 10,
      testLoss: 1.1 / epoch,
      testAccuracy: 0.45 + epoch / 10,
      seconds: 1.5,
      imagesPerSecond: 341,
      engine: 'cpu',
    })),
    engine: 'cpu',
    ...overrides,
  };
}

/** Writes a training output directory for `model` and returns it. */
export async function writeTrainingOutput(dir: string, model: tf.LayersModel, metadata = trainingMetadata()): Promise<string> {
  await saveModel(model, dir);
  await writeFile(join(dir, 'metadata.json'), JSON.stringify(metadata));
  return dir;
}
