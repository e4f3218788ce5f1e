// `digits predict` as a user runs it: locally with --model DIR and against a
// running service with --url; both must give the service's own answers.
import * as tf from '@tensorflow/tfjs';
import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { inject } from 'vitest';
import { loadModel } from '../src/training/artifacts.ts';
import { REPO_ROOT, waitFor } from './helpers/jobs.ts';
import { directProbabilities, pngOf, seedNetOutput, startServingApi, strokePixels, type ServingApi } from './helpers/serving.ts';

const run = promisify(execFile);
const digits = (...args: string[]) =>
  run(process.execPath, [join(REPO_ROOT, 'bin', 'digits.mjs'), 'predict', ...args], { cwd: REPO_ROOT, timeout: 60_000 });

let modelDir: string;
let model: tf.LayersModel;
let files: string[];
let api: ServingApi;

beforeAll(async () => {
  modelDir = await seedNetOutput(42);
  model = await loadModel(modelDir);
  const dir = await mkdtemp(join(tmpdir(), 'predict-cli-'));
  files = [join(dir, 'first.png'), join(dir, 'second.png')];
  await writeFile(files[0]!, await pngOf(strokePixels(2)));
  await writeFile(files[1]!, await pngOf(strokePixels(8)));
  api = await startServingApi({ redisUrl: inject('redisUrl') });
  // Published without an announcement: a request finds it (the API re-reads the registry while it has no model).
  const { version } = await api.registry.publish(modelDir);
  await waitFor('the model to load', async () => {
    const response = await fetch(`${api.url}/v1/predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ pixels: Array(784).fill(0) }) });
    return response.status === 200 && (await response.json()).model.version === version;
  });
});

afterAll(async () => {
  await api?.close();
  model?.dispose();
});

const expectAnswers = (predictions: { file: string; probabilities: number[] }[]) => {
  expect(predictions.map((p) => p.file)).toEqual(files);
  [strokePixels(2), strokePixels(8)].forEach((pixels, i) => {
    const expected = directProbabilities(model, pixels);
    predictions[i]!.probabilities.forEach((p, k) => expect(p).toBeCloseTo(expected[k]!, 5));
  });
};

it('--model DIR classifies files locally', async () => {
  const { stdout } = await digits(...files, '--model', modelDir, '--json');
  expectAnswers(JSON.parse(stdout).predictions);
});

it('--url sends the files to a running service', async () => {
  const { stdout } = await digits(...files, '--url', api.url, '--json');
  const result = JSON.parse(stdout);
  expectAnswers(result.predictions);
  expect(result.model.dataset).toBe('mnist');

  const text = await digits(...files, '--url', api.url);
  expect(text.stdout).toMatch(/first\.png\s+\d\s+\(\d+\.\d%\)\n.*second\.png\s+\d\s+\(\d+\.\d%\)\nmodel mnist v\d{4}-[0-9a-f]{6} \(mnist\)/s);
});

it('--model NAME picks a model name on the service, --version one of its versions; --model-dir is local', async () => {
  const other = await api.registry.publish(await seedNetOutput(43), { model: 'digits-b' });
  const first = await api.registry.publish(await seedNetOutput(44), { model: 'digits-b' }, { promote: 'never' });
  const named = JSON.parse((await digits(...files, '--url', api.url, '--model', 'digits-b', '--json')).stdout);
  expect(named.model).toMatchObject({ model: 'digits-b', version: other.version });
  const pinned = JSON.parse((await digits(...files, '--url', api.url, '--model', 'digits-b', '--version', first.version, '--json')).stdout);
  expect(pinned.model).toMatchObject({ model: 'digits-b', version: first.version });
  expectAnswers(JSON.parse((await digits(...files, '--model-dir', modelDir, '--json')).stdout).predictions);

  const unknown = await digits(files[0]!, '--url', api.url, '--model', 'nope').then(
    () => undefined,
    (error: { code: number; stderr: string }) => error,
  );
  expect(unknown?.code).toBe(1);
  expect(unknown?.stderr).toMatch(/404: model "nope" does not exist/);
});

it('says which file is wrong and why, with exit code 1', async () => {
  const wrong = join(await mkdtemp(join(tmpdir(), 'predict-cli-')), 'small.png');
  await writeFile(wrong, await pngOf(new Uint8Array(27 * 27), 27));
  for (const where of [['--model', modelDir], ['--url', api.url]]) {
    const failed = await digits(wrong, ...where).then(
      () => undefined,
      (error: { code: number; stderr: string }) => error,
    );
    expect(failed?.code).toBe(1);
    expect(failed?.stderr).toMatch(/small\.png.* is 27×27; the model takes 28×28/);
  }
});
