// Authorisation is decided by the matched route: every route the app registers
// (collected with onRoute, so routes added later are covered here without edits),
// under many spellings of its path, with no key, a wrong key and a predict-only
// key, over real sockets. A spelling may be 404 or 400; it may never be 2xx where
// the key does not allow the route.
import type { RouteOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import Fastify from 'fastify';
import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildApp } from '../src/api/app.ts';
import { createApiServices } from '../src/api/services.ts';
import { loadConfig } from '../src/lib/config.ts';
import { createLogger } from '../src/lib/logger.ts';
import { FileSystemRegistry } from '../src/registry/filesystem.ts';
import { useApiKeys } from '../src/api/plugins/api-keys.ts';
import { waitFor } from './helpers/jobs.ts';
import { rawRequest } from './helpers/raw-http.ts';
import { postPredict, startServingApi, strokePixels, type ServingApi } from './helpers/serving.ts';

const FULL_KEY = 'full-key-0123';
const PREDICT_KEY = 'predict-key-4567';

/** What each route is expected to need. Routes not listed here must need a full key (manage). */
const EXPECTED_PUBLIC = new Set([
  'GET /healthz',
  'GET /readyz',
  'GET /metrics',
  'GET /openapi.yaml',
  'GET /docs',
  'GET /',
  'GET /favicon.ico',
  'GET /console/*',
  'GET /console/vendor/uplot/*',
  'GET /v2',
  'GET /v2/health/live',
  'GET /v2/health/ready',
]);
const EXPECTED_PREDICT = new Set([
  'POST /v1/predict',
  'POST /v1/models/:name(^[^:/]+)::predict',
  'POST /v1/models/:name/versions/:version(^[^:/]+)::predict',
  'GET /v1/models',
  'GET /v1/models/:ref',
  'GET /v1/models/:ref/model.json',
  'GET /v1/models/:ref/weights.bin',
  'GET /v1/models/:ref/model.onnx',
  'GET /v1/models/:name/versions/:version',
  'GET /v1/models/:name/versions/:version/model.json',
  'GET /v1/models/:name/versions/:version/weights.bin',
  'GET /v1/models/:name/versions/:version/model.onnx',
  'GET /v2/models/:name',
  'GET /v2/models/:name/versions/:version',
  'GET /v2/models/:name/ready',
  'GET /v2/models/:name/versions/:version/ready',
  'POST /v2/models/:name/infer',
  'POST /v2/models/:name/versions/:version/infer',
]);

/** Routes that speak another server's protocol and answer its error form, {"error": "..."}. */
const isProtocolRoute = (url: string) => url.startsWith('/v2/') || url.endsWith('::predict');

function expectedAccess(method: string, url: string): 'public' | 'predict' | 'manage' {
  const name = `${method === 'HEAD' ? 'GET' : method} ${url}`;
  return EXPECTED_PUBLIC.has(name) ? 'public' : EXPECTED_PREDICT.has(name) ? 'predict' : 'manage';
}

/** Values for path parameters; a route with a parameter not named here fails the test until one is added. */
let samples: Record<string, string> = {};

function concretePath(url: string): string {
  // A parameter's regex is dropped and `::` is a literal colon (`/v1/models/:name(^[^:/]+)::predict`).
  return url
    .replace(/\([^)]*\)/g, '')
    .split('::')
    .map((part) =>
      part.replace(/:(\w+)/g, (_match, name: string) => {
        const value = samples[name];
        if (value === undefined) throw new Error(`no sample value for :${name} in ${url}; add one to access.test.ts`);
        return value;
      }),
    )
    .join(':')
    .replace(/\*$/, url.includes('uplot') ? 'uPlot.min.css' : 'app.js');
}

