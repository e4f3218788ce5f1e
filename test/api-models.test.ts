import * as tf from '@tensorflow/tfjs';
import type { FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { buildApp, type AppDeps } from '../src/api/app.ts';
import { problemFor } from '../src/api/plugins/problem-details.ts';
import { createApiServices } from '../src/api/services.ts';
import { loadConfig } from '../src/lib/config.ts';
import { createLogger } from '../src/lib/logger.ts';
import { freePort } from '../src/lib/redis-server.ts';
import type { ModelAnnouncement } from '../src/registry/announcements.ts';
import { FileSystemRegistry } from '../src/registry/filesystem.ts';
import type { ModelVersion } from '../src/registry/types.ts';
import { expectContract } from './helpers/openapi.ts';
import { tinyModel, writeTrainingOutput } from './helpers/model-fixture.ts';
import { seedNetOutput } from './helpers/serving.ts';

let root: string;
let registry: FileSystemRegistry;
let app: FastifyInstance;
let announcements: ModelAnnouncement[];

async function start(env: Record<string, string> = {}, deps: Partial<AppDeps> = {}): Promise<FastifyInstance> {
  const config = loadConfig({ MODEL_DIR: join(root, 'models'), LOG_LEVEL: 'silent', ...env });
  const services = await createApiServices(config, { logger: createLogger(config), redis: false, registry });
  const built = await buildApp({
    config,
    ...services,
    announce: async (announcement) => void announcements.push(announcement),
    ...deps,
  });
  await built.ready();
  return built;
}

let seed = 0;
/** A tiny 4→3 model: enough for listing and artifacts, but it cannot pass promotion's forward-pass check. */
async function publish(): Promise<ModelVersion> {
  seed += 1;
  const dir = await writeTrainingOutput(join(root, `run-${seed}`), tinyModel(seed));
  return registry.publish(dir, { jobId: `job-${seed}` });
}
/** An (untrained) seed net: a model promotion can load and run. */
async function publishRunnable(): Promise<ModelVersion> {
  seed += 1;
  return registry.publish(await seedNetOutput(seed), { jobId: `job-${seed}` });
}

beforeAll(async () => {
  await tf.setBackend('cpu');
});

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'api-models-test-'));
  registry = new FileSystemRegistry(join(root, 'models'));
  announcements = [];
  app = await start();
});

afterEach(async () => {
  await app.close();
  await rm(root, { recursive: true, force: true });
});

