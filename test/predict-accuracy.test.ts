// A model trained here (the lead's train(), small and quick) classifies official
// MNIST test images sent as PNG over HTTP exactly as `digits evaluate` does
// (evaluateSplit), image for image; and, with ?preprocess=mnist, digits drawn on
// a large white sheet. Skipped where the MNIST files are not present.
import * as tf from '@tensorflow/tfjs';
import { existsSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { generateDigitCorpus } from '../bench/digit-corpus.ts';
import { loadDataset } from '../src/data/datasets.ts';
import { readIdxImages } from '../src/data/idx.ts';
import { forwardInfer, seedNetWeights } from '../src/model/forward.ts';
import { loadModel } from '../src/training/artifacts.ts';
import { evaluateSplit, train } from '../src/training/train.ts';
import { REPO_ROOT, waitFor } from './helpers/jobs.ts';
import { pngOf, postPredict, startServingApi, type ServingApi } from './helpers/serving.ts';

const MNIST_DIR = process.env.MNIST_DIR ?? join(REPO_ROOT, '..', 'shared', 'data', 'mnist');
const SUBSET = 500;
/**
 * This file's model (seed recipe, seed 4, 1 epoch on 12,000 images: bit-reproducible) read
 * 421 of the corpus's 540 images (77.96 %) with stroke-width normalisation, 406 (75.19 %)
 * without it (bench/robustness.ts). The floor leaves 5 images for font rendering that differs
 * between librsvg builds.
 */
const CORPUS_FLOOR = 0.77;
/** The corpus renders digits in DejaVu fonts (Debian's fonts-dejavu-core). */
const HAS_DEJAVU = existsSync('/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf');
const HAS_MNIST = existsSync(join(MNIST_DIR, 't10k-images-idx3-ubyte.gz'));
// Skips say why, as the other files' do.
if (!HAS_MNIST) console.warn(`predict-accuracy.test.ts: SKIPPED, no MNIST at ${MNIST_DIR} (set MNIST_DIR to the four IDX files)`);
else if (!HAS_DEJAVU) console.warn('predict-accuracy.test.ts: skipping the non-MNIST corpus test, no DejaVu fonts (apt-get install fonts-dejavu-core)');

describe.skipIf(!HAS_MNIST)('a trained model over HTTP', () => {
  let api: ServingApi;
  let model: tf.LayersModel;

  beforeAll(async () => {
    const outDir = await mkdtemp(join(tmpdir(), 'predict-accuracy-'));
    const result = await train({ recipe: { limit: 12000, epochs: 1 }, dataDir: MNIST_DIR, outDir });
    api = await startServingApi({ redisUrl: inject('redisUrl') });
    const published = await api.registry.publish(result.modelDir!);
    model = await loadModel(join(api.registry.versionsDir, published.version));
    // Published without an announcement: the API finds it when a request arrives while it has no model.
    await waitFor('the trained model to load', async () => {
      const response = await postPredict(`${api.url}/v1/predict`, JSON.stringify({ pixels: Array(784).fill(0) }), 'application/json');
      return response.body?.model?.version === published.version;
    });
  }, 600_000); // training takes a while on a busy 2-core machine

  afterAll(async () => {
    await api?.close();
    model?.dispose();
  });

  it(`gives evaluateSplit's accuracy and labels on the first ${SUBSET} official test images sent as PNG`, async () => {
    const raw = await readIdxImages(join(MNIST_DIR, 't10k-images-idx3-ubyte.gz'));
    const { test } = await loadDataset({ dataset: 'mnist', dataDir: MNIST_DIR, limit: 1, testLimit: SUBSET });
    const weights = seedNetWeights(model);
    const expected = evaluateSplit(weights, test);
    const expectedLabels = tf.tidy(() => Array.from(tf.argMax(forwardInfer(weights, tf.tensor4d(test.images, [SUBSET, 28, 28, 1])), 1).dataSync()));

    // Single-image requests, 16 at a time: the way other services call, micro-batched by the server.
    const labels: number[] = new Array(SUBSET);
    let next = 0;
    const client = async () => {
      while (next < SUBSET) {
        const i = next++;
        const png = await pngOf(raw.pixels.subarray(i * 784, (i + 1) * 784));
        const response = await postPredict(`${api.url}/v1/predict`, png, 'image/png');
        expect(response.status).toBe(200);
        labels[i] = response.body.predictions[0].label;
      }
    };
    await Promise.all(Array.from({ length: 16 }, client));

    const correct = labels.filter((label, i) => label === test.labels[i]).length;
    expect(labels).toEqual(expectedLabels);
    expect(correct / SUBSET).toBe(expected.accuracy);
    expect(expected.accuracy).toBeGreaterThan(0.5); // a trained model (chance: 0.1), whatever the seed
  });

  it.skipIf(!HAS_DEJAVU)('?preprocess=mnist reads the generated non-MNIST corpus (fonts, pens, inverted, JPEG) above its measured floor', { timeout: 300_000 }, async () => {
    const corpus = await generateDigitCorpus();
    const labels: number[] = [];
    for (let first = 0; first < corpus.length; first += 60) {
      const batch = corpus.slice(first, first + 60);
      const body = JSON.stringify({ instances: batch.map((image) => ({ image: image.bytes.toString('base64') })) });
      const response = await postPredict(`${api.url}/v1/predict?preprocess=mnist`, body, 'application/json');
      expect(response.status, JSON.stringify(response.body)).toBe(200);
      labels.push(...response.body.predictions.map((p: { label: number }) => p.label));
    }
    const accuracy = labels.filter((label, i) => label === corpus[i]!.label).length / corpus.length;
    console.info(`generated corpus, ${corpus.length} images, ?preprocess=mnist accuracy ${accuracy.toFixed(4)}`);
    expect(accuracy).toBeGreaterThanOrEqual(CORPUS_FLOOR);
  });

  /** A thick-pen digit on a 900×700 off-white sheet, away from the centre. */
  const drawing = (path: string) =>
    sharp(
      Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg" width="900" height="700">
        <rect width="100%" height="100%" fill="#f3efe6"/>
        <path d="${path}" stroke="#202a3a" stroke-width="34" stroke-linecap="round" stroke-linejoin="round" fill="none"/>
      </svg>`),
    )
      .jpeg({ quality: 85 })
      .toBuffer();

  it.each([
    [0, 'M 560 150 C 440 150 430 460 560 460 C 690 460 680 150 560 150 Z'],
    [1, 'M 300 120 L 300 520'],
    [7, 'M 420 180 L 620 180 L 500 520'],
  ])('?preprocess=mnist reads a %i drawn on a large sheet (JPEG photo-like input)', async (digit, path) => {
    const photo = await drawing(path);
    expect((await postPredict(`${api.url}/v1/predict`, photo, 'image/jpeg')).status).toBe(422); // not 28×28
    const response = await postPredict(`${api.url}/v1/predict?preprocess=mnist`, photo, 'image/jpeg');
    expect(response.status).toBe(200);
    expect(response.body.predictions[0].label).toBe(digit);
  });
});
