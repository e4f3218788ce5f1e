// POST /v1/predict over real HTTP with real PNG/JPEG bytes: every input form,
// batches, pinning, the 503 before any model, and hostile input (always a 4xx,
// and the server keeps answering afterwards).
import * as tf from '@tensorflow/tfjs';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { toMnistForm } from '../src/serving/mnist-form.ts';
import { loadModel } from '../src/training/artifacts.ts';
import { waitFor } from './helpers/jobs.ts';
import { directProbabilities, pngOf, postPredict, startServingApi, strokePixels, type ServingApi } from './helpers/serving.ts';
import { png } from './helpers/png.ts';

let api: ServingApi;
let first: { version: string; model: tf.LayersModel };
let second: { version: string; model: tf.LayersModel };
const predictUrl = () => `${api.url}/v1/predict`;

const expectProblem = (response: { status: number; headers: Headers; body: any }, status: number, detail?: RegExp) => {
  expect(response.status, JSON.stringify(response.body)).toBe(status);
  expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(response.body).toMatchObject({ status, detail: expect.any(String) });
  if (detail) expect(response.body.detail).toMatch(detail);
};

const expectProbabilities = (actual: number[], expected: number[]) => {
  expect(actual).toHaveLength(10);
  actual.forEach((p, i) => expect(p).toBeCloseTo(expected[i]!, 5));
};

beforeAll(async () => {
  api = await startServingApi({ redisUrl: inject('redisUrl') });
});

afterAll(async () => {
  await api?.close();
  first?.model.dispose();
  second?.model.dispose();
});

describe('before any model is published', () => {
  it('answers 503 problem+json that says to train one', async () => {
    const response = await postPredict(predictUrl(), JSON.stringify({ pixels: Array(784).fill(0) }), 'application/json');
    expectProblem(response, 503, /POST \/v1\/jobs/);
    expect(response.headers.get('retry-after')).toBeTruthy();
  });

  it('picks up the first published model from its announcement', async () => {
    const published = await api.publishAndAnnounce(11);
    await waitFor('the API to load the first model', async () => {
      const ready = await (await fetch(`${api.url}/readyz`)).json();
      return ready.model?.version === published.version;
    });
    first = { version: published.version, model: await loadModel(join(api.registry.versionsDir, published.version)) };
  });
});