describe('GET /healthz', () => {
  it('answers ok and echoes a sensible X-Request-Id, replacing one that is not', async () => {
    const res = await request(app.server).get('/healthz').set('x-request-id', 'trace-123');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: 'ok' });
    expect(res.headers['x-request-id']).toBe('trace-123');
    expectContract(res);

    const generated = await request(app.server).get('/healthz').set('x-request-id', 'bad id with spaces');
    expect(generated.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe('GET /v1/models', () => {
  it('lists nothing before a publish', async () => {
    const res = await request(app.server).get('/v1/models');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ models: [], names: [] });
    expectContract(res);
  });

  it('lists versions newest first, with the latest flag on the one the pointer names', async () => {
    const first = await publish();
    const second = await publish();
    const res = await request(app.server).get('/v1/models');
    expect(res.status).toBe(200);
    expect(res.body.models.map((m: ModelVersion) => [m.version, m.latest, m.jobId])).toEqual([
      [second.version, true, second.jobId],
      [first.version, false, first.jobId],
    ]);
    expectContract(res);
  });
});

describe('GET /v1/models/:version', () => {
  it('returns a version by id and through the latest alias', async () => {
    const first = await publish();
    const second = await publish();
    const byId = await request(app.server).get(`/v1/models/${first.version}`);
    expect(byId.status).toBe(200);
    const { reused: _reused, promotion: _promotion, ...firstVersion } = first;
    expect(byId.body).toEqual({ ...firstVersion, latest: false, signature: expect.objectContaining({ dataset: 'mnist' }) });
    expect(byId.body.signature.inputs[0]).toMatchObject({ name: 'image', shape: [-1, 28, 28, 1], valueRange: [0, 255], polarity: 'white-on-black' });
    expectContract(byId);

    const latest = await request(app.server).get('/v1/models/latest');
    expect(latest.body.version).toBe(second.version);
    expectContract(latest);
  });

  it('answers 404 problem+json for an unknown version and for latest before any publish', async () => {
    const res = await request(app.server).get('/v1/models/v0042-abcdef').set('x-request-id', 'req-404');
    expect(res.status).toBe(404);
    expect(res.headers['content-type']).toBe('application/problem+json; charset=utf-8');
    expect(res.body).toEqual({
      type: 'urn:digits:problem:model-not-found',
      title: 'Model not found',
      status: 404,
      detail: 'model version v0042-abcdef does not exist',
      instance: '/v1/models/v0042-abcdef',
      requestId: 'req-404',
    });
    expectContract(res);

    const latest = await request(app.server).get('/v1/models/latest/model.json');
    expect(latest.status).toBe(404);
    expect(latest.body.detail).toBe('no model has been published yet');
    expectContract(latest);
  });

  // ('v1' and 'v0001-abcdef.json' are well-formed model names now: they 404 as unknown names.)
  it.each(['V0001-ABCDEF', 'V1', '..%2F..%2Fetc%2Fpasswd', '%2e%2e', 'latest%00', 'a%2Fb'])(
    'answers 400 for the malformed version or name %s without touching the filesystem',
    async (bad) => {
      const res = await request(app.server).get(`/v1/models/${bad}/weights.bin`);
      expect(res.status).toBe(400);
      expect(res.body).toMatchObject({ type: 'urn:digits:problem:validation-error', status: 400 });
      expect(res.body.errors).toEqual([{ path: 'ref', message: expect.stringContaining('a version id like v0001-3fa9c1') }]);
      expect(res.body.detail).toMatch(/^URL path is invalid: ref: /);
      expectContract(res);
    },
  );
});

describe('POST /v1/models/:version/promote', () => {
  it('moves latest, announces it, and the next publish (as good, policy if-better) moves it again', async () => {
    const first = await publishRunnable();
    const second = await publishRunnable();
    const res = await request(app.server).post(`/v1/models/${first.version}/promote`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ version: first.version, latest: true });
    expectContract(res);
    expect(announcements).toEqual([{ type: 'promoted', version: first.version, model: 'mnist' }]);

    const list = await request(app.server).get('/v1/models');
    expect(list.body.models.map((m: ModelVersion) => m.latest)).toEqual([false, true]);
    expect(list.body.models[0].version).toBe(second.version);

    const third = await publishRunnable();
    expect((await request(app.server).get('/v1/models/latest')).body.version).toBe(third.version);
  });

  it('404s an unknown version without announcing', async () => {
    await publish();
    const res = await request(app.server).post('/v1/models/v0099-abcdef/promote');
    expect(res.status).toBe(404);
    expectContract(res);
    expect(announcements).toEqual([]);
  });

  it('still promotes when the announcement cannot be sent (the pointer file is the truth)', async () => {
    await app.close();
    app = await start({}, { announce: async () => Promise.reject(new Error('Connection is closed.')) });
    const first = await publishRunnable();
    await publishRunnable();
    const res = await request(app.server).post(`/v1/models/${first.version}/promote`);
    expect(res.status).toBe(200);
    expect((await registry.latest())?.version).toBe(first.version);
  });

  it('accepts an empty JSON body and a curl -d style form-encoded JSON body, rejects other media types', async () => {
    const model = await publish();
    const url = `/v1/models/${model.version}/promote`;
    const empty = await request(app.server).post(url).set('content-type', 'application/json').send('');
    expect(empty.status).toBe(200);
    const form = await request(app.server).post(url).set('content-type', 'application/x-www-form-urlencoded').send('{}');
    expect(form.status).toBe(200);

    const text = await request(app.server).post(url).set('content-type', 'text/plain').send('promote please');
    expect(text.status).toBe(415);
    expect(text.body.detail).toMatch(/Content-Type: application\/json/);
    expectContract(text);
    const formFields = await request(app.server).post(url).set('content-type', 'application/x-www-form-urlencoded').send('a=1&b=2');
    expect(formFields.status).toBe(415);
    expectContract(formFields);
    const malformed = await request(app.server).post(url).set('content-type', 'application/json').send('{"oops":');
    expect(malformed.status).toBe(400);
    expect(malformed.body).toMatchObject({ type: 'urn:digits:problem:malformed-json', detail: expect.stringMatching(/^the request body is not valid JSON: /) });
    expectContract(malformed);
  });

  it('answers 413 for a body over BODY_LIMIT', async () => {
    await app.close();
    app = await start({ BODY_LIMIT: '1kb' });
    const model = await publish();
    const res = await request(app.server)
      .post(`/v1/models/${model.version}/promote`)
      .set('content-type', 'application/json')
      .send(JSON.stringify({ padding: 'x'.repeat(2048) }));
    expect(res.status).toBe(413);
    expect(res.body.detail).toBe('the request body is larger than the limit of 1024 bytes (BODY_LIMIT)');
    expectContract(res);
  });
});

