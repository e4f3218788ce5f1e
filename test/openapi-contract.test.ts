// openapi.yaml is the API's contract. This test fails when:
//  - the app registers a route that openapi.yaml does not describe (add it there,
//    or mark the route `schema: { hide: true }` if it is not API, like static files);
//  - openapi.yaml describes an operation the app does not have;
//  - a schema in openapi.yaml does not compile or a $ref does not resolve;
//  - a real response does not match its documented status, media type and schema.
// Routes are collected with fastify's onRoute hook from the real buildApp, so
// routes added later are covered without changing this file. Other tests check
// their own responses with expectContract from ./helpers/openapi.ts.
import * as tf from '@tensorflow/tfjs';
import type { FastifyInstance, RouteOptions } from 'fastify';
import { Redis } from 'ioredis';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { buildApp } from '../src/api/app.ts';
import { createApiServices, type ApiServices } from '../src/api/services.ts';
import { loadConfig } from '../src/lib/config.ts';
import { createLogger } from '../src/lib/logger.ts';
import type { FileSystemRegistry } from '../src/registry/filesystem.ts';
import { tinyModel, writeTrainingOutput } from './helpers/model-fixture.ts';
import { publishSeedNet } from './helpers/serving.ts';
import { HTTP_METHODS, expectContract, spec, toOpenApiPath, validatorAt } from './helpers/openapi.ts';

const PREFIX = `test-contract-${process.pid}`;
let root: string;
let app: FastifyInstance;
let services: ApiServices;
let registry: FileSystemRegistry;
const routes: { method: string; url: string; hidden: boolean }[] = [];

beforeAll(async () => {
  await tf.setBackend('cpu');
  root = await mkdtemp(join(tmpdir(), 'contract-test-'));
  const config = loadConfig({ MODEL_DIR: join(root, 'models'), DATA_DIR: join(root, 'data'), LOG_LEVEL: 'silent', REDIS_URL: inject('redisUrl'), QUEUE_PREFIX: PREFIX });
  services = await createApiServices(config, { logger: createLogger(config) });
  registry = services.registry;
  const onRoute = (route: RouteOptions) => {
    for (const method of [route.method].flat()) routes.push({ method, url: route.url, hidden: route.schema?.hide === true });
  };
  app = await buildApp({ config, ...services, announce: async () => {}, onRoute });
  await app.ready();
});

afterAll(async () => {
  await app?.close();
  await services?.close();
  const redis = new Redis(inject('redisUrl'));
  const keys = await redis.keys(`${PREFIX}:*`);
  if (keys.length > 0) await redis.del(...keys);
  await redis.quit();
  await rm(root, { recursive: true, force: true });
});

/** Documented operations as "METHOD /path/{param}". */
function documentedOperations(): string[] {
  return Object.entries(spec.paths).flatMap(([path, item]) =>
    HTTP_METHODS.filter((method) => item[method]).map((method) => `${method.toUpperCase()} ${path}`),
  );
}

/** Registered, non-hidden routes as "METHOD /path/{param}"; fastify's automatic HEAD twins of GET routes are left out. */
function registeredOperations(): string[] {
  const visible = routes.filter((route) => !route.hidden);
  const gets = new Set(visible.filter((r) => r.method === 'GET').map((r) => r.url));
  return visible
    .filter((route) => !(route.method === 'HEAD' && gets.has(route.url)))
    .map((route) => `${route.method} ${toOpenApiPath(route.url)}`);
}

describe('openapi.yaml', () => {
  it('describes every route the app registers', () => {
    expect(routes.length).toBeGreaterThan(0);
    const documented = new Set(documentedOperations());
    expect(registeredOperations().filter((operation) => !documented.has(operation))).toEqual([]);
  });

  it('describes only routes the app has', () => {
    const registered = new Set(registeredOperations());
    expect(documentedOperations().filter((operation) => !registered.has(operation))).toEqual([]);
  });

  it('has schemas that compile, with every $ref resolving', () => {
    const compiled: string[] = [];
    for (const name of Object.keys(spec.components.schemas ?? {})) {
      validatorAt(['components', 'schemas', name]);
      compiled.push(name);
    }
    for (const [path, item] of Object.entries(spec.paths)) {
      for (const method of HTTP_METHODS) {
        const operation = item[method];
        if (!operation) continue;
        expect(Object.keys(operation.responses), `${method} ${path}`).toContain('default');
        for (const [status, response] of Object.entries(operation.responses)) {
          for (const mediaType of Object.keys(response.content ?? {})) {
            validatorAt(['paths', path, method, 'responses', status, 'content', mediaType, 'schema']);
            compiled.push(`${method} ${path} ${status} ${mediaType}`);
          }
        }
      }
    }
    expect(compiled).toContain('Problem');
  });
});

