// Redis going away: /v1/jobs answers 503 problem+json promptly (never 500, never
// a hang), /healthz stays up, and everything works again once Redis is back.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { freePort, startRedisServer, type RunningRedisServer } from '../src/lib/redis-server.ts';
import { makeDirs, removeTempDirs, startTestApi, waitFor, type TestApi } from './helpers/jobs.ts';

let redis: RunningRedisServer;
let api: TestApi;

beforeAll(async () => {
  redis = await startRedisServer();
  api = await startTestApi({ redisUrl: redis.url, prefix: 'test-redis-down', dirs: await makeDirs('/nonexistent') });
});

afterAll(async () => {
  await api?.close();
  await redis?.stop();
  await removeTempDirs();
});

/** A request that fails the test if it takes longer than a few seconds (a hang), not a speed check. */
async function call(method: 'GET' | 'POST', path: string, body?: unknown) {
  const response = await fetch(`${api.url}${path}`, {
    method,
    signal: AbortSignal.timeout(5000),
    ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text ? JSON.parse(text) : undefined };
}

it('answers 503 while Redis is down and recovers when it returns on the same port', async () => {
  const created = await call('POST', '/v1/jobs', { epochs: 1 });
  expect(created.status).toBe(202);
  const id = created.body.id as string;

  await redis.stop();
  for (const [method, path, body] of [
    ['POST', '/v1/jobs', { epochs: 1 }],
    ['GET', '/v1/jobs', undefined],
    ['GET', `/v1/jobs/${id}`, undefined],
    ['POST', `/v1/jobs/${id}/cancel`, undefined],
    ['GET', `/v1/jobs/${id}/events`, undefined],
  ] as const) {
    const response = await call(method, path, body);
    expect(response.status, `${method} ${path}`).toBe(503);
    expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(response.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(response.body).toMatchObject({ status: 503, detail: expect.stringMatching(/redis/i) });
  }
  expect((await call('GET', '/healthz')).status).toBe(200);

  redis = await startRedisServer({ port: redis.port });
  // The restarted Redis is empty (no persistence in this test); the API reconnects by itself.
  await waitFor('GET /v1/jobs to answer 200 again', async () => (await call('GET', '/v1/jobs')).status === 200, 20_000);
  const again = await call('POST', '/v1/jobs', { epochs: 1 });
  expect(again.status).toBe(202);
  expect((await call('GET', `/v1/jobs/${again.body.id}`)).body).toMatchObject({ id: again.body.id, state: 'queued' });
});

it('answers 503 when the API starts before Redis, and works once Redis is up', async () => {
  const port = await freePort();
  const late = await startTestApi({ redisUrl: `redis://127.0.0.1:${port}`, prefix: 'test-redis-late', dirs: await makeDirs('/nonexistent') });
  let lateRedis: RunningRedisServer | undefined;
  try {
    const response = await fetch(`${late.url}/v1/jobs`, { signal: AbortSignal.timeout(5000) });
    expect(response.status).toBe(503);
    lateRedis = await startRedisServer({ port });
    await waitFor('POST /v1/jobs to answer 202', async () => {
      const created = await fetch(`${late.url}/v1/jobs`, { method: 'POST', signal: AbortSignal.timeout(5000) });
      return created.status === 202;
    }, 20_000);
  } finally {
    await late.close();
    await lateRedis?.stop();
  }
});
