// The Open Inference Protocol (KServe V2, HTTP/REST, protocol version 2.0) over
// real HTTP. Requests are written from the protocol document
// (kserve/open-inference-protocol specification/protocol/inference_rest.md) as
// plain JSON literals, not built from our own types: endpoints, the
// $inference_request / $inference_response objects, $metadata_model_response,
// and the {"error": $string} error object.
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { loadModel } from '../src/training/artifacts.ts';
import { waitFor } from './helpers/jobs.ts';
import { contractViolations } from './helpers/openapi.ts';
import { directProbabilities, postPredict, startServingApi, strokePixels, type ServingApi } from './helpers/serving.ts';

let api: ServingApi;
let published: { version: string; model: tf.LayersModel };

/** Every response these tests see must also match openapi.yaml (status, media type, schema). */
const expectDocumented = (method: string, path: string, response: { status: number; headers: Headers; body: unknown }) =>
  expect(
    contractViolations({ method, path: path.split('?')[0]!, status: response.status, contentType: response.headers.get('content-type') ?? undefined, body: response.body }),
  ).toEqual([]);

const get = async (path: string, headers: Record<string, string> = {}) => {
  const response = await fetch(`${api.url}${path}`, { headers });
  const text = await response.text();
  const result = { status: response.status, headers: response.headers, body: text ? JSON.parse(text) : undefined };
  expectDocumented('GET', path, result);
  return result;
};
const post = async (path: string, body: unknown, headers: Record<string, string> = {}) => {
  const response = await postPredict(`${api.url}${path}`, typeof body === 'string' ? body : JSON.stringify(body), 'application/json', headers);
  expectDocumented('POST', path, response);
  return response;
};

/** The protocol's error object: a non-2xx status and a body that is exactly {"error": "<message>"}. */
const expectError = (response: { status: number; headers: Headers; body: any }, status: number, message?: RegExp) => {
  expect(response.status, JSON.stringify(response.body)).toBe(status);
  expect(response.headers.get('content-type')).toMatch(/^application\/json/);
  expect(Object.keys(response.body)).toEqual(['error']);
  expect(typeof response.body.error).toBe('string');
  if (message) expect(response.body.error).toMatch(message);
};

const image = (n: number) => Array.from(strokePixels(n));
/** 28 rows of 28 [value] arrays: one image as a nested [28,28,1] tensor. */
const nestedHwc = (pixels: number[]) => Array.from({ length: 28 }, (_, y) => pixels.slice(y * 28, y * 28 + 28).map((v) => [v]));

beforeAll(async () => {
  api = await startServingApi({ redisUrl: inject('redisUrl') });
});

afterAll(async () => {
  await api?.close();
  published?.model.dispose();
});

describe('before any model is published', () => {
  it('server live, server not ready, model not ready, infer 503 with the error object', async () => {
    const live = await get('/v2/health/live');
    expect(live.status).toBe(200);
    expect(live.body).toEqual({ live: true });
    const ready = await get('/v2/health/ready');
    expect(ready.status).toBe(503);
    expect(ready.body).toEqual({ ready: false });
    const modelReady = await get('/v2/models/mnist/ready');
    expect(modelReady.status).toBe(503);
    expect(modelReady.body).toEqual({ name: 'mnist', ready: false });
    expectError(
      await post('/v2/models/mnist/infer', { inputs: [{ name: 'image', shape: [1, 784], datatype: 'UINT8', data: Array(784).fill(0) }] }),
      503,
      /no model has been published/,
    );
  });

  it('server metadata: name, version, extensions', async () => {
    const metadata = await get('/v2');
    expect(metadata.status).toBe(200);
    expect(metadata.body).toEqual({ name: 'digits-service', version: expect.any(String), extensions: ['binary_tensor_data'] });
  });

  it('loads the first published model', async () => {
    const version = await api.publishAndAnnounce(21);
    await waitFor('the API to load the model', async () => (await get('/v2/health/ready')).status === 200);
    published = { version: version.version, model: await loadModel(join(api.registry.versionsDir, version.version)) };
  });
});