const hex = (c: string) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`;
const HEX = (c: string) => hex(c).toUpperCase();
const segments = (path: string) => path.split('/').slice(1);
const joinPath = (parts: string[]) => `/${parts.join('/')}`;

/** Spellings of one path that a router, a proxy or a URL parser might treat as the same route. */
function spellings(path: string): [string, string][] {
  const parts = segments(path);
  const first = parts[0] ?? '';
  const rest = parts.slice(1);
  const letter = first.search(/[a-z]/i);
  const digit = first.search(/\d/);
  const list: [string, string][] = [
    ['canonical', path],
    ['first letter %-encoded', letter < 0 ? path : joinPath([first.slice(0, letter) + hex(first[letter]!) + first.slice(letter + 1), ...rest])],
    ['a digit %-encoded', digit < 0 ? path : joinPath([first.slice(0, digit) + HEX(first[digit]!) + first.slice(digit + 1), ...rest])],
    ['every character of every segment %-encoded', joinPath(parts.map((p) => [...p].map(hex).join('')))],
    ['upper case', path.toUpperCase()],
    ['mixed case', joinPath(parts.map((p) => p.replace(/^./, (c) => c.toUpperCase())))],
    ['double slashes', `/${path.replaceAll('/', '//')}`],
    ['dot segments', joinPath([first, '.', ...(rest.length ? [rest[0]!, '..', ...rest] : ['x', '..'])])],
    ['encoded dot segments', joinPath([first, '%2e', ...rest])],
    ['trailing slash', `${path}/`],
    ['semicolon parameter', joinPath([`${first};x=1`, ...rest])],
    ['encoded slash', rest.length ? `/${first}%2F${rest.join('/')}` : `${path}%2F`],
    ['NUL appended', `${path}%00`],
    ['backslash', path.replaceAll('/', '\\').replace(/^\\/, '/')],
    ['query and fragment', `${path}?x=1#y`],
  ];
  return list;
}

const KEY_CASES: [string, Record<string, string>][] = [
  ['no key', {}],
  ['a wrong key', { authorization: 'Bearer wrong-key' }],
  ['a wrong X-API-Key', { 'x-api-key': 'wrong-key' }],
  ['the key in the query only', {}],
  ['a predict-only key', { authorization: `Bearer ${PREDICT_KEY}` }],
  ['a predict-only X-API-Key', { 'x-api-key': PREDICT_KEY }],
];

