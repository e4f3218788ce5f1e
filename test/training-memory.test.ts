// Training keeps no tensors it does not need: tf.memory() is the same after every epoch
// (the model's weights, the optimizer's momentum, nothing per step or per evaluation), and
// back where it started once train() returns. A leak of one tensor per step or per
// evaluation chunk shows up as growth between epochs.
import * as tf from '@tensorflow/tfjs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeIdx } from '../src/data/idx.ts';
import { initEngine } from '../src/engine/index.ts';
import { mulberry32 } from '../src/lib/random.ts';
import { train } from '../src/training/train.ts';

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'training-memory-'));
  const random = mulberry32(3);
  // 1,200 test images: more than one evaluation chunk of 1,000.
  for (const [prefix, count] of [['train', 384], ['t10k', 1200]] as const) {
    const labels = new Uint8Array(count).map((_, i) => (i * 3) % 10);
    const pixels = new Uint8Array(count * 784).map((_, p) => Math.min(255, Math.floor(random() * 100 + labels[Math.floor(p / 784)]! * 15)));
    await writeIdx(join(dir, `${prefix}-images-idx3-ubyte.gz`), { kind: 'images', pixels }, { gzip: true });
    await writeIdx(join(dir, `${prefix}-labels-idx1-ubyte.gz`), { kind: 'labels', labels }, { gzip: true });
  }
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('tensors across epochs', () => {
  it.each(['seed', 'fast'] as const)('the %s recipe: tf.memory() flat from epoch to epoch, released at the end', { timeout: 120_000 }, async (preset) => {
    await initEngine('wasm');
    const before = tf.memory();
    const perEpoch: { numTensors: number; numBytes: number }[] = [];
    const result = await train({
      recipe: { preset, epochs: 4, batchSize: 64, seed: 2 },
      dataDir: dir,
      outDir: join(dir, `run-${preset}`),
      engine: 'wasm',
      onEpoch: () => {
        const { numTensors, numBytes } = tf.memory();
        perEpoch.push({ numTensors, numBytes });
      },
    });
    expect(result.outcome).toBe('completed');
    expect(perEpoch).toHaveLength(4);
    for (const later of perEpoch.slice(1)) expect(later).toEqual(perEpoch[0]);
    const after = tf.memory();
    expect({ numTensors: after.numTensors, numBytes: after.numBytes }).toEqual({ numTensors: before.numTensors, numBytes: before.numBytes });
  });
});
