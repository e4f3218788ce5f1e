// /v1/predict serves whichever architecture model.json holds: a compact model published
// after a seed-net one is loaded, folded and answers like tfjs's own predict.
import * as tf from '@tensorflow/tfjs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { loadModel } from '../src/training/artifacts.ts';
import { waitFor } from './helpers/jobs.ts';
import { directProbabilities, pngOf, postPredict, startServingApi, strokePixels, type ServingApi } from './helpers/serving.ts';

let api: ServingApi;
const models: tf.LayersModel[] = [];

beforeAll(async () => {
  api = await startServingApi({ redisUrl: inject('redisUrl') });
});
afterAll(async () => {
  await api?.close();
  models.forEach((m) => m.dispose());
});

describe('serving either architecture', () => {
  it.each(['seed', 'compact'] as const)('a published %s model answers /v1/predict like model.predict', async (architecture) => {
    const published = await api.publishAndAnnounce(architecture === 'seed' ? 21 : 22, architecture);
    expect(published).toMatchObject({ architecture, trainableParams: architecture === 'compact' ? 7568 : 14320 });
    await waitFor(`the API to load the ${architecture} model`, async () => {
      const ready = await (await fetch(`${api.url}/readyz`)).json();
      return ready.model?.version === published.version;
    });
    const model = await loadModel(join(api.registry.versionsDir, published.version));
    models.push(model);
    const pixels = strokePixels(5);
    const expected = directProbabilities(model, pixels);
    const response = await postPredict(`${api.url}/v1/predict`, await pngOf(pixels), 'image/png');
    expect(response.status, JSON.stringify(response.body)).toBe(200);
    const [prediction] = response.body.predictions;
    prediction.probabilities.forEach((p: number, i: number) => expect(p).toBeCloseTo(expected[i]!, 5));
    expect(response.body.model.version).toBe(published.version);
  });
});