describe('input forms', () => {
  const pixels = strokePixels(3);
  const expected = () => directProbabilities(first.model, pixels);

  const checkOne = (body: any) => {
    expect(body.predictions).toHaveLength(1);
    const [prediction] = body.predictions;
    expectProbabilities(prediction.probabilities, expected());
    expect(prediction.label).toBe(expected().indexOf(Math.max(...expected())));
    expect(prediction.confidence).toBeCloseTo(Math.max(...expected()), 5);
    expect(body.model).toEqual({ model: 'mnist', version: first.version, dataset: 'mnist', testAccuracy: expect.any(Number) });
  };

  it('a raw image/png body', async () => {
    const response = await postPredict(predictUrl(), await pngOf(pixels), 'image/png');
    expect(response.status).toBe(200);
    checkOne(response.body);
    expect(response.headers.get('x-model-version')).toBe(first.version);
  });

  it('a colour (RGB) PNG is converted to grayscale', async () => {
    const rgb = await sharp(Buffer.from(pixels), { raw: { width: 28, height: 28, channels: 1 } }).toColourspace('srgb').png().toBuffer();
    expect(rgb[25]).toBe(2); // IHDR colour type 2: RGB, decoded by sharp rather than the grayscale fast path
    const response = await postPredict(predictUrl(), rgb, 'image/png');
    expect(response.status).toBe(200);
    checkOne(response.body);
  });

  it('a raw image/jpeg body (colour, converted to grayscale)', async () => {
    // Flat colours survive JPEG exactly enough to compare: a uniform mid-gray in RGB.
    const jpeg = await sharp({ create: { width: 28, height: 28, channels: 3, background: { r: 128, g: 128, b: 128 } } }).jpeg({ quality: 100 }).toBuffer();
    const response = await postPredict(predictUrl(), jpeg, 'image/jpeg');
    expect(response.status).toBe(200);
    expectProbabilities(response.body.predictions[0].probabilities, directProbabilities(first.model, new Uint8Array(784).fill(128)));
  });

  it('an RGBA PNG: transparent pixels are background (0)', async () => {
    const rgba = Buffer.alloc(784 * 4);
    pixels.forEach((v, i) => rgba.set([255, 255, 255, v], i * 4)); // white ink, alpha = ink
    const png = await sharp(rgba, { raw: { width: 28, height: 28, channels: 4 } }).png().toBuffer();
    const response = await postPredict(predictUrl(), png, 'image/png');
    expect(response.status).toBe(200);
    checkOne(response.body);
  });

  it('JSON {"pixels"} as 784 numbers and as 28 rows of 28', async () => {
    const flat = await postPredict(predictUrl(), JSON.stringify({ pixels: Array.from(pixels) }), 'application/json');
    expect(flat.status).toBe(200);
    checkOne(flat.body);
    const rows = Array.from({ length: 28 }, (_, y) => Array.from(pixels.subarray(y * 28, y * 28 + 28)));
    const nested = await postPredict(predictUrl(), JSON.stringify({ pixels: rows }), 'application/json; charset=utf-8');
    expect(nested.status).toBe(200);
    checkOne(nested.body);
  });

  it('JSON {"image"} as base64 and as a data: URL', async () => {
    const base64 = (await pngOf(pixels)).toString('base64');
    for (const image of [base64, `data:image/png;base64,${base64}`]) {
      const response = await postPredict(predictUrl(), JSON.stringify({ image }), 'application/json');
      expect(response.status).toBe(200);
      checkOne(response.body);
    }
  });

  it('JSON {"instances"} mixing forms, answered in order', async () => {
    const images = [strokePixels(0), strokePixels(1), strokePixels(2), strokePixels(5)];
    const instances = [
      { pixels: Array.from(images[0]!) },
      { image: (await pngOf(images[1]!)).toString('base64') },
      { pixels: Array.from({ length: 28 }, (_, y) => Array.from(images[2]!.subarray(y * 28, y * 28 + 28))) },
      { image: (await pngOf(images[3]!)).toString('base64') },
    ];
    const response = await postPredict(predictUrl(), JSON.stringify({ instances }), 'application/json');
    expect(response.status).toBe(200);
    expect(response.body.predictions).toHaveLength(4);
    images.forEach((image, i) => expectProbabilities(response.body.predictions[i].probabilities, directProbabilities(first.model, image)));
  });

  it('multipart/form-data with several image files, answered in order', async () => {
    const images = [strokePixels(4), strokePixels(7)];
    const form = new FormData();
    for (const [i, image] of images.entries()) form.append('file', new Blob([new Uint8Array(await pngOf(image))], { type: 'image/png' }), `digit-${i}.png`);
    const response = await postPredict(predictUrl(), form);
    expect(response.status).toBe(200);
    expect(response.body.predictions).toHaveLength(2);
    images.forEach((image, i) => expectProbabilities(response.body.predictions[i].probabilities, directProbabilities(first.model, image)));
  });

  it('?preprocess=mnist applies to every form: dark ink on white, as PNG and as pixels', async () => {
    const paper = strokePixels(6).map((v) => 255 - v); // black stroke on white, off-centre
    const expected = directProbabilities(first.model, await toMnistForm({ width: 28, height: 28, pixels: paper }, 'test'));
    const asPng = await postPredict(`${predictUrl()}?preprocess=mnist`, await pngOf(paper), 'image/png');
    const asPixels = await postPredict(`${predictUrl()}?preprocess=mnist`, JSON.stringify({ pixels: Array.from(paper) }), 'application/json');
    for (const response of [asPng, asPixels]) {
      expect(response.status).toBe(200);
      expectProbabilities(response.body.predictions[0].probabilities, expected);
    }
    // Without it, the same pixels are taken as they are: a different input.
    const raw = await postPredict(predictUrl(), JSON.stringify({ pixels: Array.from(paper) }), 'application/json');
    expect(raw.body.predictions[0].probabilities).not.toEqual(asPixels.body.predictions[0].probabilities);
  });

  it('a batch at the configured maximum (64) is accepted', async () => {
    const instances = Array.from({ length: 64 }, (_, i) => ({ pixels: Array.from(strokePixels(i)) }));
    const response = await postPredict(predictUrl(), JSON.stringify({ instances }), 'application/json');
    expect(response.status).toBe(200);
    expect(response.body.predictions).toHaveLength(64);
    expectProbabilities(response.body.predictions[63].probabilities, directProbabilities(first.model, strokePixels(63)));
  });
});

