// The serving core without HTTP: the grayscale PNG fast path, micro-batching,
// MNIST-form preprocessing of photo-like images, and the model manager's
// hot-swap (no tensors leak).
import * as tf from '@tensorflow/tfjs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PNG_SIGNATURE, chunk, ihdr } from './helpers/png.ts';
import { initEngine } from '../src/engine/index.ts';
import { forwardInfer, seedNetWeights } from '../src/model/forward.ts';
import { buildSeedNet } from '../src/model/seed-net.ts';
import { FileSystemRegistry } from '../src/registry/filesystem.ts';
import type { ModelVersion } from '../src/registry/types.ts';
import { decodeImage } from '../src/serving/decode.ts';
import { UnprocessableInputError } from '../src/serving/errors.ts';
import { foldedOf } from '../src/serving/fold.ts';
import { FoldedNet } from '../src/serving/folded-forward.mjs';
import { InferencePool, InferenceThreadError } from '../src/serving/inference-pool.ts';
import { LoadedModel } from '../src/serving/loaded-model.ts';
import { MicroBatcher } from '../src/serving/micro-batcher.ts';
import { decodeGrayPng } from '../src/serving/png-fast-path.ts';
import { toMnistForm } from '../src/serving/mnist-form.ts';
import { ModelManager } from '../src/serving/model-manager.ts';
import { publishSeedNet, strokePixels } from './helpers/serving.ts';

