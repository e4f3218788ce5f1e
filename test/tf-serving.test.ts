// TF Serving's REST predict API and request formats, over real HTTP. Requests are
// written from TF Serving's REST API document (tensorflow.org/tfx/serving/api_rest):
// POST /v1/models/<name>[/versions/<v>]:predict with the row format
// {"signature_name", "instances": [...]} and the columnar format {"inputs": ...};
// answers {"predictions": [...]} / {"outputs": ...}; errors {"error": "..."}.
// The same JSON forms on POST /v1/predict, and the wrong-scale 422 on both.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { waitFor } from './helpers/jobs.ts';
import { contractViolations } from './helpers/openapi.ts';
import { postPredict, startServingApi, strokePixels, type ServingApi } from './helpers/serving.ts';

let api: ServingApi;
let version: string;

const post = async (path: string, body: unknown) => {
  const response = await postPredict(`${api.url}${path}`, JSON.stringify(body), 'application/json');
  const violations = contractViolations({
    method: 'POST',
    path,
    status: response.status,
    contentType: response.headers.get('content-type') ?? undefined,
    body: response.body,
  });
  expect(violations).toEqual([]);
  return response;
};

const pixels = Array.from(strokePixels(6));
const rows = (values: number[]) => Array.from({ length: 28 }, (_, y) => values.slice(y * 28, y * 28 + 28));
const rowsOfOne = (values: number[]) => rows(values).map((row) => row.map((v) => [v]));
const unit = pixels.map((v) => v / 255);

let reference: number[];
const expectSameAsReference = (probabilities: number[]) => probabilities.forEach((p, k) => expect(p).toBeCloseTo(reference[k]!, 5));

beforeAll(async () => {
  api = await startServingApi({ redisUrl: inject('redisUrl') });
  version = (await api.publishAndAnnounce(41)).version;
  await waitFor('the model to load', async () => (await fetch(`${api.url}/v2/health/ready`)).status === 200);
  reference = (await post('/v1/predict', { pixels })).body.predictions[0].probabilities;
});

afterAll(() => api?.close());

describe('POST /v1/models/<name>:predict (TF Serving)', () => {
  it('row format: instances as rows of 784, 28×28 and 28×28×1, with signature_name; one prediction each, in order', async () => {
    const response = await post('/v1/models/mnist:predict', {
      signature_name: 'serving_default',
      instances: [pixels, rows(pixels), rowsOfOne(pixels), { image: rows(pixels) }],
    });
    expect(response.status, response.text).toBe(200);
    expect(response.headers.get('x-model-version')).toBe(version);
    expect(Object.keys(response.body)).toEqual(['predictions']);
    expect(response.body.predictions).toHaveLength(4);
    for (const prediction of response.body.predictions) {
      expectSameAsReference(prediction.probabilities);
      expect(prediction.label).toBe(reference.indexOf(Math.max(...reference)));
    }
  });

  it('columnar format: inputs as a list and as {"image": list}; outputs by name', async () => {
    for (const body of [{ inputs: [pixels, rows(pixels)] }, { inputs: { image: [pixels, rows(pixels)] } }]) {
      const response = await post(`/v1/models/mnist/versions/${version}:predict`, body);
      expect(response.status, response.text).toBe(200);
      expect(Object.keys(response.body)).toEqual(['outputs']);
      expect(response.body.outputs.label).toHaveLength(2);
      response.body.outputs.probabilities.forEach(expectSameAsReference);
    }
  });

  it('0–1 values are refused with 422 naming the fix; with "scale": "unit" they give the 0–255 answer', async () => {
    const refused = await post('/v1/models/mnist:predict', { instances: [unit] });
    expect(refused.status).toBe(422);
    expect(refused.body).toEqual({ error: expect.stringMatching(/0–1 floats.*multiply them by 255.*"scale": "unit"/) });
    const accepted = await post('/v1/models/mnist:predict', { instances: [unit], scale: 'unit' });
    expect(accepted.status, accepted.text).toBe(200);
    expectSameAsReference(accepted.body.predictions[0].probabilities);
  });

  it.each([
    ['an unknown model', '/v1/models/cifar10:predict', { instances: [pixels] }, 404, /model "cifar10" does not exist/],
    ['an unknown signature', '/v1/models/mnist:predict', { signature_name: 'classify', instances: [pixels] }, 400, /serving_default/],
    ['a row of 783', '/v1/models/mnist:predict', { instances: [pixels.slice(1)] }, 422, /instances\[0\] has 783 entries/],
    ['an unknown named input', '/v1/models/mnist:predict', { inputs: { x: [pixels] } }, 400, /"image"/],
    ['instances and inputs together', '/v1/models/mnist:predict', { instances: [pixels], inputs: [pixels] }, 400, /unknown field "inputs"/],
  ])('%s: {"error": ...}', async (_what, path, body, status, message) => {
    const response = await post(path, body);
    expect(response.status, response.text).toBe(status);
    expect(Object.keys(response.body)).toEqual(['error']);
    expect(response.body.error).toMatch(message);
  });
});

describe('the same forms on POST /v1/predict (problem+json errors)', () => {
  it('instances as bare rows, inputs columnar, pixels as 28×28×1', async () => {
    const batch = await post('/v1/predict', { instances: [pixels, rowsOfOne(pixels)] });
    expect(batch.status, batch.text).toBe(200);
    batch.body.predictions.forEach((p: { probabilities: number[] }) => expectSameAsReference(p.probabilities));
    const columnar = await post('/v1/predict', { inputs: { image: [rows(pixels)] } });
    expect(columnar.status, columnar.text).toBe(200);
    expectSameAsReference(columnar.body.predictions[0].probabilities);
    const hwc = await post('/v1/predict', { pixels: rowsOfOne(pixels) });
    expectSameAsReference(hwc.body.predictions[0].probabilities);
  });

  it('Keras-style 0–1 pixels: 422 problem naming the fix (no silent wrong answer); "scale": "unit" or "pixel" decides', async () => {
    const refused = await post('/v1/predict', { pixels: unit });
    expect(refused.status).toBe(422);
    expect(refused.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(refused.body.detail).toMatch(/body\.pixels looks like 0–1 floats.*multiply them by 255, or send "scale": "unit"/);
    const scaled = await post('/v1/predict', { pixels: unit, scale: 'unit' });
    expect(scaled.status).toBe(200);
    expectSameAsReference(scaled.body.predictions[0].probabilities);
    // Declared 0–255: taken as it is (a nearly black image), not refused.
    expect((await post('/v1/predict', { pixels: unit, scale: 'pixel' })).status).toBe(200);
    // All zero is a blank image, not a scale mistake.
    expect((await post('/v1/predict', { pixels: Array(784).fill(0) })).status).toBe(200);
    const outOfRange = await post('/v1/predict', { pixels: [2, ...unit.slice(1)], scale: 'unit' });
    expect(outOfRange.status).toBe(422);
    expect(outOfRange.body.detail).toMatch(/pixels\[0\] is 2; pixel values must be 0–1/);
    const badScale = await post('/v1/predict', { pixels, scale: 'percent' });
    expect(badScale.status).toBe(400);
    expect(badScale.body.detail).toMatch(/"scale" must be "pixel".*or "unit"/);
  });
});