describe('with a model', () => {
  it('server ready and model ready, with and without a version', async () => {
    expect(await get('/v2/health/ready')).toMatchObject({ status: 200, body: { ready: true } });
    expect(await get('/v2/models/mnist/ready')).toMatchObject({ status: 200, body: { name: 'mnist', ready: true } });
    expect(await get(`/v2/models/mnist/versions/${published.version}/ready`)).toMatchObject({ status: 200, body: { name: 'mnist', ready: true } });
  });

  it('model metadata ($metadata_model_response) states inputs and outputs, and the signature', async () => {
    for (const path of ['/v2/models/mnist', `/v2/models/mnist/versions/${published.version}`]) {
      const { status, body } = await get(path);
      expect(status).toBe(200);
      expect(body).toMatchObject({
        name: 'mnist',
        versions: [published.version],
        platform: expect.any(String),
        inputs: [{ name: 'image', datatype: 'FP32', shape: [-1, 28, 28, 1] }],
        outputs: [
          { name: 'probabilities', datatype: 'FP32', shape: [-1, 10] },
          { name: 'label', datatype: 'INT64', shape: [-1] },
        ],
      });
      expect(body.signature.inputs[0]).toMatchObject({
        valueRange: [0, 255],
        polarity: 'white-on-black',
        normalization: { mean: 0.1307, std: 0.3081 },
        acceptedLayouts: ['NHWC', 'NCHW'],
      });
      expect(body.signature.classLabels).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    }
  });

  it('infer: the example request shape of the protocol, FP32 NHWC flat, echoes id, answers probabilities [N,10] and label [N]', async () => {
    const a = image(1);
    const b = image(5);
    const response = await post('/v2/models/mnist/infer', {
      id: '42',
      inputs: [{ name: 'image', shape: [2, 28, 28, 1], datatype: 'FP32', data: [...a, ...b] }],
    });
    expect(response.status, JSON.stringify(response.body)).toBe(200);
    expect(response.body).toMatchObject({ model_name: 'mnist', model_version: published.version, id: '42' });
    const [probabilities, label] = response.body.outputs;
    expect(probabilities).toMatchObject({ name: 'probabilities', shape: [2, 10], datatype: 'FP32' });
    expect(label).toMatchObject({ name: 'label', shape: [2], datatype: 'INT64' });
    expect(probabilities.data).toHaveLength(20);
    [a, b].forEach((pixels, i) => {
      const expected = directProbabilities(published.model, Uint8Array.from(pixels));
      const actual = probabilities.data.slice(i * 10, i * 10 + 10);
      actual.forEach((p: number, k: number) => expect(p).toBeCloseTo(expected[k]!, 5));
      expect(label.data[i]).toBe(expected.indexOf(Math.max(...expected)));
    });
  });

  it('the same images as UINT8, nested NHWC, NCHW [N,1,28,28], [N,28,28] and [N,784] give the same answer, as does /v1/predict', async () => {
    const pixels = image(7);
    const requests = [
      { name: 'image', shape: [1, 28, 28, 1], datatype: 'UINT8', data: pixels },
      { name: 'image', shape: [1, 28, 28, 1], datatype: 'FP32', data: [nestedHwc(pixels)] },
      { name: 'image', shape: [1, 1, 28, 28], datatype: 'FP32', data: pixels },
      { name: 'image', shape: [1, 28, 28], datatype: 'UINT8', data: pixels },
      { name: 'image', shape: [1, 784], datatype: 'FP32', data: [pixels] },
    ];
    const v1 = await post('/v1/predict', { pixels });
    for (const input of requests) {
      const response = await post(`/v2/models/mnist/versions/${published.version}/infer`, { inputs: [input] });
      expect(response.status, JSON.stringify(response.body)).toBe(200);
      const data: number[] = response.body.outputs[0].data;
      data.forEach((p, k) => expect(p).toBeCloseTo(v1.body.predictions[0].probabilities[k], 6));
    }
  });

  it('requested outputs: only the label, as asked', async () => {
    const response = await post('/v2/models/mnist/infer', {
      inputs: [{ name: 'image', shape: [1, 784], datatype: 'UINT8', data: image(2) }],
      outputs: [{ name: 'label' }],
    });
    expect(response.status).toBe(200);
    expect(response.body.outputs.map((o: { name: string }) => o.name)).toEqual(['label']);
    expect(response.body).not.toHaveProperty('id');
  });

  /** A binary-extension body: the JSON, then the raw bytes; the JSON's length in Inference-Header-Content-Length. */
  const binaryPost = async (path: string, header: unknown, bytes: Uint8Array, headerLength?: string) => {
    const json = Buffer.from(JSON.stringify(header));
    const response = await fetch(`${api.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': headerLength ?? String(json.length) },
      body: new Uint8Array(Buffer.concat([json, bytes])),
    });
    const body = Buffer.from(await response.arrayBuffer());
    return { status: response.status, headers: response.headers, body };
  };

  it('binary tensor data extension: UINT8 and FP32 input bytes after the JSON give the JSON answer; binary outputs come back as bytes', async () => {
    const a = image(3);
    const b = image(8);
    const expected = await post('/v2/models/mnist/infer', { inputs: [{ name: 'image', shape: [2, 784], datatype: 'UINT8', data: [...a, ...b] }] });
    const uint8 = Uint8Array.from([...a, ...b]);
    const fp32 = new Uint8Array(Float32Array.from([...a, ...b]).buffer);
    for (const [datatype, bytes] of [['UINT8', uint8], ['FP32', fp32]] as const) {
      const response = await binaryPost('/v2/models/mnist/infer', { inputs: [{ name: 'image', shape: [2, 28, 28, 1], datatype, parameters: { binary_data_size: bytes.length } }] }, bytes);
      expect(response.status, response.body.toString()).toBe(200);
      expect(response.headers.get('inference-header-content-length')).toBeNull(); // JSON outputs: a plain JSON response
      const body = JSON.parse(response.body.toString());
      expect(body.outputs[0].data).toHaveLength(20);
      body.outputs[0].data.forEach((p: number, k: number) => expect(p).toBeCloseTo(expected.body.outputs[0].data[k], 6));
    }

    // Outputs as binary: per output, and for all outputs with binary_data_output.
    for (const request of [
      { inputs: [{ name: 'image', shape: [2, 784], datatype: 'UINT8', parameters: { binary_data_size: 1568 } }], outputs: [{ name: 'probabilities', parameters: { binary_data: true } }, { name: 'label', parameters: { binary_data: true } }] },
      { parameters: { binary_data_output: true }, inputs: [{ name: 'image', shape: [2, 784], datatype: 'UINT8', parameters: { binary_data_size: 1568 } }] },
    ]) {
      const response = await binaryPost('/v2/models/mnist/infer', request, uint8);
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toBe('application/octet-stream');
      const headerLength = Number(response.headers.get('inference-header-content-length'));
      const header = JSON.parse(response.body.subarray(0, headerLength).toString());
      expect(header.outputs).toEqual([
        { name: 'probabilities', shape: [2, 10], datatype: 'FP32', parameters: { binary_data_size: 80 } },
        { name: 'label', shape: [2], datatype: 'INT64', parameters: { binary_data_size: 16 } },
      ]);
      expect(response.body.length).toBe(headerLength + 80 + 16);
      const rest = response.body.subarray(headerLength);
      for (let k = 0; k < 20; k++) expect(rest.readFloatLE(k * 4)).toBeCloseTo(expected.body.outputs[0].data[k], 6);
      expect([rest.readBigInt64LE(80), rest.readBigInt64LE(88)].map(Number)).toEqual(expected.body.outputs[1].data);
    }

    // One output binary, the other JSON.
    const mixed = await binaryPost(
      '/v2/models/mnist/infer',
      { inputs: [{ name: 'image', shape: [2, 784], datatype: 'UINT8', parameters: { binary_data_size: 1568 } }], outputs: [{ name: 'label', parameters: { binary_data: true } }, { name: 'probabilities' }] },
      uint8,
    );
    const mixedLength = Number(mixed.headers.get('inference-header-content-length'));
    const mixedHeader = JSON.parse(mixed.body.subarray(0, mixedLength).toString());
    expect(mixedHeader.outputs[1].data).toHaveLength(20);
    expect(mixed.body.length).toBe(mixedLength + 16);
  });

  it.each([
    ['binary_data_size that does not match shape × datatype', { shape: [1, 784], datatype: 'UINT8', parameters: { binary_data_size: 700 } }, 700, undefined, /binary_data_size is 700 bytes; .* make 784 bytes/],
    ['fewer bytes after the JSON than declared', { shape: [1, 784], datatype: 'UINT8', parameters: { binary_data_size: 784 } }, 783, undefined, /783 bytes after the JSON; .* declares 784/],
    ['more bytes after the JSON than declared', { shape: [1, 784], datatype: 'FP32', parameters: { binary_data_size: 3136 } }, 3140, undefined, /3140 bytes after the JSON/],
    ['bytes after the JSON but no binary_data_size', { shape: [1, 784], datatype: 'UINT8', data: Array(784).fill(0) }, 784, undefined, /declares no "binary_data_size"/],
    ['a negative binary_data_size', { shape: [1, 784], datatype: 'UINT8', parameters: { binary_data_size: -1 } }, 784, undefined, /non-negative integer/],
    ['an Inference-Header-Content-Length past the body', { shape: [1, 784], datatype: 'UINT8', parameters: { binary_data_size: 784 } }, 784, '99999', /Inference-Header-Content-Length is "99999"/],
    ['an Inference-Header-Content-Length that is not a number', { shape: [1, 784], datatype: 'UINT8', parameters: { binary_data_size: 784 } }, 784, 'abc', /Inference-Header-Content-Length/],
    ['an Inference-Header-Content-Length that cuts the JSON', { shape: [1, 784], datatype: 'UINT8', parameters: { binary_data_size: 784 } }, 784, '20', /not valid JSON/],
    ['an FP32 binary value out of range', { shape: [1, 784], datatype: 'FP32', parameters: { binary_data_size: 3136 } }, -1, undefined, /binary value 0 is 1000/],
  ])('binary extension, %s: the protocol error object', async (_what, input, byteCount, headerLength, message) => {
    const bytes = byteCount === -1 ? new Uint8Array(Float32Array.from({ length: 784 }, (_, i) => (i === 0 ? 1000 : 0)).buffer) : new Uint8Array(byteCount);
    const response = await binaryPost('/v2/models/mnist/infer', { inputs: [{ name: 'image', ...input }] }, bytes, headerLength);
    const status = /out of range/.test(_what) ? 422 : 400;
    expect(response.status, response.body.toString()).toBe(status);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    const body = JSON.parse(response.body.toString());
    expect(Object.keys(body)).toEqual(['error']);
    expect(body.error).toMatch(message);
  });

  it('FP32 data in 0–1 is refused with a 422 naming the fix; with parameters.scale "unit" it equals the 0–255 answer', async () => {
    const pixels = image(4);
    const unit = pixels.map((v) => v / 255);
    expectError(
      await post('/v2/models/mnist/infer', { inputs: [{ name: 'image', shape: [1, 784], datatype: 'FP32', data: unit }] }),
      422,
      /0–1 floats.*"scale": "unit"/,
    );
    const expected = await post('/v2/models/mnist/infer', { inputs: [{ name: 'image', shape: [1, 784], datatype: 'FP32', data: pixels }] });
    for (const body of [
      { parameters: { scale: 'unit' }, inputs: [{ name: 'image', shape: [1, 784], datatype: 'FP32', data: unit }] },
      { inputs: [{ name: 'image', shape: [1, 784], datatype: 'FP32', parameters: { scale: 'unit' }, data: unit }] },
    ]) {
      const response = await post('/v2/models/mnist/infer', body);
      expect(response.status, JSON.stringify(response.body)).toBe(200);
      response.body.outputs[0].data.forEach((p: number, k: number) => expect(p).toBeCloseTo(expected.body.outputs[0].data[k], 5));
    }
  });

  it.each([
    ['an unknown model name', '/v2/models/cifar10/infer', { inputs: [{ name: 'image', shape: [1, 784], datatype: 'UINT8', data: Array(784).fill(0) }] }, 404, /model "cifar10" does not exist/],
    ['a version that does not exist', '/v2/models/mnist/versions/v0099-abcdef/infer', { inputs: [{ name: 'image', shape: [1, 784], datatype: 'UINT8', data: Array(784).fill(0) }] }, 404, /does not exist/],
    ['no inputs', '/v2/models/mnist/infer', { outputs: [{ name: 'label' }] }, 400, /"inputs"/],
    ['a wrong input name', '/v2/models/mnist/infer', { inputs: [{ name: 'input0', shape: [1, 784], datatype: 'UINT8', data: Array(784).fill(0) }] }, 400, /"image"/],
    ['an unsupported datatype', '/v2/models/mnist/infer', { inputs: [{ name: 'image', shape: [1, 784], datatype: 'BYTES', data: ['x'] }] }, 400, /FP32.*UINT8/],
    ['a shape the model does not take', '/v2/models/mnist/infer', { inputs: [{ name: 'image', shape: [1, 32, 32, 3], datatype: 'UINT8', data: [] }] }, 400, /\[N,28,28,1\]/],
    ['data shorter than the shape', '/v2/models/mnist/infer', { inputs: [{ name: 'image', shape: [2, 784], datatype: 'UINT8', data: Array(784).fill(0) }] }, 400, /784 values; its shape declares 1568/],
    ['data longer than the shape', '/v2/models/mnist/infer', { inputs: [{ name: 'image', shape: [1, 784], datatype: 'UINT8', data: Array(785).fill(0) }] }, 400, /more than the 784/],
    ['a UINT8 value of 300', '/v2/models/mnist/infer', { inputs: [{ name: 'image', shape: [1, 784], datatype: 'UINT8', data: [300, ...Array(783).fill(0)] }] }, 422, /data\[0\] is 300/],
    ['a batch over PREDICT_MAX_INSTANCES', '/v2/models/mnist/infer', { inputs: [{ name: 'image', shape: [65, 784], datatype: 'UINT8', data: [] }] }, 413, /65 received, at most 64/],
    ['an unknown requested output', '/v2/models/mnist/infer', { inputs: [{ name: 'image', shape: [1, 784], datatype: 'UINT8', data: Array(784).fill(0) }], outputs: [{ name: 'logits' }] }, 400, /"probabilities", "label"/],
    ['binary_data_size without the binary part (no Inference-Header-Content-Length)', '/v2/models/mnist/infer', { inputs: [{ name: 'image', shape: [1, 784], datatype: 'UINT8', parameters: { binary_data_size: 784 } }] }, 400, /Inference-Header-Content-Length/],
    ['malformed JSON', '/v2/models/mnist/infer', '{"inputs": [', 400, /not valid JSON/],
  ])('%s: the protocol error object', async (_what, path, body, status, message) => {
    expectError(await post(path, body), status, message);
  });

  it('metadata of an unknown model is a 404 error object', async () => {
    expectError(await get('/v2/models/fashion-mnist'), 404, /model "fashion-mnist" does not exist/);
  });

  it('a body that is not JSON is a 415 error object', async () => {
    const response = await postPredict(`${api.url}/v2/models/mnist/infer`, 'x', 'text/plain');
    expectError(response, 415);
  });
});

describe('auth and rate limit are those of /v1/predict (v2 and TF Serving routes)', () => {
  let secured: ServingApi;
  beforeAll(async () => {
    secured = await startServingApi({ redisUrl: inject('redisUrl'), env: { API_KEYS: 'v2-key', PREDICT_RATE_LIMIT: '2' } });
    await secured.publishAndAnnounce(22);
    await waitFor('the API to load the model', async () => (await fetch(`${secured.url}/v2/health/ready`)).status === 200);
  });
  afterAll(() => secured?.close());

  it('model routes need the key; health and server metadata stay open; over the limit is 429', async () => {
    const body = JSON.stringify({ inputs: [{ name: 'image', shape: [1, 784], datatype: 'UINT8', data: Array(784).fill(0) }] });
    expect((await fetch(`${secured.url}/v2/health/live`)).status).toBe(200);
    expect((await fetch(`${secured.url}/v2`)).status).toBe(200);
    expectError(await postPredict(`${secured.url}/v2/models/mnist/infer`, body, 'application/json'), 401, /API key/);
    const metadata = await fetch(`${secured.url}/v2/models/mnist`);
    expect(metadata.status).toBe(401);
    expect(await metadata.json()).toEqual({ error: expect.any(String) });
    const key = { authorization: 'Bearer v2-key' };
    expect((await fetch(`${secured.url}/v2/models/mnist`, { headers: key })).status).toBe(200);
    expect((await postPredict(`${secured.url}/v2/models/mnist/infer`, body, 'application/json', key)).status).toBe(200);
    expect((await postPredict(`${secured.url}/v2/models/mnist/infer`, body, 'application/json', key)).status).toBe(200);
    expectError(await postPredict(`${secured.url}/v2/models/mnist/infer`, body, 'application/json', key), 429, /rate limit/);
    // TF Serving's predict is a /v1 route: the same key and its own rate limit bucket per route.
    const tf = JSON.stringify({ instances: [Array(784).fill(0)] });
    expectError(await postPredict(`${secured.url}/v1/models/mnist:predict`, tf, 'application/json'), 401, /API key/);
    expect((await postPredict(`${secured.url}/v1/models/mnist:predict`, tf, 'application/json', key)).status).toBe(200);
  });
});