describe('model versions', () => {
  it('serves the new latest after a publish, and ?model= pins an older version', async () => {
    const published = await api.publishAndAnnounce(22);
    await waitFor('the API to swap to the second model', async () => {
      const ready = await (await fetch(`${api.url}/readyz`)).json();
      return ready.model?.version === published.version;
    });
    second = { version: published.version, model: await loadModel(join(api.registry.versionsDir, published.version)) };
    const body = JSON.stringify({ pixels: Array.from(strokePixels(9)) });

    const latest = await postPredict(predictUrl(), body, 'application/json');
    expect(latest.body.model.version).toBe(second.version);
    expectProbabilities(latest.body.predictions[0].probabilities, directProbabilities(second.model, strokePixels(9)));

    const pinned = await postPredict(`${predictUrl()}?model=${first.version}`, body, 'application/json');
    expect(pinned.status).toBe(200);
    expect(pinned.body.model.version).toBe(first.version);
    expectProbabilities(pinned.body.predictions[0].probabilities, directProbabilities(first.model, strokePixels(9)));

    const named = await postPredict(`${predictUrl()}?model=latest`, body, 'application/json');
    expect(named.body.model.version).toBe(second.version);
  });

  it('an unknown version is 404, a malformed one 400', async () => {
    const body = JSON.stringify({ pixels: Array(784).fill(0) });
    expectProblem(await postPredict(`${predictUrl()}?model=v9999-abcdef`, body, 'application/json'), 404, /v9999-abcdef/);
    expectProblem(await postPredict(`${predictUrl()}?model=..%2F..%2Fetc`, body, 'application/json'), 400, /model: expected a model name/);
  });
});

/** A PNG whose header declares width × height, with a tiny zlib stream: what a decompression bomb looks like. */
function declaredPng(width: number, height: number): Buffer {
  return png(width, height, { idat: deflateSync(Buffer.alloc(width + 1)) });
}

