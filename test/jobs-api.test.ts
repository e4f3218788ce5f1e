// /v1/jobs without a worker: validation, idempotency, listing, 404s, and
// cancelling queued jobs (which stay visible as cancelled). Real Redis, real HTTP.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { recipeOf } from '../src/queue/schema.ts';
import { DEFAULT_PRESET, PRESETS } from '../src/training/recipe.ts';
import type { PresetName } from '../src/training/types.ts';
import { getJson, makeDirs, openEvents, postJson, removeTempDirs, startTestApi, type TestApi } from './helpers/jobs.ts';

const PREFIX = `test-jobs-api-${process.pid}`;
let api: TestApi;

beforeAll(async () => {
  api = await startTestApi({ redisUrl: inject('redisUrl'), prefix: PREFIX, dirs: await makeDirs('/nonexistent') });
});

afterAll(async () => {
  await api?.close();
  await removeTempDirs();
});

const expectProblem = (response: { status: number; headers: Headers; body: any }, status: number) => {
  expect(response.status).toBe(status);
  expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(response.body).toMatchObject({ status, title: expect.any(String), detail: expect.any(String) });
};

/** What a job request resolves to when it names only `recipe` (the preset's training fields). */
function presetRequest(preset: PresetName = DEFAULT_PRESET) {
  const { architecture, dataset, epochs, batchSize, learningRate, momentum, seed } = PRESETS[preset];
  return { recipe: preset, architecture, dataset, epochs, batchSize, learningRate, momentum, seed };
}