/** An 8-bit grayscale PNG written by hand: scanline y uses filter `filters[y % filters.length]`, IDAT split in two. */
function handmadePng(pixels: Uint8Array, side: number, filters: number[], extraChunks: [string, Buffer][] = []): Buffer {
  const raw = Buffer.alloc(side * (side + 1));
  for (let y = 0; y < side; y++) {
    const filter = filters[y % filters.length]!;
    raw[y * (side + 1)] = filter;
    for (let x = 0; x < side; x++) {
      const at = (xx: number, yy: number) => (xx >= 0 && yy >= 0 ? pixels[yy * side + xx]! : 0);
      const [a, b, c] = [at(x - 1, y), at(x, y - 1), at(x - 1, y - 1)];
      const p = a + b - c;
      const paeth = Math.abs(p - a) <= Math.abs(p - b) && Math.abs(p - a) <= Math.abs(p - c) ? a : Math.abs(p - b) <= Math.abs(p - c) ? b : c;
      const predictor = [0, a, b, (a + b) >> 1, paeth][filter]!;
      raw[y * (side + 1) + 1 + x] = (at(x, y) - predictor) & 0xff;
    }
  }
  const compressed = deflateSync(raw);
  const half = compressed.length >> 1;
  return Buffer.concat([
    PNG_SIGNATURE,
    chunk('IHDR', ihdr(side, side)),
    ...extraChunks.map(([type, data]) => chunk(type, data)),
    chunk('IDAT', compressed.subarray(0, half)),
    chunk('IDAT', compressed.subarray(half)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

describe('the grayscale PNG fast path', () => {
  const pixels = Uint8Array.from({ length: 784 }, (_, i) => (i * 37 + (i >> 3) * 11) % 256);
  const viaSharp = async (png: Buffer) => new Uint8Array(await sharp(png).greyscale().raw().toBuffer());

  it('decodes every scanline filter exactly as sharp does', async () => {
    for (const filters of [[0], [1], [2], [3], [4], [0, 1, 2, 3, 4]]) {
      const png = handmadePng(pixels, 28, filters);
      expect(await viaSharp(png)).toEqual(pixels); // the hand-made file is a valid PNG
      expect(decodeGrayPng(png, 28)).toEqual(pixels);
    }
    const written = await sharp(Buffer.from(pixels), { raw: { width: 28, height: 28, channels: 1 } }).toColourspace('b-w').png({ adaptiveFiltering: true }).toBuffer();
    expect(decodeGrayPng(written, 28)).toEqual(pixels);
  });

  it('leaves everything else to sharp', async () => {
    const png = handmadePng(pixels, 28, [4]);
    const corrupt = Buffer.from(png);
    corrupt[60] = corrupt[60]! ^ 0xff; // inside the first IDAT: its CRC no longer matches
    const cases = {
      'another size': handmadePng(pixels.subarray(0, 27 * 27), 27, [0]),
      'RGB': await sharp(Buffer.from(pixels), { raw: { width: 28, height: 28, channels: 1 } }).png().toBuffer(),
      'a gamma chunk': handmadePng(pixels, 28, [0], [['gAMA', Buffer.from([0, 0, 0xb1, 0x8f])]]),
      'a bad CRC': corrupt,
      'truncated': png.subarray(0, png.length - 20),
      'trailing bytes': Buffer.concat([png, Buffer.from('junk')]),
    };
    for (const [name, bytes] of Object.entries(cases)) expect(decodeGrayPng(bytes, 28), name).toBeUndefined();
    // A text chunk carries no pixel meaning.
    expect(decodeGrayPng(handmadePng(pixels, 28, [1], [['tEXt', Buffer.from('Comment\0hi')]]), 28)).toEqual(pixels);
  });
});

describe('FoldedNet (BatchNorm folded into the convs, Winograd SIMD kernels)', () => {
  it.each(['seed', 'compact'] as const)('gives forwardInfer\'s logits for a %s network with non-trivial BatchNorm statistics', async (architecture) => {
    await initEngine();
    const model = buildSeedNet(7, architecture);
    const weights = seedNetWeights(model);
    weights.blocks.forEach((block, i) => {
      const channels = block.gamma.shape[0]!;
      block.gamma.assign(tf.randomUniform([channels], 0.5, 2, 'float32', 10 + i));
      block.beta.assign(tf.randomUniform([channels], -0.5, 0.5, 'float32', 20 + i));
      block.movingMean.write(tf.randomUniform([channels], 0, 1, 'float32', 30 + i));
      block.movingVariance.write(tf.randomUniform([channels], 0.2, 3, 'float32', 40 + i));
    });
    const { layout, weights: folded } = foldedOf(model);
    const net = new FoldedNet(layout, folded);
    const x = tf.randomNormal([16, 28, 28, 1], 0, 1, 'float32', 5) as tf.Tensor4D;
    const logits = new Float32Array(16 * 10);
    net.logits(x.dataSync() as Float32Array, 16, logits);
    const [expected, actual] = [forwardInfer(weights, x), tf.tensor2d(logits, [16, 10])];
    const scale = tf.max(tf.abs(expected)).dataSync()[0]!;
    expect(scale).toBeGreaterThan(0.1);
    expect(tf.max(tf.abs(tf.sub(expected, actual))).dataSync()[0]! / scale).toBeLessThan(1e-5);
    expect(Array.from(tf.argMax(actual, 1).dataSync())).toEqual(Array.from(tf.argMax(expected, 1).dataSync()));
    tf.dispose([x, expected, actual]);
    model.dispose();
  });
});

describe('MicroBatcher', () => {
  const doubler = (sizes: number[]) =>
    new MicroBatcher<number, number>(async (inputs) => inputs.map((x) => x * 2), { maxBatch: 4, maxWaitMs: 2 }, (size) => sizes.push(size));

  it('runs images submitted together as one forward pass, at most maxBatch at a time', async () => {
    const sizes: number[] = [];
    const batcher = doubler(sizes);
    const outputs = await Promise.all([1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map((x) => batcher.submit(x)));
    expect(outputs).toEqual([2, 4, 6, 8, 10, 12, 14, 16, 18, 20]);
    expect(sizes).toEqual([4, 4, 2]);
    expect(batcher.inFlight).toBe(0);
  });

  it('a lone image runs after the bounded wait (0 means the next event-loop turn)', async () => {
    for (const maxWaitMs of [0, 2]) {
      const sizes: number[] = [];
      const batcher = new MicroBatcher<number, number>(async (inputs) => inputs, { maxBatch: 64, maxWaitMs }, (size) => sizes.push(size));
      await expect(batcher.submit(7)).resolves.toBe(7);
      expect(sizes).toEqual([1]);
    }
  });

  it('with maxInFlight, the next batch starts when one finishes and takes the oldest images first, bounded by images', async () => {
    const batches: number[][] = [];
    const finish: (() => void)[] = [];
    const batcher = new MicroBatcher<number, number>(
      (inputs) => {
        batches.push(inputs);
        return new Promise((resolve) => finish.push(() => resolve(inputs)));
      },
      { maxBatch: 4, maxWaitMs: 0, maxInFlight: 1 },
    );
    const request = (images: number[]) => Promise.all(images.map((x) => batcher.submit(x)));
    const a = request([1, 2]);
    await new Promise((resolve) => setImmediate(resolve));
    expect(batches).toEqual([[1, 2]]);
    // While A's batch runs, B (3 images) then C (3 images) arrive: nothing starts until A's finishes.
    const b = request([3, 4, 5]);
    const c = request([6, 7, 8]);
    await new Promise((resolve) => setImmediate(resolve));
    expect(batches).toHaveLength(1);
    finish.shift()!();
    await expect(a).resolves.toEqual([1, 2]);
    expect(batches[1]).toEqual([3, 4, 5, 6]); // B whole, then C's first image: arrival order, at most maxBatch images
    finish.shift()!();
    await expect(b).resolves.toEqual([3, 4, 5]);
    expect(batches[2]).toEqual([7, 8]);
    finish.shift()!();
    await expect(c).resolves.toEqual([6, 7, 8]);
    await batcher.idle();
  });

  it('refuses a request whose images would exceed maxQueued, whole, with a 503 to retry; the queued ones still run', async () => {
    const finish: (() => void)[] = [];
    const batcher = new MicroBatcher<number, number>((inputs) => new Promise((resolve) => finish.push(() => resolve(inputs))), {
      maxBatch: 2,
      maxWaitMs: 0,
      maxInFlight: 1,
      maxQueued: 3,
    });
    const running = batcher.submitMany([1, 2]);
    await new Promise((resolve) => setImmediate(resolve)); // [1, 2] is in the forward pass; nothing waits
    const waiting = batcher.submitMany([3, 4, 5]);
    const refused = batcher.submitMany([6]);
    await expect(refused).rejects.toMatchObject({ name: 'ServingOverloadedError', statusCode: 503 });
    expect(batcher.inFlight).toBe(5); // nothing of the refused request was queued
    while (batcher.inFlight > 0) {
      await new Promise((resolve) => setImmediate(resolve));
      finish.shift()?.();
    }
    await expect(running).resolves.toEqual([1, 2]);
    await expect(waiting).resolves.toEqual([3, 4, 5]);
    await batcher.idle();
  });

  it('a failing forward pass rejects every image of its batch, and the batcher carries on', async () => {
    let fail = true;
    const batcher = new MicroBatcher<number, number>(
      async (inputs) => {
        if (fail) throw new Error('backend exploded');
        return inputs;
      },
      { maxBatch: 8, maxWaitMs: 1 },
    );
    const results = await Promise.allSettled([batcher.submit(1), batcher.submit(2)]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    fail = false;
    await expect(batcher.submit(3)).resolves.toBe(3);
    await batcher.idle();
  });
});

/** A digit drawn with a pen on a large off-white sheet, off-centre: what a phone photo of a drawing looks like. */
async function drawnDigit(path: string, options: { width: number; height: number; paper: string; ink: string; stroke?: number }): Promise<Buffer> {
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${options.width}" height="${options.height}">
    <rect width="100%" height="100%" fill="${options.paper}"/>
    <path d="${path}" stroke="${options.ink}" stroke-width="${options.stroke ?? 40}" stroke-linecap="round" stroke-linejoin="round" fill="none"/>
  </svg>`;
  return sharp(Buffer.from(svg)).png().toBuffer();
}

function inkStats(pixels: Uint8Array) {
  let left = 28, right = -1, top = 28, bottom = -1, mass = 0, sumX = 0, sumY = 0;
  pixels.forEach((v, i) => {
    const x = i % 28, y = Math.floor(i / 28);
    if (v > 0) [left, right, top, bottom] = [Math.min(left, x), Math.max(right, x), Math.min(top, y), Math.max(bottom, y)];
    mass += v;
    sumX += v * x;
    sumY += v * y;
  });
  return { width: right - left + 1, height: bottom - top + 1, centreX: sumX / mass, centreY: sumY / mass, max: Math.max(...pixels) };
}

describe('?preprocess=mnist (toMnistForm)', () => {
  const decodePhoto = (png: Buffer) => decodeImage(png, 'photo', { maxPixels: 1e8, background: 255, maxSide: 512 });

  it('turns a dark "7" on a large light sheet into a centred 20-pixel MNIST digit, ink bright on black', async () => {
    const photo = await drawnDigit('M 600 150 L 780 150 L 680 420', { width: 1200, height: 800, paper: '#efeadf', ink: '#1d2433' });
    const mnist = await toMnistForm(await decodePhoto(photo), 'photo');
    const stats = inkStats(mnist);
    expect(Math.max(stats.width, stats.height)).toBe(20); // the longer side fits 20×20
    expect(stats.width).toBeLessThan(20); // aspect kept: a 7 is taller than wide
    expect(stats.centreX).toBeGreaterThan(12.5);
    expect(stats.centreX).toBeLessThan(14.5);
    expect(stats.centreY).toBeGreaterThan(12.5);
    expect(stats.centreY).toBeLessThan(14.5);
    expect(stats.max).toBe(255);
    expect([mnist[0], mnist[27], mnist[27 * 28], mnist[783]]).toEqual([0, 0, 0, 0]); // paper became black
  });

  it('keeps light ink on a dark background (chalk on a blackboard) as it is, and gives the same digit', async () => {
    const path = 'M 300 100 L 300 500';
    const light = await toMnistForm(await decodePhoto(await drawnDigit(path, { width: 640, height: 640, paper: '#fdfdfd', ink: '#202020' })), 'photo');
    const dark = await toMnistForm(await decodePhoto(await drawnDigit(path, { width: 640, height: 640, paper: '#202020', ink: '#fdfdfd' })), 'photo');
    const [a, b] = [inkStats(light), inkStats(dark)];
    expect(a.height).toBe(20);
    expect(b).toEqual({ ...a, centreY: expect.closeTo(a.centreY, 1) });
    // Anti-aliased edges render a little differently light-on-dark; the digits match closely.
    light.forEach((v, i) => expect(Math.abs(v - dark[i]!)).toBeLessThanOrEqual(32));
  });

  it('a blank sheet has no digit: 422', async () => {
    const blank = await sharp({ create: { width: 300, height: 300, channels: 3, background: '#f0f0f0' } }).png().toBuffer();
    await expect(toMnistForm(await decodePhoto(blank), 'photo')).rejects.toThrow(UnprocessableInputError);
  });

  it('an MNIST-form image stays in MNIST form', async () => {
    const pixels = strokePixels(2);
    const mnist = await toMnistForm({ width: 28, height: 28, pixels }, 'pixels');
    const stats = inkStats(mnist);
    expect(stats.height).toBe(20);
    expect(Math.abs(stats.centreX - 13.5)).toBeLessThanOrEqual(0.5);
  });
});

describe('ModelManager hot-swap', () => {
  let registry: FileSystemRegistry;
  let versions: ModelVersion[];
  const silent = { info: () => {}, warn: () => {}, error: () => {} };

  beforeAll(async () => {
    registry = new FileSystemRegistry(await mkdtemp(join(tmpdir(), 'serving-manager-')));
    versions = [await publishSeedNet(registry, 1), await publishSeedNet(registry, 2), await publishSeedNet(registry, 3)];
  });

  const manager = (pinnedCacheSize = 1) =>
    new ModelManager({ registry, batching: { maxBatch: 16, maxWaitMs: 1 }, pinnedCacheSize, recheckIntervalMs: 60_000, logger: silent });

  afterAll(() => tf.disposeVariables());

  it('swaps to each promoted version while requests are in flight, and disposes each old version once its last request ends', async () => {
    const models = manager();
    await registry.promote(versions[0]!.version);
    await models.start();
    expect(models.active?.version).toBe(versions[0]!.version);
    const input = new Float32Array(784);
    for (let swap = 1; swap <= 30; swap++) {
      // A request holds the old model across the swap and must still complete on it.
      const lease = await models.acquire();
      const inFlight = lease.model.predict([input, input]);
      const next = versions[swap % versions.length]!;
      await registry.promote(next.version);
      await models.refresh();
      expect(models.active?.version).toBe(next.version);
      const predictions = await inFlight;
      expect(predictions).toHaveLength(2);
      expect(lease.model.info.version).toBe(versions[(swap - 1) % versions.length]!.version);
      lease.release();
      await new Promise((resolve) => setImmediate(resolve)); // disposal runs once the batcher is idle
      expect(() => lease.model.acquire()).toThrow(/already disposed/);
    }
    const active = await models.acquire();
    active.release();
    await models.stop();
    await new Promise((resolve) => setImmediate(resolve));
    expect(() => active.model.acquire()).toThrow(/already disposed/);
  });

  it('stop() returns once the requests in flight on its models have finished (the inference threads close after it)', async () => {
    const models = manager();
    await registry.promote(versions[0]!.version);
    await models.start();
    const lease = await models.acquire();
    let stopped = false;
    const stopping = models.stop().then(() => (stopped = true));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(stopped).toBe(false);
    expect(await lease.model.predict([new Float32Array(784)])).toHaveLength(1); // the retired model still serves its lease
    lease.release();
    await stopping;
    expect(() => lease.model.acquire()).toThrow(/already disposed/);
  });

  it('keeps a small LRU of pinned versions; an evicted one is disposed once its request ends', async () => {
    const models = manager(1);
    await registry.promote(versions[2]!.version);
    await models.start();
    const first = await models.acquire(versions[0]!.version);
    const second = await models.acquire(versions[1]!.version); // evicts versions[0], still leased
    expect(await first.model.predict([new Float32Array(784)])).toHaveLength(1);
    first.release();
    second.release();
    await new Promise((resolve) => setImmediate(resolve));
    expect(() => first.model.acquire()).toThrow(/already disposed/); // one pinned model kept, not two
    const again = await models.acquire(versions[1]!.version);
    expect(again.model).toBe(second.model);
    again.release();
    await models.stop();
    await new Promise((resolve) => setImmediate(resolve));
    expect(() => second.model.acquire()).toThrow(/already disposed/);
  });
});

describe('inference threads (InferencePool)', () => {
  it('give the numbers the event loop gives, keep swapped-out models apart, and fail cleanly once closed', async () => {
    await initEngine();
    const pool = await InferencePool.start(2);
    const metadata = (version: string) => ({ version, dataset: 'mnist' as const, testAccuracy: 0.1, normalization: { mean: 0.1307, std: 0.3081 } });
    const [local, threadedA, threadedB] = [
      await LoadedModel.fromLayersModel(buildSeedNet(4), metadata('v0001-aaaaaa'), { maxBatch: 8, maxWaitMs: 0 }),
      await LoadedModel.fromLayersModel(buildSeedNet(4), metadata('v0001-aaaaaa'), { maxBatch: 8, maxWaitMs: 0, pool }),
      await LoadedModel.fromLayersModel(buildSeedNet(5), metadata('v0002-bbbbbb'), { maxBatch: 8, maxWaitMs: 0, pool }),
    ];
    const inputs = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11].map((n) => strokePixels(n));
    const expected = await local.predict(inputs);
    // 11 images, batches of at most 8, two threads: concurrent batches of both models.
    const [a, b] = await Promise.all([threadedA.predict(inputs), threadedB.predict(inputs)]);
    a.forEach((p, i) => p.probabilities.forEach((v, k) => expect(v).toBeCloseTo(expected[i]!.probabilities[k]!, 6)));
    expect(b.map((p) => p.probabilities[0])).not.toEqual(a.map((p) => p.probabilities[0])); // the other model's weights
    // A batch bigger than the threads' first shared slabs (64 images): they grow, same numbers.
    const wide = await LoadedModel.fromLayersModel(buildSeedNet(4), metadata('v0001-aaaaaa'), { maxBatch: 80, maxWaitMs: 0, pool });
    const many = Array.from({ length: 70 }, (_, i) => inputs[i % inputs.length]!);
    const [wideOut, twice] = await Promise.all([wide.predict(many), wide.predict(many)]);
    for (const out of [wideOut, twice]) out.forEach((p, i) => p.probabilities.forEach((v, k) => expect(v).toBeCloseTo(expected[i % inputs.length]!.probabilities[k]!, 6)));
    wide.retire();
    threadedB.retire(); // unloaded from the threads; A still serves
    await expect(threadedA.predict(inputs.slice(0, 1))).resolves.toHaveLength(1);
    await pool.close();
    await expect(threadedA.predict(inputs.slice(0, 1))).rejects.toThrow(InferenceThreadError);
    await expect(pool.load([], { kernels: [], biases: [], headKernel: { shape: [0], data: new Float32Array() }, headBias: { shape: [0], data: new Float32Array() } })).rejects.toThrow(
      /stopped/,
    );
    local.retire();
    threadedA.retire();
  });
});
