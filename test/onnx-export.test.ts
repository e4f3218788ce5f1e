// ONNX export checked by an independent runtime: onnxruntime-node runs the file
// served at GET /v1/models/{version}/model.onnx on 1,000 images, and its
// probabilities match POST /v1/predict's within 1e-4. The model is trained here
// on real MNIST (1 epoch on 2,000 images) and the images are the first 1,000
// official test images when /work/shared/data/mnist (or MNIST_DIR) is present;
// otherwise a seed net with randomised BatchNorm statistics (so folding is
// exercised) and generated images. `digits export --format onnx` writes the
// same bytes as the route.
import * as tf from '@tensorflow/tfjs';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { readIdxImages } from '../src/data/idx.ts';
import { initEngine } from '../src/engine/index.ts';
import { buildSeedNet } from '../src/model/seed-net.ts';
import { train } from '../src/training/train.ts';
import { tinyModel, trainingMetadata, writeTrainingOutput } from './helpers/model-fixture.ts';
import { REPO_ROOT, waitFor } from './helpers/jobs.ts';
import { postPredict, startServingApi, strokePixels, type ServingApi } from './helpers/serving.ts';

const MNIST_DIR = process.env.MNIST_DIR ?? join(REPO_ROOT, '..', 'shared', 'data', 'mnist');
const HAVE_MNIST = existsSync(join(MNIST_DIR, 't10k-images-idx3-ubyte.gz'));
const COUNT = 1000;
const TOLERANCE = 1e-4;

let api: ServingApi;
let version: string;
let images: Uint8Array; // COUNT × 784 pixel values 0–255

/** A seed net whose BatchNorms are far from identity, as after training. */
async function seedNetWithStatistics(dir: string): Promise<string> {
  await initEngine();
  const model = buildSeedNet(5);
  let seed = 1;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  for (const layer of model.layers.filter((l) => l.name.endsWith('_bn'))) {
    tf.tidy(() => {
      const n = layer.getWeights()[0]!.size;
      const uniform = () => tf.tensor1d(Float32Array.from({ length: n }, random));
      // gamma 0.5–1.5, beta −0.5–0.5, moving mean 0–1, moving variance 0.2–2.2
      layer.setWeights([uniform().add(0.5), uniform().sub(0.5), uniform(), uniform().mul(2).add(0.2)]);
    });
  }
  try {
    return await writeTrainingOutput(dir, model, trainingMetadata({ trainableParams: 14_320, normalization: { mean: 0.1307, std: 0.3081 } }));
  } finally {
    model.dispose();
  }
}

beforeAll(async () => {
  const outDir = await mkdtemp(join(tmpdir(), 'onnx-export-'));
  let modelDir: string;
  if (HAVE_MNIST) {
    modelDir = (await train({ recipe: { limit: 2000, epochs: 1 }, dataDir: MNIST_DIR, outDir })).modelDir!;
    images = (await readIdxImages(join(MNIST_DIR, 't10k-images-idx3-ubyte.gz'))).pixels.slice(0, COUNT * 784);
  } else {
    modelDir = await seedNetWithStatistics(outDir);
    images = new Uint8Array(COUNT * 784);
    for (let i = 0; i < COUNT; i++) {
      const stroke = strokePixels(i);
      for (let p = 0; p < 784; p++) images[i * 784 + p] = Math.min(255, stroke[p]! + ((i * 7919 + p * 31) % 97));
    }
  }
  api = await startServingApi({ redisUrl: inject('redisUrl') });
  version = (await api.registry.publish(modelDir)).version;
  await waitFor('the model to load', async () => {
    const response = await postPredict(`${api.url}/v1/predict`, JSON.stringify({ pixels: Array(784).fill(0) }), 'application/json');
    return response.body?.model?.version === version;
  });
}, 600_000); // training on a busy 2-core machine

afterAll(async () => {
  await api?.close();
});

describe(`ONNX export (${HAVE_MNIST ? 'trained on MNIST, official test images' : 'seed net with BatchNorm statistics, generated images'})`, () => {
  let onnx: Uint8Array;

  it(`onnxruntime-node on the served model.onnx matches /v1/predict within ${TOLERANCE} on ${COUNT} images`, async () => {
    const response = await fetch(`${api.url}/v1/models/${version}/model.onnx`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/octet-stream');
    expect(response.headers.get('x-model-version')).toBe(version);
    onnx = new Uint8Array(await response.arrayBuffer());

    const session = await ort.InferenceSession.create(onnx);
    expect(session.inputNames).toEqual(['image']);
    expect(session.outputNames).toEqual(['probabilities', 'label']);
    const output = await session.run({ image: new ort.Tensor('float32', Float32Array.from(images), [COUNT, 28, 28, 1]) });
    expect(output.probabilities!.dims).toEqual([COUNT, 10]);
    expect(output.label!.type).toBe('int64');
    const probabilities = output.probabilities!.data as Float32Array;
    const labels = Array.from(output.label!.data as BigInt64Array, Number);

    // The service's answers, 64 images a request (PREDICT_MAX_INSTANCES).
    const served: number[][] = [];
    for (let start = 0; start < COUNT; start += 64) {
      const instances = [];
      for (let i = start; i < Math.min(COUNT, start + 64); i++) instances.push(Array.from(images.subarray(i * 784, (i + 1) * 784)));
      const answer = await postPredict(`${api.url}/v1/predict`, JSON.stringify({ instances }), 'application/json');
      expect(answer.status, answer.text).toBe(200);
      served.push(...answer.body.predictions.map((p: { probabilities: number[] }) => p.probabilities));
    }
    let maxDifference = 0;
    let agreeing = 0;
    served.forEach((expected, i) => {
      expected.forEach((p, k) => (maxDifference = Math.max(maxDifference, Math.abs(p - probabilities[i * 10 + k]!))));
      const sorted = [...expected].sort((a, b) => b - a);
      // The arg-max can only differ on a near-tie, which the tolerance allows.
      if (sorted[0]! - sorted[1]! > 2 * TOLERANCE) expect(labels[i]).toBe(expected.indexOf(sorted[0]!));
      if (labels[i] === expected.indexOf(sorted[0]!)) agreeing++;
    });
    console.log(`ONNX vs /v1/predict on ${COUNT} images: max |Δp| = ${maxDifference.toExponential(2)}, labels agreeing ${agreeing}/${COUNT}`);
    expect(maxDifference).toBeLessThan(TOLERANCE);
  });

  it('`digits export --format onnx` writes the same bytes from the version directory', async () => {
    const out = join(await mkdtemp(join(tmpdir(), 'onnx-cli-')), 'model.onnx');
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [join(REPO_ROOT, 'bin', 'digits.mjs'), 'export', '--format', 'onnx', '--model', join(api.registry.versionsDir, version), '--out', out],
      { cwd: REPO_ROOT, timeout: 120_000 },
    );
    expect(stdout).toContain('ONNX opset 13');
    expect(new Uint8Array(await readFile(out))).toEqual(onnx);
  });

  it('a version that is not the seed net answers 422 problem+json; an unknown one 404', async () => {
    const tiny = await api.registry.publish(await writeTrainingOutput(await mkdtemp(join(tmpdir(), 'onnx-tiny-')), tinyModel(1)));
    const response = await fetch(`${api.url}/v1/models/${tiny.version}/model.onnx`);
    expect(response.status).toBe(422);
    expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect((await response.json()).detail).toMatch(/cannot be exported as ONNX/);
    expect((await fetch(`${api.url}/v1/models/v0999-abcdef/model.onnx`)).status).toBe(404);
  });
});