describe('access by matched route, with API_KEYS and PREDICT_API_KEYS', () => {
  let api: ServingApi;
  const routes: RouteOptions[] = [];

  beforeAll(async () => {
    api = await startServingApi({
      redisUrl: inject('redisUrl'),
      env: { API_KEYS: FULL_KEY, PREDICT_API_KEYS: PREDICT_KEY },
      onRoute: (route) => void routes.push(route),
    });
    const { version } = await api.publishAndAnnounce(3);
    await waitFor('the model to load', async () => (await (await fetch(`${api.url}/readyz`)).json()).model?.version === version);
    const job = await postPredict(`${api.url}/v1/jobs`, '{"epochs":1,"limit":100}', 'application/json', { authorization: `Bearer ${FULL_KEY}` });
    expect(job.status).toBe(202);
    samples = { version, ref: version, name: 'mnist', id: job.body.id };
  });

  afterAll(async () => {
    await api?.close();
  });

  const operations = () =>
    routes.flatMap((route) => [route.method].flat().map((method) => ({ method, url: route.url, declared: route.config?.access })));

  it('every registered route declares the access this test expects of it', () => {
    expect(operations().length).toBeGreaterThan(15);
    const mismatched = operations()
      .filter(({ method, url, declared }) => !(method === 'OPTIONS' && url === '*') && declared !== expectedAccess(method, url))
      .map(({ method, url, declared }) => `${method} ${url}: declares ${declared}, expected ${expectedAccess(method, url)}`);
    expect(mismatched).toEqual([]);
  });

  it('no spelling of a protected route answers 2xx without a key that allows it', async () => {
    const leaks: string[] = [];
    let checked = 0;
    routes: for (const { method, url } of operations()) {
      const access = expectedAccess(method, url);
      if (access === 'public') continue;
      const path = concretePath(url);
      for (const [spelling, target] of spellings(path)) {
        if (leaks.length >= 20) break routes; // enough to see the hole; leaked event streams cost seconds each
        for (const [keyCase, headers] of KEY_CASES) {
          if (access === 'predict' && keyCase.startsWith('a predict-only')) continue; // allowed
          const withQueryKey = keyCase === 'the key in the query only' ? `${target}${target.includes('?') ? '&' : '?'}api_key=${FULL_KEY}` : target;
          const response = await rawRequest(api.url, { method, path: withQueryKey, headers, timeoutMs: 5000 }).catch((error: Error) => error);
          checked++;
          if (response instanceof Error) {
            // e.g. an event stream opened to a client without a key: it never ends.
            leaks.push(`${method} ${withQueryKey} (${spelling}, ${keyCase}) → ${response.message}`);
            continue;
          }
          if ((response.status >= 200 && response.status < 300) || response.status >= 500) {
            leaks.push(`${method} ${withQueryKey} (${spelling}, ${keyCase}) → ${response.status}`);
          }
          // Every refusal is problem+json (HEAD has no body); the routes of another server's
          // protocol (Open Inference Protocol, TF Serving) answer in that protocol's {"error"} form.
          if (method !== 'HEAD' && response.status >= 400) {
            const type = response.headers['content-type'];
            if (isProtocolRoute(url) && !/^application\/problem\+json/.test(type ?? '')) {
              expect(type, `${method} ${withQueryKey}`).toMatch(/^application\/json/);
              expect(response.json, `${method} ${withQueryKey}`).toEqual({ error: expect.any(String) });
            } else expect(type, `${method} ${withQueryKey}`).toMatch(/^application\/problem\+json/);
          }
        }
      }
    }
    expect(leaks).toEqual([]);
    expect(checked).toBeGreaterThan(500);
  });

  it('the canonical path of every protected route is refused (401) without a key, and a predict-only key gets 403 on manage routes', async () => {
    for (const { method, url } of operations()) {
      const access = expectedAccess(method, url);
      if (access === 'public') continue;
      const path = concretePath(url);
      const none = await rawRequest(api.url, { method, path, timeoutMs: 5000 });
      expect(none.status, `${method} ${path}`).toBe(401);
      const predictOnly = await rawRequest(api.url, { method, path, headers: { 'x-api-key': PREDICT_KEY }, timeoutMs: 5000 });
      if (access === 'manage') {
        expect(predictOnly.status, `${method} ${path}`).toBe(403);
        if (method !== 'HEAD') expect(predictOnly.json.detail).toMatch(/API_KEYS/);
      } else {
        expect([401, 403], `${method} ${path}`).not.toContain(predictOnly.status);
      }
    }
  });

  it('the right key reaches every route (the matrix above is not passing because everything is refused)', async () => {
    for (const { method, url } of operations()) {
      if (method === 'OPTIONS') continue;
      const access = expectedAccess(method, url);
      const key = access === 'predict' ? PREDICT_KEY : FULL_KEY;
      const stop = new AbortController();
      const response = await fetch(`${api.url}${concretePath(url)}`, { method, headers: { authorization: `Bearer ${key}` }, signal: stop.signal });
      if (url.endsWith('/events')) stop.abort(); // event streams never end by themselves
      else await response.arrayBuffer();
      expect([401, 403, 404], `${method} ${url}`).not.toContain(response.status);
    }
  });

  it('public routes answer without a key; unknown paths are 404 with or without one', async () => {
    for (const path of ['/healthz', '/readyz', '/metrics', '/docs']) expect((await rawRequest(api.url, { path })).status, path).toBe(200);
    for (const headers of [{}, { authorization: `Bearer ${FULL_KEY}` }] as Record<string, string>[]) {
      for (const path of ['/v1/nothing', '/v1', '/v2/predict', '/%761/nothing']) {
        const response = await rawRequest(api.url, { path, headers });
        expect(response.status, path).toBe(404);
        expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
      }
    }
  });

  it('two different keys in one request are refused, the same key twice is fine', async () => {
    const both = await rawRequest(api.url, { path: '/v1/models', headers: { 'x-api-key': FULL_KEY, authorization: `Bearer ${PREDICT_KEY}` } });
    expect(both.status).toBe(400);
    expect(both.json.detail).toMatch(/two different API keys/);
    const same = await rawRequest(api.url, { path: '/v1/models', headers: { 'x-api-key': FULL_KEY, authorization: `Bearer ${FULL_KEY}` } });
    expect(same.status).toBe(200);
  });
});