describe('real responses match openapi.yaml', () => {
  it('every GET route without path parameters answers as documented', async () => {
    const simple = documentedOperations().filter((operation) => operation.startsWith('GET ') && !operation.includes('{'));
    expect(simple).toContain('GET /healthz');
    for (const operation of simple) {
      const res = await request(app.server).get(operation.slice(4));
      expectContract(res);
    }
  });

  it('models: list, get, promote, artifacts and their errors', async () => {
    const check = async (req: request.Test) => {
      const res = await req;
      expectContract(res);
      return res;
    };
    expect((await check(request(app.server).get('/v1/models/latest'))).status).toBe(404);
    const published = await registry.publish(await writeTrainingOutput(join(root, 'run'), tinyModel(1)), { jobId: null });
    const { version } = published;

    expect((await check(request(app.server).get('/v1/models'))).body.models).toHaveLength(1);
    expect((await check(request(app.server).get(`/v1/models/${version}`))).status).toBe(200);
    expect((await check(request(app.server).get('/v1/models/Not_A_Name'))).status).toBe(400);
    expect((await check(request(app.server).get('/v1/models/v1'))).status).toBe(404); // a name nobody published under
    expect((await check(request(app.server).get('/v1/models/v0009-abcdef'))).status).toBe(404);
    // Named routes (TF Serving shape).
    expect((await check(request(app.server).get('/v1/models?model=mnist'))).body.names).toEqual([{ name: 'mnist', defaultVersion: version, versions: 1 }]);
    expect((await check(request(app.server).get('/v1/models/mnist'))).body).toMatchObject({ name: 'mnist', defaultVersion: version });
    expect((await check(request(app.server).get(`/v1/models/mnist/versions/${version}`))).body.artifacts['weights.bin'].sha256).toMatch(/^[0-9a-f]{64}$/);
    expect((await check(request(app.server).get(`/v1/models/fashion-mnist/versions/${version}`))).status).toBe(404);
    expect((await check(request(app.server).get('/v1/models/mnist/versions/latest'))).status).toBe(400);
    expect((await check(request(app.server).post(`/v1/models/mnist/versions/${version}/promote`))).status).toBe(200);
    expect((await check(request(app.server).get(`/v1/models/mnist/versions/${version}/model.json`))).status).toBe(200);
    expect((await check(request(app.server).get(`/v1/models/mnist/versions/${version}/weights.bin`).buffer(true))).status).toBe(200);
    expect((await check(request(app.server).get('/v1/models/mnist/model.json'))).headers['x-model-version']).toBe(version);
    expect((await check(request(app.server).delete(`/v1/models/mnist/versions/${version}`))).status).toBe(409);
    const second = await registry.publish(await writeTrainingOutput(join(root, 'run2'), tinyModel(2)), { jobId: null }, { promote: 'never' });
    expect((await check(request(app.server).delete(`/v1/models/mnist/versions/${second.version}`))).status).toBe(204);
    expect((await check(request(app.server).delete(`/v1/models/mnist/versions/${second.version}`))).status).toBe(404);
    expect((await check(request(app.server).post(`/v1/models/${version}/promote`))).status).toBe(200);
    expect((await check(request(app.server).post('/v1/models/v0009-abcdef/promote'))).status).toBe(404);
    expect((await check(request(app.server).get(`/v1/models/${version}/model.json`))).status).toBe(200);
    expect((await check(request(app.server).get('/v1/models/latest/model.json'))).status).toBe(200);
    const weights = await check(request(app.server).get(`/v1/models/${version}/weights.bin`).buffer(true));
    expect(weights.status).toBe(200);
    expect((await check(request(app.server).get('/v1/models/..%2Fx/weights.bin'))).status).toBe(400);
  });

  it('jobs: create, replay, validation, list, get, cancel, events and their errors', async () => {
    const check = async (req: request.Test) => {
      const res = await req;
      expectContract(res);
      return res;
    };
    const created = await check(request(app.server).post('/v1/jobs').set('idempotency-key', `contract-${PREFIX}`).send({ epochs: 1, limit: 64 }));
    expect(created.status).toBe(202);
    const id: string = created.body.id;
    const replayed = await check(request(app.server).post('/v1/jobs').set('idempotency-key', `contract-${PREFIX}`).send({ epochs: 1, limit: 64 }));
    expect([replayed.status, replayed.body.id]).toEqual([200, id]);
    expect((await check(request(app.server).post('/v1/jobs').set('idempotency-key', `contract-${PREFIX}`).send({ epochs: 2 }))).status).toBe(422);
    expect((await check(request(app.server).post('/v1/jobs').send({ epochs: 0, colour: 'red' }))).status).toBe(422);
    expect((await check(request(app.server).post('/v1/jobs').set('content-type', 'text/plain').send('epochs=1'))).status).toBe(415);

    expect((await check(request(app.server).get('/v1/jobs?state=queued&limit=5'))).body.jobs.map((j: { id: string }) => j.id)).toContain(id);
    expect((await check(request(app.server).get('/v1/jobs?limit=0'))).status).toBe(400);
    expect((await check(request(app.server).get(`/v1/jobs/${id}`))).status).toBe(200);
    expect((await check(request(app.server).get('/v1/jobs/00000000-0000-4000-8000-000000000000'))).status).toBe(404);

    expect((await check(request(app.server).post(`/v1/jobs/${id}/cancel`))).body.state).toBe('cancelled');
    expect((await check(request(app.server).post(`/v1/jobs/${id}/cancel`))).status).toBe(200);
    expect((await check(request(app.server).post('/v1/jobs/nope/cancel'))).status).toBe(404);

    // A finished job's stream sends its state and ends, so it can be read whole.
    const events = await check(request(app.server).get(`/v1/jobs/${id}/events`).buffer(true));
    expect(events.status).toBe(200);
    expect(events.text).toMatch(/^event: state\ndata: \{/);
    expect((await check(request(app.server).get('/v1/jobs/nope/events'))).status).toBe(404);
  });

  it('predict: predictions and their errors', async () => {
    const check = async (req: request.Test) => {
      const res = await req;
      expectContract(res);
      return res;
    };
    expect((await check(request(app.server).post('/v1/predict').send({ pixels: [1, 2, 3] }))).status).toBe(422);
    expect((await check(request(app.server).post('/v1/predict').set('content-type', 'text/plain').send('7'))).status).toBe(415);
    const published = await publishSeedNet(registry, 7);
    const pixels = Array.from({ length: 784 }, (_, i) => (i * 37) % 256);
    // The API picks the new model up by itself (announcement or re-check); poll until it has.
    await expect
      .poll(async () => (await request(app.server).post('/v1/predict').send({ instances: [{ pixels }, { pixels }] })).headers['x-model-version'], {
        timeout: 30_000,
        interval: 250,
      })
      .toBe(published.version);
    const res = await check(request(app.server).post('/v1/predict').send({ instances: [{ pixels }, { pixels }] }));
    expect(res.body.predictions).toHaveLength(2);
    const named = await check(request(app.server).post(`/v1/predict?model=mnist&version=${published.version}`).send({ pixels }));
    expect(named.body, named.text).toHaveProperty('model');
    expect(named.body.model).toMatchObject({ model: 'mnist', version: published.version });
    expect((await check(request(app.server).post('/v1/models/fashion-mnist:predict').send({ pixels }))).status).toBe(404);
    expect((await check(request(app.server).post('/v1/predict?model=Bad!').send({ pixels }))).status).toBe(400);
    expect((await check(request(app.server).get('/readyz'))).body.model?.version).toBe(published.version);
  });

  it('unknown routes are documented problems too', async () => {
    const res = await request(app.server).get('/v2/anything');
    expect(res.status).toBe(404);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(validatorAt(['components', 'schemas', 'Problem'])(res.body)).toBe(true);
  });
});