describe('artifacts', () => {
  it('serves model.json and weights.bin byte for byte, cacheable forever', async () => {
    const model = await publish();
    const json = await request(app.server).get(`/v1/models/${model.version}/model.json`);
    expect(json.status).toBe(200);
    expect(json.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(json.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect(json.text).toBe(await readFile(registry.artifactPath(model.version, 'model.json'), 'utf8'));
    expectContract(json);

    const weights = await request(app.server)
      .get(`/v1/models/${model.version}/weights.bin`)
      .buffer(true)
      .parse((res, done) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => done(null, Buffer.concat(chunks)));
      });
    expect(weights.status).toBe(200);
    expect(weights.headers['content-type']).toBe('application/octet-stream');
    expect(weights.headers['x-model-version']).toBe(model.version);
    expect(weights.body).toEqual(await readFile(registry.artifactPath(model.version, 'weights.bin')));
    expectContract(weights);
  });

  it('pins the weights of latest/model.json to the concrete version', async () => {
    const model = await publish();
    const res = await request(app.server).get('/v1/models/latest/model.json');
    expect(res.status).toBe(200);
    expect(res.headers['cache-control']).toBe('no-cache');
    expect(res.headers['x-model-version']).toBe(model.version);
    expect(res.body.weightsManifest[0].paths).toEqual([`../${model.version}/weights.bin`]);
    expectContract(res);
  });

  it('loads with tf.loadLayersModel from a listening server, by version and through latest', async () => {
    const first = await publish();
    const second = await publish();
    const address = await app.listen({ port: 0, host: '127.0.0.1' });
    const input = tf.tensor2d([[0.1, -0.4, 0.7, 2]]);
    const expected = (modelSeed: number) => Array.from((tinyModel(modelSeed).predict(input) as tf.Tensor).dataSync());
    const predicted = async (url: string) => Array.from(((await tf.loadLayersModel(url)).predict(input) as tf.Tensor).dataSync());

    expect(await predicted(`${address}/v1/models/${first.version}/model.json`)).toEqual(expected(seed - 1));
    expect(await predicted(`${address}/v1/models/latest/model.json`)).toEqual(expected(seed));
    await registry.promote(first.version);
    expect(await predicted(`${address}/v1/models/latest/model.json`)).toEqual(expected(seed - 1));
    expect(second.version).not.toBe(first.version);
  });
});

describe('problem+json', () => {
  it('answers unknown routes with a 404 problem', async () => {
    const res = await request(app.server).delete('/v1/nothing-here?x=1');
    expect(res.status).toBe(404);
    expect(res.headers['content-type']).toBe('application/problem+json; charset=utf-8');
    expect(res.body).toMatchObject({ type: 'urn:digits:problem:route-not-found', status: 404, detail: 'no route DELETE /v1/nothing-here', instance: '/v1/nothing-here?x=1' });
    expect(res.body.requestId).toBe(res.headers['x-request-id']);
  });

  it('answers 500 for a bug without leaking its message, and logs it', async () => {
    await app.close();
    const broken = Object.create(registry) as FileSystemRegistry;
    broken.list = async () => {
      throw new TypeError("Cannot read properties of undefined (reading 'secret internals')");
    };
    app = await start({}, { registry: broken });
    const res = await request(app.server).get('/v1/models');
    expect(res.status).toBe(500);
    expect(res.body.type).toBe('urn:digits:problem:internal-error');
    expect(res.body.detail).not.toMatch(/secret/);
    expect(res.body.detail).toContain(res.headers['x-request-id']);
    expectContract(res);
  });

  it('maps a real ioredis connection failure to 503 with Retry-After, not 500', async () => {
    const port = await freePort();
    const redis = new Redis(`redis://127.0.0.1:${port}`, { maxRetriesPerRequest: 0, retryStrategy: () => null, lazyConnect: true });
    redis.on('error', () => {});
    const failure = await redis.get('anything').then(
      () => undefined,
      (error: unknown) => error,
    );
    redis.disconnect();
    expect(failure).toBeInstanceOf(Error);
    const problem = problemFor(failure, 1024);
    expect(problem).toMatchObject({ status: 503, headers: { 'retry-after': '5' } });

    await app.close();
    const down = Object.create(registry) as FileSystemRegistry;
    down.list = async () => {
      throw failure;
    };
    app = await start({}, { registry: down });
    const res = await request(app.server).get('/v1/models');
    expect(res.status).toBe(503);
    expect(res.headers['retry-after']).toBe('5');
    expectContract(res);
  });
});

describe('API keys', () => {
  it('requires a key on /v1 routes when API_KEYS is set, but not on /healthz', async () => {
    await app.close();
    app = await start({ API_KEYS: 'first-key, second-key' });
    const missing = await request(app.server).get('/v1/models');
    expect(missing.status).toBe(401);
    expect(missing.headers['www-authenticate']).toMatch(/^Bearer/);
    expectContract(missing);
    const wrong = await request(app.server).get('/v1/models').set('authorization', 'Bearer third-key');
    expect(wrong.status).toBe(401);
    expect(wrong.body.detail).toBe('the API key is not valid');

    expect((await request(app.server).get('/v1/models').set('authorization', 'Bearer second-key')).status).toBe(200);
    expect((await request(app.server).get('/v1/models').set('x-api-key', 'first-key')).status).toBe(200);
    expect((await request(app.server).get('/healthz')).status).toBe(200);
  });
});

afterAll(() => {
  tf.disposeVariables();
});