describe('rate limiting and authorisation agree on who the client is', () => {
  it('rotating Bearer values beside a valid X-API-Key does not buy fresh buckets, nor do invented keys', async () => {
    const api = await startServingApi({ redisUrl: inject('redisUrl'), env: { API_KEYS: FULL_KEY, PREDICT_API_KEYS: PREDICT_KEY, PREDICT_RATE_LIMIT: '2' } });
    try {
      const { version } = await api.publishAndAnnounce(3);
      await waitFor('the model to load', async () => (await (await fetch(`${api.url}/readyz`)).json()).model?.version === version);
      const body = JSON.stringify({ pixels: Array.from(strokePixels(1)) });
      const statuses: number[] = [];
      const as = async (headers: Record<string, string>) => (await postPredict(`${api.url}/v1/predict`, body, 'application/json', headers)).status;
      statuses.push(await as({ 'x-api-key': PREDICT_KEY }), await as({ 'x-api-key': PREDICT_KEY }));
      // The key counts, never the header it came in, nor a second credential beside it.
      statuses.push(await as({ authorization: `Bearer ${PREDICT_KEY}` }));
      statuses.push(await as({ 'x-api-key': PREDICT_KEY, authorization: 'Bearer rotated-1' }));
      statuses.push(await as({ 'x-api-key': PREDICT_KEY, authorization: `Bearer ${PREDICT_KEY}` }));
      expect(statuses).toEqual([200, 200, 429, 400, 429]);
      // The full key is another client with its own bucket.
      expect((await postPredict(`${api.url}/v1/predict`, body, 'application/json', { 'x-api-key': FULL_KEY })).status).toBe(200);
    } finally {
      await api.close();
    }
  });

  it('without API keys, invented Bearer values all count as the one IP', async () => {
    const api = await startServingApi({ redisUrl: inject('redisUrl'), env: { PREDICT_RATE_LIMIT: '2' } });
    try {
      const { version } = await api.publishAndAnnounce(3);
      await waitFor('the model to load', async () => (await (await fetch(`${api.url}/readyz`)).json()).model?.version === version);
      const body = JSON.stringify({ pixels: Array.from(strokePixels(1)) });
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) {
        statuses.push((await postPredict(`${api.url}/v1/predict`, body, 'application/json', { authorization: `Bearer invented-${i}` })).status);
      }
      expect(statuses).toEqual([200, 200, 429, 429]);
    } finally {
      await api.close();
    }
  });
});

describe('a route without an access policy', () => {
  it('stops start-up, naming the route', async () => {
    const app = Fastify();
    useApiKeys(app, { full: ['k'], predict: [] });
    app.get('/declared', { config: { access: 'public' } }, async () => 'ok');
    app.get('/forgotten', async () => 'oops');
    await expect(app.ready()).rejects.toThrow(/without an access policy.*GET \/forgotten/);
    await app.close().catch(() => {});
  });
});

describe('keys never reach logs or metrics', () => {
  it('logs at trace level and /metrics mention no key, valid or not, whichever header carried it', async () => {
    const lines: string[] = [];
    const root = await mkdtemp(join(tmpdir(), 'access-logs-'));
    const config = loadConfig({ MODEL_DIR: join(root, 'models'), DATA_DIR: join(root, 'data'), API_KEYS: FULL_KEY, PREDICT_API_KEYS: PREDICT_KEY, PREDICT_RATE_LIMIT: '100', LOG_LEVEL: 'trace' });
    // The service's own logger (its redaction included), writing where the test can read.
    const logger = createLogger(config, {}, { write: (line: string) => void lines.push(line) });
    const services = await createApiServices(config, { logger, redis: false, registry: new FileSystemRegistry(config.modelDir) });
    const app = await buildApp({ config, ...services, logger });
    await app.listen({ port: 0, host: '127.0.0.1' });
    const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    try {
      for (const headers of [
        { authorization: `Bearer ${FULL_KEY}` } as Record<string, string>,
        { 'x-api-key': PREDICT_KEY },
        { authorization: 'Bearer not-a-key-7890' },
        { 'x-api-key': FULL_KEY, authorization: `Bearer ${PREDICT_KEY}` },
      ]) {
        for (const path of ['/v1/models', '/v1/predict', '/v1/nothing']) {
          await rawRequest(base, { method: path === '/v1/predict' ? 'POST' : 'GET', path, headers: { 'content-type': 'application/json', ...headers }, body: '{}' });
        }
      }
      const metrics = (await rawRequest(base, { path: '/metrics' })).body;
      expect(lines.length).toBeGreaterThan(10);
      for (const secret of [FULL_KEY, PREDICT_KEY, 'not-a-key-7890']) {
        expect(lines.filter((line) => line.includes(secret))).toEqual([]);
        expect(metrics).not.toContain(secret);
      }
    } finally {
      await app.close();
      await rm(root, { recursive: true, force: true });
    }
  });
});
