// API keys on and off, the /predict rate limit and CORS, over real HTTP.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { waitFor } from './helpers/jobs.ts';
import { postPredict, startServingApi, strokePixels, type ServingApi } from './helpers/serving.ts';

const body = JSON.stringify({ pixels: Array.from(strokePixels(1)) });

async function withModel(api: ServingApi): Promise<void> {
  const { version } = await api.publishAndAnnounce(3);
  await waitFor('the model to load', async () => (await (await fetch(`${api.url}/readyz`)).json()).model?.version === version);
}

const expect401 = (response: { status: number; headers: Headers; body: any }) => {
  expect(response.status).toBe(401);
  expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(response.headers.get('www-authenticate')).toMatch(/^Bearer/);
  expect(response.body).toMatchObject({ status: 401, detail: expect.stringMatching(/API key/) });
};

describe('with API_KEYS set', () => {
  let api: ServingApi;

  beforeAll(async () => {
    api = await startServingApi({ redisUrl: inject('redisUrl'), env: { API_KEYS: 'alpha-key, beta-key' } });
    await withModel(api);
  });

  afterAll(async () => {
    await api?.close();
  });

  it('/v1/predict needs a valid key: none or a wrong one is 401 problem+json', async () => {
    expect401(await postPredict(`${api.url}/v1/predict`, body, 'application/json'));
    expect401(await postPredict(`${api.url}/v1/predict`, body, 'application/json', { authorization: 'Bearer gamma-key' }));
    expect401(await postPredict(`${api.url}/v1/predict`, body, 'application/json', { authorization: 'Basic YWxwaGEta2V5' }));
    for (const key of ['alpha-key', 'beta-key']) {
      const response = await postPredict(`${api.url}/v1/predict`, body, 'application/json', { authorization: `Bearer ${key}` });
      expect(response.status).toBe(200);
      expect(response.body.predictions).toHaveLength(1);
    }
  });

  it('mutating routes need a key (POST /v1/jobs, promote)', async () => {
    const jobBody = JSON.stringify({ epochs: 1, limit: 100 });
    expect401(await postPredict(`${api.url}/v1/jobs`, jobBody, 'application/json'));
    const created = await postPredict(`${api.url}/v1/jobs`, jobBody, 'application/json', { authorization: 'Bearer alpha-key' });
    expect(created.status).toBe(202);
    expect401(await postPredict(`${api.url}/v1/models/latest/promote`, '', 'application/json'));
    const promoted = await postPredict(`${api.url}/v1/models/latest/promote`, '', 'application/json', { authorization: 'Bearer beta-key' });
    expect(promoted.status).toBe(200);
  });

  it('health, readiness, metrics and docs stay open for probes and scrapers', async () => {
    for (const path of ['/healthz', '/readyz', '/metrics', '/openapi.yaml', '/docs']) {
      expect((await fetch(`${api.url}${path}`)).status, path).toBe(200);
    }
  });
});

describe('without API_KEYS', () => {
  it('/v1/predict and POST /v1/jobs need no key', async () => {
    const api = await startServingApi({ redisUrl: inject('redisUrl') });
    try {
      await withModel(api);
      expect((await postPredict(`${api.url}/v1/predict`, body, 'application/json')).status).toBe(200);
      expect((await postPredict(`${api.url}/v1/jobs`, '{"epochs":1}', 'application/json')).status).toBe(202);
    } finally {
      await api.close();
    }
  });
});

describe('PREDICT_RATE_LIMIT', () => {
  it('allows that many requests per minute per client, then 429 problem+json with Retry-After', async () => {
    const api = await startServingApi({ redisUrl: inject('redisUrl'), env: { PREDICT_RATE_LIMIT: '3', API_KEYS: 'one,two' } });
    try {
      await withModel(api);
      const as = (key: string) => postPredict(`${api.url}/v1/predict`, body, 'application/json', { authorization: `Bearer ${key}` });
      for (let i = 0; i < 3; i++) expect((await as('one')).status).toBe(200);
      const limited = await as('one');
      expect(limited.status).toBe(429);
      expect(limited.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(limited.headers.get('retry-after')).toMatch(/^\d+$/);
      expect(limited.body.detail).toMatch(/rate limit of 3/);
      // Another key is another client.
      expect((await as('two')).status).toBe(200);
      // Other routes are not limited.
      expect((await fetch(`${api.url}/readyz`)).status).toBe(200);
    } finally {
      await api.close();
    }
  });
});

describe('CORS_ORIGIN', () => {
  it('answers preflights for the configured origin only', async () => {
    const api = await startServingApi({ redisUrl: inject('redisUrl'), env: { CORS_ORIGIN: 'https://app.example.com' } });
    try {
      const preflight = (origin: string) =>
        fetch(`${api.url}/v1/predict`, {
          method: 'OPTIONS',
          headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
        });
      const allowed = await preflight('https://app.example.com');
      expect(allowed.status).toBeLessThan(300);
      expect(allowed.headers.get('access-control-allow-origin')).toBe('https://app.example.com');
      const other = await preflight('https://evil.example.com');
      expect(other.headers.get('access-control-allow-origin')).toBeNull();
    } finally {
      await api.close();
    }
  });
});