describe('hostile and wrong input gets a clear 4xx', () => {
  const json = (value: unknown) => JSON.stringify(value);
  const zeros = () => Array(784).fill(0);

  it.each([
    ['truncated PNG bytes', async () => (await pngOf(strokePixels(1))).subarray(0, 60), 'image/png', 400, /truncated/],
    ['text sent as image/png', async () => Buffer.from('definitely not an image'), 'image/png', 400, /not a PNG or JPEG/],
    ['a GIF sent as image/png', async () => Buffer.from('GIF89a\x01\x00\x01\x00\x00\x00\x00;', 'latin1'), 'image/png', 400, /not a PNG or JPEG/],
    ['an empty image body', async () => Buffer.alloc(0), 'image/png', 400, /empty/],
    ['a PNG declaring 100000×100000 pixels', async () => declaredPng(100_000, 100_000), 'image/png', 422, /100000×100000/],
    ['a 27×27 PNG', async () => pngOf(new Uint8Array(27 * 27), 27), 'image/png', 422, /27×27.*28×28/],
    ['a 640×480 photo without ?preprocess', async () => sharp({ create: { width: 640, height: 480, channels: 3, background: '#fff' } }).png().toBuffer(), 'image/png', 422, /640×480/],
  ])('%s', async (_name, body, type, status, detail) => {
    expectProblem(await postPredict(predictUrl(), new Uint8Array(await body()), type), status, detail);
  });

  it.each([
    ['785 pixels', { pixels: Array(785).fill(0) }, 422, /785 entries/],
    ['a row of 27', { pixels: [...Array(27).fill(Array(28).fill(0)), Array(27).fill(0)] }, 422, /pixels\[27\] has 27 values/],
    ['a pixel of 256', { pixels: [...Array(783).fill(0), 256] }, 422, /pixels\[783\] is 256/],
    ['a negative pixel', { pixels: [-1, ...Array(783).fill(0)] }, 422, /pixels\[0\] is -1/],
    ['a pixel given as the string "NaN"', { pixels: ['NaN', ...Array(783).fill(0)] }, 400, /pixels\[0\] must be a number/],
    ['pixels that are not an array', { pixels: 'abc' }, 400, /must be an array/],
    ['both pixels and image', { pixels: [], image: '' }, 400, /exactly one/],
    ['an unknown field', { pixles: [] }, 400, /unknown field "pixles"/],
    ['invalid base64', { image: 'not base64!!' }, 400, /not valid base64/],
    ['base64 of text', { image: Buffer.from('hello').toString('base64') }, 400, /not a PNG or JPEG/],
    ['an empty batch', { instances: [] }, 422, /empty/],
    ['a batch of 65 (maximum 64)', { instances: Array.from({ length: 65 }, () => ({ pixels: [] })) }, 413, /65 received, at most 64/],
    ['a batch that is not an array', { instances: { pixels: [] } }, 400, /must be an array/],
    ['a JSON array body', [1, 2, 3], 400, /must be an object/],
  ])('JSON with %s', async (_name, value, status, detail) => {
    expectProblem(await postPredict(predictUrl(), json(value), 'application/json'), status, detail);
  });

  it('JSON with 1e999 (parses to Infinity)', async () => {
    const body = `{"pixels":[1e999${',0'.repeat(783)}]}`;
    expectProblem(await postPredict(predictUrl(), body, 'application/json'), 422, /Infinity/);
  });

  it('JSON with a NaN literal (not JSON at all)', async () => {
    expectProblem(await postPredict(predictUrl(), `{"pixels":[NaN${',0'.repeat(783)}]}`, 'application/json'), 400, /not valid JSON/);
  });

  it('JSON nested 100,000 deep', async () => {
    const deep = `{"pixels":${'['.repeat(100_000)}${']'.repeat(100_000)}}`;
    expectProblem(await postPredict(predictUrl(), deep, 'application/json'), 400, /nested more than/);
  });

  it('a body over BODY_LIMIT (1 MB) is 413, JSON or image', async () => {
    const huge = json({ instances: Array.from({ length: 100 }, () => ({ pixels: Array(784).fill(123.45678901234) })) });
    expect(huge.length).toBeGreaterThan(1024 ** 2);
    expectProblem(await postPredict(predictUrl(), huge, 'application/json'), 413, /BODY_LIMIT/);
    expectProblem(await postPredict(predictUrl(), new Uint8Array(1024 ** 2 + 1), 'image/png'), 413, /BODY_LIMIT/);
  });

  it('multipart: a non-file field, too many files, no files', async () => {
    const withField = new FormData();
    withField.append('model', 'v0001-abcdef');
    expectProblem(await postPredict(predictUrl(), withField), 400, /field "model" is not a file/);

    const many = new FormData();
    const png = new Uint8Array(await pngOf(strokePixels(1)));
    for (let i = 0; i < 65; i++) many.append('file', new Blob([png], { type: 'image/png' }), `${i}.png`);
    expectProblem(await postPredict(predictUrl(), many), 413, /at most 64/);

    const empty = new FormData();
    expectProblem(await postPredict(predictUrl(), empty), 400, /no image files/);
  });

  it.each([
    ['text/plain', 'hello'],
    ['application/xml', '<pixels/>'],
    ['image/gif', 'GIF89a'],
  ])('Content-Type %s is 415', async (type, body) => {
    expectProblem(await postPredict(predictUrl(), body, type), 415, /image\/png, image\/jpeg/);
  });

  it('unknown or bad query parameters are 400', async () => {
    const body = json({ pixels: zeros() });
    expectProblem(await postPredict(`${predictUrl()}?preprocess=fancy`, body, 'application/json'), 400, /preprocess/);
    expectProblem(await postPredict(`${predictUrl()}?modle=latest`, body, 'application/json'), 400, /modle/);
  });

  it('still answers normally after all of that', async () => {
    const response = await postPredict(predictUrl(), json({ pixels: zeros() }), 'application/json');
    expect(response.status).toBe(200);
    expect(response.body.predictions).toHaveLength(1);
  });
});