describe('POST /v1/jobs', () => {
  it('queues a job with the default recipe: 202, Location, state queued', async () => {
    const response = await postJson(`${api.url}/v1/jobs`);
    expect(response.status).toBe(202);
    const job = response.body;
    expect(job.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(response.headers.get('location')).toBe(`/v1/jobs/${job.id}`);
    expect(job).toMatchObject({ state: 'queued', request: presetRequest(), metrics: [], progress: null, modelVersion: null, error: null, attempts: 0 });
    expect(new Date(job.createdAt).toISOString()).toBe(job.createdAt);

    const fetched = await getJson(`${api.url}${response.headers.get('location')}`);
    expect(fetched.status).toBe(200);
    expect(fetched.body).toMatchObject({ id: job.id, state: 'queued', request: job.request });
  });

  it('takes the recipe fields given and keeps the rest at their defaults', async () => {
    const request = { dataset: 'fashion-mnist', epochs: 2, limit: 512, learningRate: 0.05, targetAccuracy: 0.8, name: 'quick' };
    const { status, body } = await postJson(`${api.url}/v1/jobs`, request);
    expect(status).toBe(202);
    expect(body.request).toEqual({ ...presetRequest(), ...request });
    expect(body.name).toBe('quick');
  });

  it.each(['seed', 'fast'] as const)('recipe "%s" fills in that preset\'s values; architecture compact is taken', async (preset) => {
    const { status, body } = await postJson(`${api.url}/v1/jobs`, { recipe: preset, architecture: 'compact', epochs: 2 });
    expect(status).toBe(202);
    expect(body.request).toEqual({ ...presetRequest(preset), architecture: 'compact', epochs: 2 });
    expect(recipeOf(body.request)).toEqual({ ...PRESETS[preset], architecture: 'compact', epochs: 2 });
  });

  it('accepts curl -d bodies (form content type carrying JSON)', async () => {
    const response = await fetch(`${api.url}/v1/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: '{"epochs":1,"limit":600}',
    });
    expect(response.status).toBe(202);
    expect((await response.json()).request).toMatchObject({ epochs: 1, limit: 600 });
  });

  it.each([
    [{ epochs: 0 }, 'epochs'],
    [{ epochs: 51 }, 'epochs'],
    [{ epochs: 1.5 }, 'epochs'],
    [{ dataset: 'cifar' }, 'dataset'],
    [{ momentum: 1 }, 'momentum'],
    [{ learningRate: -1 }, 'learningRate'],
    [{ targetAccuracy: 1.5 }, 'targetAccuracy'],
    [{ epoch: 3 }, 'epoch'],
    [{ recipe: 'slow' }, 'recipe'],
    [{ architecture: 'huge' }, 'architecture'],
  ])('rejects %j with 422 naming the field', async (body, field) => {
    const response = await postJson(`${api.url}/v1/jobs`, body);
    expectProblem(response, 422);
    expect(response.body.errors.map((e: { path: string }) => e.path)).toContain(field);
    expect(response.body.detail).toContain(field);
  });

  it('rejects malformed JSON with 400 and a JSON array with 422', async () => {
    expectProblem(await postJson(`${api.url}/v1/jobs`, '{"epochs":'), 400);
    expectProblem(await postJson(`${api.url}/v1/jobs`, '[1]'), 422);
  });
});

describe('Idempotency-Key', () => {
  it('returns the first job for a repeat of the same request, also with keys in another order', async () => {
    const key = randomUUID();
    const first = await postJson(`${api.url}/v1/jobs`, { epochs: 1, limit: 256 }, { 'idempotency-key': key });
    expect(first.status).toBe(202);
    const again = await postJson(`${api.url}/v1/jobs`, { limit: 256, epochs: 1 }, { 'idempotency-key': key });
    expect(again.status).toBe(200);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.headers.get('location')).toBe(`/v1/jobs/${first.body.id}`);
    expect(again.body.id).toBe(first.body.id);
  });

  it('answers 422 when the key is reused with a different body, and creates nothing', async () => {
    const key = randomUUID();
    const first = await postJson(`${api.url}/v1/jobs`, { epochs: 1 }, { 'idempotency-key': key });
    const reused = await postJson(`${api.url}/v1/jobs`, { epochs: 2 }, { 'idempotency-key': key });
    expectProblem(reused, 422);
    expect(reused.body.detail).toContain(first.body.id);
  });

  it('creates separate jobs without a key, and for different keys', async () => {
    const ids = new Set<string>();
    const headerSets: Record<string, string>[] = [{}, {}, { 'idempotency-key': randomUUID() }, { 'idempotency-key': randomUUID() }];
    for (const headers of headerSets) {
      ids.add((await postJson(`${api.url}/v1/jobs`, { epochs: 1 }, headers)).body.id);
    }
    expect(ids.size).toBe(4);
  });

  it('rejects a key with spaces with 400', async () => {
    expectProblem(await postJson(`${api.url}/v1/jobs`, {}, { 'idempotency-key': 'has spaces' }), 400);
  });
});

describe('GET /v1/jobs', () => {
  it('lists newest first in pages that follow each other without gaps or repeats', async () => {
    const created: string[] = [];
    for (let i = 0; i < 5; i++) created.push((await postJson(`${api.url}/v1/jobs`, { name: `page-${i}` })).body.id);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { status: number; body: any } = await getJson(`${api.url}/v1/jobs?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      expect(page.status).toBe(200);
      expect(page.body.jobs.length).toBeLessThanOrEqual(2);
      seen.push(...page.body.jobs.map((job: { id: string }) => job.id));
      cursor = page.body.nextCursor;
    } while (cursor);
    expect(new Set(seen).size).toBe(seen.length);
    // The five just created are the newest, in reverse creation order.
    expect(seen.slice(0, 5)).toEqual([...created].reverse());
  });

  it('filters by state', async () => {
    const { body: job } = await postJson(`${api.url}/v1/jobs`, { name: 'to-cancel' });
    await postJson(`${api.url}/v1/jobs/${job.id}/cancel`);
    const cancelled = await getJson(`${api.url}/v1/jobs?state=cancelled&limit=100`);
    expect(cancelled.body.jobs.map((j: { id: string }) => j.id)).toContain(job.id);
    expect(cancelled.body.jobs.every((j: { state: string }) => j.state === 'cancelled')).toBe(true);
    const queued = await getJson(`${api.url}/v1/jobs?state=queued&limit=100`);
    expect(queued.body.jobs.length).toBeGreaterThan(0);
    expect(queued.body.jobs.every((j: { state: string }) => j.state === 'queued')).toBe(true);
    expect(queued.body.jobs.map((j: { id: string }) => j.id)).not.toContain(job.id);
  });

  it('answers 400 for a bad state, limit or cursor', async () => {
    expectProblem(await getJson(`${api.url}/v1/jobs?state=running`), 400);
    expectProblem(await getJson(`${api.url}/v1/jobs?limit=0`), 400);
    expectProblem(await getJson(`${api.url}/v1/jobs?limit=abc`), 400);
    expectProblem(await getJson(`${api.url}/v1/jobs?cursor=${randomUUID()}`), 400);
  });
});

describe('unknown jobs', () => {
  it.each(['', '/cancel', '/events'])('answers 404 problem+json for %s of an unknown id', async (suffix) => {
    for (const id of [randomUUID(), 'not-a-uuid', 'svc:index']) {
      const url = `${api.url}/v1/jobs/${encodeURIComponent(id)}${suffix}`;
      const response = suffix === '/cancel' ? await postJson(url) : await getJson(url);
      expectProblem(response, 404);
      expect(response.body.detail).toContain(id);
    }
  });
});

describe('cancelling a queued job', () => {
  it('removes it from the queue; it stays visible as cancelled, and cancelling again is harmless', async () => {
    const { body: job } = await postJson(`${api.url}/v1/jobs`, { epochs: 1 });
    const events = await openEvents(`${api.url}/v1/jobs/${job.id}/events`);
    expect(events.status).toBe(200);
    expect(events.contentType).toMatch(/^text\/event-stream/);

    const cancelled = await postJson(`${api.url}/v1/jobs/${job.id}/cancel`);
    expect(cancelled.status).toBe(200);
    expect(cancelled.body).toMatchObject({ id: job.id, state: 'cancelled', request: job.request });
    expect(cancelled.body.finishedAt).not.toBeNull();

    // The SSE stream sent the job as it was, then the cancellation, then ended.
    await events.ended;
    expect(events.events.map((e) => e.event)).toEqual(['state', 'cancelled']);
    expect(events.events[0]!.data).toMatchObject({ id: job.id, state: 'queued' });
    expect(events.events[1]!.data).toMatchObject({ id: job.id, state: 'cancelled' });

    expect((await getJson(`${api.url}/v1/jobs/${job.id}`)).body).toMatchObject({ id: job.id, state: 'cancelled' });
    const again = await postJson(`${api.url}/v1/jobs/${job.id}/cancel`);
    expect(again.status).toBe(200);
    expect(again.body.state).toBe('cancelled');

    // A stream opened after the end sends the final state and ends at once.
    const late = await openEvents(`${api.url}/v1/jobs/${job.id}/events`);
    await late.ended;
    expect(late.events.map((e) => e.event)).toEqual(['state', 'cancelled']);

    // Really gone from the queue: BullMQ no longer has it.
    expect(await api.jobs['queue'].getJob(job.id)).toBeUndefined();
  });
});

describe('shutting down', () => {
  it('ends open event streams so closing the API does not wait for their jobs', async () => {
    const own = await startTestApi({ redisUrl: inject('redisUrl'), prefix: PREFIX, dirs: await makeDirs('/nonexistent') });
    const { body: job } = await postJson(`${own.url}/v1/jobs`, { epochs: 1 });
    const events = await openEvents(`${own.url}/v1/jobs/${job.id}/events`);
    await own.close();
    await events.ended;
    expect(events.events.map((e) => e.event)).toEqual(['state']);
  });
});
